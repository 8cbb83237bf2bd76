#!/usr/bin/env bash
# Builds the Switchboard image from the Dockerfile with docker, podman or buildah, whichever runs here.
#   scripts/build-image.sh [cpu|gpu] [tag]            # tag: switchboard:0.1.0 (cpu), switchboard:0.1.0-gpu (gpu)
# When the Ray base image cannot be pulled (no registry reachable: the development machine), the base is assembled
# from Debian's packages instead and the Dockerfile is built FROM it through its RAY_IMAGE build arg: debootstrap
# bookworm minbase + python3.11 + python3-venv, the `ray` user the Ray image has (uid 1000, gid 100, home /home/ray)
# and a venv at /home/ray/venv owned by it first on PATH (the Ray image's anaconda), committed as a local image.
# When download.pytorch.org is out of reach too, torch's CPU wheel comes from a local folder (TORCH_WHEELS): it is
# mounted for the RUN steps with a pip.conf naming it, and TORCH_INDEX_URL points at PyPI for torch's dependencies;
# one folder mounted at /etc/xdg/pip carries both (and HOST_CA), so the image keeps nothing of them but that empty
# mount point. That needs buildah or podman (docker build has no --volume).
# Environment:
#   RAY_IMAGE     base to pull (default docker.io/rayproject/ray:2.60.0-py311)
#   BASE          auto (pull, else assemble) | registry | debian
#   ROOTFS        a debootstrap'ed bookworm minbase folder to reuse (default: debootstrap one into a temp folder)
#   TORCH_WHEELS  folder holding torch-2.13.0+cpu-*.whl (default /opt/wheels), used when download.pytorch.org is out
#                 of reach or LOCAL_TORCH=1
#   HOST_CA       CA bundle pip trusts during the build (default: this host's pip `cert` setting, for a TLS proxy)
#   REBUILD_BASE  1 to assemble the Debian base again although it exists
#   MODELS        models prepared into the image (the Dockerfile's default when unset)
#   STORAGE       buildah/podman storage driver (default vfs: works without overlay or fuse in a container)
#   CONTEXT       tree (the working tree's tracked and unignored files, default) | head (the last commit: git archive)
# Logs go to stdout; the build time and image size are printed at the end.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VARIANT="${1:-cpu}"
case "$VARIANT" in cpu) TAG="${2:-switchboard:0.1.0}" ;; gpu) TAG="${2:-switchboard:0.1.0-gpu}" ;;
  *) echo "usage: $0 [cpu|gpu] [tag] (got variant '$VARIANT')" >&2; exit 2 ;; esac
RAY_IMAGE="${RAY_IMAGE:-docker.io/rayproject/ray:2.60.0-py311}"  # fully qualified: buildah has no short names
BASE="${BASE:-auto}"
BASE_TAG="localhost/switchboard-base:bookworm-py311"
TORCH_WHEELS="${TORCH_WHEELS:-/opt/wheels}"
STORAGE="${STORAGE:-vfs}"
WORK="$(mktemp -d /tmp/build-image.XXXXXX)"
# A killed debootstrap leaves /proc mounted in its root: unmount before removing, and never cross into a mount.
trap '{ findmnt -rn -o TARGET | grep "^$WORK/" | sort -r | xargs -r umount; } || true; rm -rf --one-file-system "$WORK"' EXIT
trap 'exit 130' INT TERM  # so that a killed build still cleans up
started=$(date +%s)

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  ENGINE=docker; build=(docker build); pull=(docker pull); exists=(docker image inspect); images=(docker images)
elif command -v podman >/dev/null 2>&1; then
  ENGINE=podman; build=(podman --storage-driver "$STORAGE" build --isolation chroot)
  pull=(podman --storage-driver "$STORAGE" pull); exists=(podman --storage-driver "$STORAGE" image inspect)
  images=(podman --storage-driver "$STORAGE" images)
elif command -v buildah >/dev/null 2>&1; then
  ENGINE=buildah; build=(buildah --storage-driver "$STORAGE" bud --isolation chroot)
  pull=(buildah --storage-driver "$STORAGE" pull); exists=(buildah --storage-driver "$STORAGE" inspect --type image)
  images=(buildah --storage-driver "$STORAGE" images)
else
  echo "no container engine: install docker, podman or buildah (Debian: apt-get install buildah debootstrap)" >&2
  exit 1
fi
echo "engine: $ENGINE, variant: $VARIANT, tag: $TAG"

