"""The Dockerfile, step by step as uid 1000 (the Ray image's user), in a scratch root instead of a container.

Faked: the container engine (none runs here: no Docker daemon, no podman) and so the base image. Each instruction
is replayed as Docker would: the base image's user is uid 1000; WORKDIR creates a missing folder as root (the
classic builder does); COPY without --chown writes root-owned files; RUN runs `sh -c` as the current USER (setpriv)
with /app and /models mapped into the scratch root. `pip` is a stub that logs what it would install and, for the
project itself, writes into the source folder as pip's in-tree build does; `switchboard models prepare` is real
(MODELS=tiny-random-llama: the same store code as SmolLM2's, in seconds), run by the system's Python 3.11 over the
project's .venv packages, since the .venv's own interpreter lives under /root where uid 1000 cannot reach.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.k8s_helpers import ROOT

DOCKERFILE = ROOT / "Dockerfile"
RAY_UID, RAY_GID = 1000, 100
PIP_STUB = """#!/bin/sh
echo "pip $*" >> "$PIP_LOG"
for arg in "$@"; do
  case "$arg" in
    .|.\\[*|./*) mkdir -p build "$(basename "$PWD").egg-info" && touch build/.in-tree && rm -rf build || exit 1 ;;
  esac
done
"""
SWITCHBOARD_STUB = """#!/bin/sh
exec /usr/bin/python3 -c 'import site, sys; site.addsitedir(sys.argv.pop(1)); sys.path.insert(0, sys.argv.pop(1)); \
from serving.cli import main; sys.argv[0] = "switchboard"; sys.exit(main())' "$VENV_SITE" "$PROJECT" "$@"
"""
VENV_SITE = next((ROOT / ".venv" / "lib").glob("python3*/site-packages"), None) if (ROOT / ".venv" / "lib").is_dir() else None


def instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
            for line in joined.splitlines() if line.strip()]


class Replay:
    def __init__(self, root: Path, build_args: dict[str, str]):
        self.root, self.args, self.env = root, dict(build_args), {}
        self.uid, self.gid, self.cwd = RAY_UID, RAY_GID, root
        shims = root / "shims"
        shims.mkdir()
        (shims / "pip").write_text(PIP_STUB)
        (shims / "pip").chmod(0o755)
        (shims / "switchboard").write_text(SWITCHBOARD_STUB)
        (shims / "switchboard").chmod(0o755)
        self.pip_log = root / "pip.log"
        self.pip_log.touch()
        os.chown(self.pip_log, RAY_UID, RAY_GID)
        home = root / "home" / "ray"
        home.mkdir(parents=True)
        os.chown(home, RAY_UID, RAY_GID)
        self.base_env = {"PATH": f"{shims}:/usr/bin:/bin", "HOME": str(home), "PIP_LOG": str(self.pip_log),
                         "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                         "VENV_SITE": str(VENV_SITE), "PROJECT": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}

    def path(self, text: str) -> str:
        return re.sub(r"(?<![\w.])/(app|models)\b", lambda m: f"{self.root}/{m.group(1)}", text)

    def arg(self, args: str) -> None:
        name, _, default = args.partition("=")
        self.args.setdefault(name, default)

    def from_(self, args: str) -> None:
        pass

    def user(self, args: str) -> None:
        user, _, group = args.partition(":")
        self.uid = 0 if user == "root" else int(user)
        self.gid = 0 if self.uid == 0 else int(group or RAY_GID)

    def workdir(self, args: str) -> None:
        self.cwd = Path(self.path(args))
        self.cwd.mkdir(parents=True, exist_ok=True)  # as root: os.chown only where a step asks

    def copy(self, args: str) -> None:
        words = shlex.split(args)
        owner = next((w.split("=", 1)[1] for w in words if w.startswith("--chown=")), "0:0")
        *sources, dest = [w for w in words if not w.startswith("--")]
        target = Path(self.path(dest)) if dest.startswith("/") else self.cwd / dest
        uid, gid = (int(x) for x in owner.split(":"))
        for source in sources:
            into = target / Path(source).name if dest.endswith("/") or len(sources) > 1 else target
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, into, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / source, into)
            for path in [into, *into.rglob("*")] if into.is_dir() else [into]:
                os.chown(path, uid, gid)

    def env_(self, args: str) -> None:
        self.env.update(dict(pair.split("=", 1) for pair in shlex.split(args)))

    def run_(self, args: str) -> None:
        env = {**self.base_env, **self.args, **self.env}
        command = ["sh", "-c", self.path(args)]
        if self.uid != 0:
            command = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", *command]
        result = subprocess.run(command, cwd=self.cwd, env=env, capture_output=True, text=True, timeout=300,
                                check=False)
        assert result.returncode == 0, f"RUN {args[:80]}... failed as uid {self.uid}:\n{result.stdout}{result.stderr}"[-3000:]


