"""The built image, checked from inside, as the user its pods run as. Opt-in: needs buildah and a built image.

SWITCHBOARD_IMAGE names the image (`scripts/build-image.sh cpu localhost/switchboard:0.1.0` builds it; on the
development machine FROM a base assembled from Debian's packages, since no registry is in reach), in buildah's
storage with the driver SWITCHBOARD_IMAGE_STORAGE (vfs by default, what the script uses). Nothing is faked: buildah
starts a working container from the image and each command runs in it without --user, so as the image's own USER,
which is what a pod runs as when its securityContext names no other. The container shares the host's network (chroot
isolation), so Ray gets free ports picked here, and its PID namespace: `ray stop` as uid 1000 can signal only uid
1000's processes, never a root-owned Ray running beside it. CI installs no buildah and builds no image: there every
test skips. tests/chart/test_dockerfile.py replays the same Dockerfile without an engine and runs everywhere.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator

import pytest

IMAGE = os.environ.get("SWITCHBOARD_IMAGE", "")
STORAGE = os.environ.get("SWITCHBOARD_IMAGE_STORAGE", "vfs")
MODEL = "smollm2-135m-instruct"  # the Dockerfile's default MODELS

pytestmark = pytest.mark.skipif(
    not (IMAGE and shutil.which("buildah")),
    reason="opt-in: needs buildah (CI does not install it) and SWITCHBOARD_IMAGE naming an image built by "
           "scripts/build-image.sh",
)


def buildah(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["buildah", "--storage-driver", STORAGE, *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def run() -> Iterator[Callable[[str], str]]:
    started = buildah("from", "--pull=never", IMAGE)
    assert started.returncode == 0, f"buildah from {IMAGE}: {started.stderr}"
    container = started.stdout.strip().splitlines()[-1]

    def in_image(command: str, timeout: float = 300) -> str:
        done = buildah("run", "--isolation", "chroot", container, "--", "sh", "-c", command, timeout=timeout)
        output = f"{done.stdout}{done.stderr}"[-4000:]
        assert done.returncode == 0, f"{command!r} failed in {IMAGE} (rc {done.returncode}):\n{output}"
        return done.stdout

    try:
        yield in_image
    finally:
        buildah("rm", container)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def test_the_image_runs_as_uid_1000_which_owns_app_and_models(run):
    user = buildah("inspect", "--type", "image", "--format", "{{.OCIv1.Config.User}}", IMAGE).stdout.strip()
    assert user == "1000:100"  # pods run non-root, as the Ray image's `ray` user
    assert run("id -u; id -g").split() == ["1000", "100"]
    assert run("stat -c '%u:%g' /app /models").split() == ["1000:100", "1000:100"]
    assert run("touch /app/.written /models/.written && echo ok").strip() == "ok"


def test_the_project_ray_cpu_torch_and_presidio_import(run):
    versions = run('python -c "import serving, ray, torch, presidio_analyzer; '
                   'print(ray.__version__, torch.__version__)"')
    ray_version, torch_version = versions.split()
    assert ray_version.startswith("2.60.") and torch_version == "2.13.0+cpu"  # CPU torch, not the CUDA build


def test_the_prepared_model_is_listed_and_readable_offline(run):
    listed = run("switchboard models list")
    assert "model store: /models" in listed
    assert any(line.split()[:2] == [MODEL, "prepared"] for line in listed.splitlines()), listed
    assert run(f"find /models/{MODEL} -type f | wc -l").strip() != "0"
    assert run(f"find /models/{MODEL} ! -readable | wc -l").strip() == "0"
    assert run(f"find /models/{MODEL} ! -perm -o=r | wc -l").strip() == "0"  # and by whatever uid a pod runs as
    assert run("find /app/models/pii-minilm -type f -readable | wc -l").strip() != "0"  # redaction's default detector
    for folder, card in (("models/quality-minilm", "metrics.json"), ("adapters/summarize", "metrics.json"),
                         ("adapters/reply", "metrics.json")):  # the chart's default TaskModels name them
        assert run(f"test -r /app/{folder}/{card} && echo ok").strip() == "ok", folder
    # Offline (HF_HUB_OFFLINE=1 is in the image): the tokenizer loads from the store with no hub in reach.
    tokens = run(f"python -c \"from transformers import AutoTokenizer; "
                 f"print(len(AutoTokenizer.from_pretrained('/models/{MODEL}')('Where is my order?').input_ids))\"")
    assert int(tokens.split()[-1]) > 0


def test_a_ray_head_starts_runs_a_task_and_stops_as_uid_1000(run):
    gcs, client, agent, agent_grpc, runtime_env, metrics, node_manager, object_manager = free_ports(8)
    task = (f"import ray; ray.init(address='127.0.0.1:{gcs}'); "
            "print('cpus', ray.cluster_resources().get('CPU')); "
            "print('task', ray.get(ray.remote(lambda: 41 + 1).remote()))")
    out = run(
        f"ray start --head --port={gcs} --ray-client-server-port={client} --dashboard-agent-listen-port={agent} "
        f"--dashboard-agent-grpc-port={agent_grpc} --runtime-env-agent-port={runtime_env} "
        f"--metrics-export-port={metrics} --node-manager-port={node_manager} --object-manager-port={object_manager} "
        f"--num-cpus=1 --include-dashboard=false --disable-usage-stats && python -c \"{task}\"; "
        f"rc=$?; ray stop; exit $rc", timeout=420)
    assert "Ray runtime started" in out and "cpus 1.0" in out and "task 42" in out, out[-3000:]
    assert "Stopped all" in out, out[-3000:]