# pip's settings for the RUN steps of both builds, in one folder mounted at /etc/xdg/pip (pip reads pip.conf there):
# a pip.conf, the torch wheel, the host's CA. A mount writes no layer; the image keeps only the empty mount point.
mkdir "$WORK/pip"
args=(--build-arg "VARIANT=$VARIANT")
mounts=()
pipconf=()
[ -n "${MODELS+set}" ] && args+=(--build-arg "MODELS=$MODELS")
reach_torch='import urllib.request; urllib.request.urlopen("https://download.pytorch.org/whl/cpu/torch/", timeout=15)'
if [ "$VARIANT" = cpu ] && { [ "${LOCAL_TORCH:-0}" = 1 ] || ! timeout 20 python3 -c "$reach_torch" 2>/dev/null; }; then
  [ "$ENGINE" != docker ] \
    || { echo "download.pytorch.org is out of reach and docker build cannot mount $TORCH_WHEELS" >&2; exit 1; }
  ls "$TORCH_WHEELS"/torch-2.13.0+cpu-*.whl >/dev/null \
    || { echo "no torch-2.13.0+cpu wheel in $TORCH_WHEELS" >&2; exit 1; }
  echo "download.pytorch.org out of reach: torch's CPU wheel from $TORCH_WHEELS"
  # pip ranks 2.13.0+cpu (find-links) above PyPI's 2.13.0 (CUDA): same release, the local label sorts higher.
  pipconf+=("find-links = /etc/xdg/pip/wheels")
  args+=(--build-arg "TORCH_INDEX_URL=https://pypi.org/simple")
  mkdir "$WORK/pip/wheels"
  for wheel in "$TORCH_WHEELS"/torch-2.13.0+cpu-*.whl; do
    ln "$wheel" "$WORK/pip/wheels/" 2>/dev/null || cp "$wheel" "$WORK/pip/wheels/"
  done
fi
HOST_CA="${HOST_CA-$(pip config list 2>/dev/null | sed -n "s/^global\.cert='\(.*\)'$/\1/p")}"
if [ -n "$HOST_CA" ] && [ "$ENGINE" != docker ]; then
  pipconf+=("cert = /etc/xdg/pip/host-ca.pem")
  cp "$HOST_CA" "$WORK/pip/host-ca.pem"
fi
if [ "${#pipconf[@]}" -gt 0 ]; then
  printf '%s\n' "[global]" "${pipconf[@]}" >"$WORK/pip/pip.conf"
  mounts+=(--volume "$WORK/pip:/etc/xdg/pip:ro")
fi

# The base: the Ray image from its registry, or one assembled from Debian's packages.
if [ "$BASE" != debian ] && timeout 120 "${pull[@]}" "$RAY_IMAGE" >"$WORK/pull.log" 2>&1; then
  base="$RAY_IMAGE"
elif [ "$BASE" = registry ]; then
  cat "$WORK/pull.log" >&2; echo "cannot pull $RAY_IMAGE and BASE=registry" >&2; exit 1
elif [ "${REBUILD_BASE:-0}" != 1 ] && "${exists[@]}" "$BASE_TAG" >/dev/null 2>&1; then
  echo "base: $BASE_TAG (exists; REBUILD_BASE=1 assembles it again)"
  base="$BASE_TAG"
else
  [ "$BASE" = debian ] \
    || echo "cannot pull $RAY_IMAGE ($(tail -1 "$WORK/pull.log")): assembling $BASE_TAG from Debian's packages"
  rootfs="${ROOTFS:-}"
  if [ -z "$rootfs" ]; then
    command -v debootstrap >/dev/null || { echo "needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }
    rootfs="$WORK/rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian
  fi
  mkdir "$WORK/base"
  tar -C "$rootfs" --exclude=./proc/* --exclude=./sys/* --exclude=./dev/* -cf "$WORK/base/rootfs.tar" .
  cat >"$WORK/base/Dockerfile" <<'EOF'
FROM scratch
ADD rootfs.tar /
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 1000 --gid 100 --create-home --home-dir /home/ray --shell /bin/bash ray
USER 1000:100
# Debian's pip 23.0 backtracks for a long time over the project's requirements; the Ray image ships a current one.
RUN python3 -m venv /home/ray/venv && /home/ray/venv/bin/pip install --no-cache-dir --upgrade pip \
 && /home/ray/venv/bin/pip --version
ENV HOME=/home/ray PATH=/home/ray/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /home/ray
CMD ["bash"]
EOF
  "${build[@]}" ${mounts[@]+"${mounts[@]}"} -t "$BASE_TAG" "$WORK/base"
  base="$BASE_TAG"
fi

args+=(--build-arg "RAY_IMAGE=$base")

# The build context holds only what git tracks or would track (never .venv, models caches or results).
mkdir "$WORK/context"
if [ "${CONTEXT:-tree}" = head ]; then
  git -C "$ROOT" archive HEAD | tar -x -C "$WORK/context"
else
  git -C "$ROOT" ls-files -z --cached --others --exclude-standard \
    | (cd "$ROOT" && tar --null --no-recursion --ignore-failed-read -T - -cf -) | tar -x -C "$WORK/context"
fi
"${build[@]}" "${args[@]}" ${mounts[@]+"${mounts[@]}"} -t "$TAG" -f "$WORK/context/Dockerfile" "$WORK/context"
size="$("${images[@]}" --format '{{.Size}}' "$TAG" | head -1)"
echo "built $TAG FROM $base in $(( $(date +%s) - started ))s, size $size"