def replay(text: str, **build_args: str) -> Replay:
    root = Path(tempfile.mkdtemp(prefix="image-", dir="/tmp"))
    root.chmod(0o755)  # uid 1000 must reach it (pytest's tmp_path is private to root)
    state = Replay(root, build_args)
    try:
        for instruction, args in instructions(text):
            name = {"FROM": "from_", "ENV": "env_", "RUN": "run_"}.get(instruction, instruction.lower())
            getattr(state, name)(args)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return state


@pytest.fixture
def can_switch_user():
    if os.geteuid() != 0 or not shutil.which("setpriv") or VENV_SITE is None or not Path("/usr/bin/python3").exists():
        pytest.skip("needs root (to become uid 1000 with setpriv), /usr/bin/python3 and the project's .venv")


def owner(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_uid, info.st_gid


def test_cpu_image_steps_run_as_uid_1000_and_prepare_models_it_owns(can_switch_user):
    state = replay(DOCKERFILE.read_text(), MODELS="tiny-random-llama")
    try:
        app, models = state.root / "app", state.root / "models"
        assert owner(app) == owner(models) == (RAY_UID, RAY_GID)
        prepared = models / "tiny-random-llama"
        assert any(prepared.iterdir()) and owner(prepared) == (RAY_UID, RAY_GID)
        for path in [prepared, *prepared.rglob("*")]:  # readable by any uid a pod may run as
            assert stat.S_IMODE(path.stat().st_mode) & 0o004, f"{path.name} is not readable by other uids"
        pip = state.pip_log.read_text()
        assert "install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in pip
        assert "install --no-cache-dir .[k8s,cloud]\n" in pip
        assert state.uid == RAY_UID  # the image's last USER: pods run non-root
        assert state.env["SWITCHBOARD_MODELS__CACHE_DIR"] == "/models" and state.env["HF_HUB_OFFLINE"] == "1"
    finally:
        shutil.rmtree(state.root, ignore_errors=True)


def test_gpu_variant_installs_vllm_instead_of_cpu_torch(can_switch_user):
    state = replay(DOCKERFILE.read_text(), VARIANT="gpu", MODELS="")
    try:
        pip = state.pip_log.read_text()
        assert "install --no-cache-dir .[k8s,cloud,gpu]\n" in pip and "torch==2.13.0" not in pip
    finally:
        shutil.rmtree(state.root, ignore_errors=True)


def test_the_replay_catches_root_owned_folders(can_switch_user):
    """The Dockerfile as it was (no folders handed to uid 1000, root-owned COPY): `models prepare` cannot create
    /models and pip cannot build in /app. The replay must fail on it, or it proves nothing."""
    old = re.sub(r"USER root\nRUN install -d[^\n]*\nUSER 1000:100\n", "", DOCKERFILE.read_text()).replace("--chown=1000:100 ", "")
    assert old != DOCKERFILE.read_text()
    with pytest.raises(AssertionError, match="failed as uid 1000"):
        replay(old, MODELS="tiny-random-llama")
