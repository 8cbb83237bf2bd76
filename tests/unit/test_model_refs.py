"""Model references as configuration spells them: parsed purely, with exact errors (no filesystem, no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.errors import ConfigError
from serving.models import parse_model_ref


@pytest.mark.parametrize(
    "raw, kind, expected",
    [
        ("/models/smollm2", "local", {"path": Path("/models/smollm2")}),
        ("./models/x", "local", {"path": Path("models/x")}),
        ("../x", "local", {"path": Path("../x")}),
        ("file:///srv/models/x", "local", {"path": Path("/srv/models/x")}),
        ("smollm2-135m-instruct", "prepared", {"name": "smollm2-135m-instruct"}),
        ("tiny-random-llama", "prepared", {"name": "tiny-random-llama"}),
        ("HuggingFaceTB/SmolLM2-135M-Instruct", "hub", {"repo_id": "HuggingFaceTB/SmolLM2-135M-Instruct", "revision": None}),
        ("Qwen/Qwen2.5-0.5B-Instruct@main", "hub", {"repo_id": "Qwen/Qwen2.5-0.5B-Instruct", "revision": "main"}),
        ("org/name@refs/pr/1", "hub", {"revision": "refs/pr/1"}),
        ("hf://org/name@0123abcd", "hub", {"repo_id": "org/name", "revision": "0123abcd"}),
        ("s3://my-models/smollm2/v1", "s3", {"bucket": "my-models", "key": "smollm2/v1"}),
        ("s3://my.models/x/", "s3", {"bucket": "my.models", "key": "x"}),
        ("gs://acme_models/reply/2026-01", "gcs", {"bucket": "acme_models", "key": "reply/2026-01"}),
        ("pvc://models-pvc/smollm2", "pvc", {"bucket": "models-pvc", "key": "smollm2"}),
        ("pvc://models-pvc", "pvc", {"bucket": "models-pvc", "key": ""}),
    ],
)
def test_valid_references_parse_to_typed_refs(raw, kind, expected):
    ref = parse_model_ref(raw)
    assert ref.kind == kind
    assert ref.raw == raw
    for name, value in expected.items():
        assert getattr(ref, name) == value


def test_home_paths_expand():
    assert parse_model_ref("~/models/x").path == Path.home() / "models" / "x"


@pytest.mark.parametrize(
    "raw, why",
    [
        ("", "it is empty"),
        ("   ", "it is empty"),
        ("http://example.com/model", "unsupported scheme 'http'"),
        ("s3://Bad_Bucket/x", "not a valid bucket name"),
        ("s3://ab/x", "not a valid bucket name"),
        ("s3://my-models", "give the folder that holds the model"),
        ("s3://my-models/a/../b", "must not contain"),
        ("gs://bucket/a//b", "must not contain"),
        ("pvc://Models/x", "not a valid PersistentVolumeClaim name"),
        ("file://relative/x", "needs an absolute path"),
        ("models/a/b", "write relative paths as ./a/b/c"),
        ("org/na--me", "not a valid hub organisation or model name"),
        ("org/name@", "not a valid revision"),
        ("org/name@bad rev", "not a valid revision"),
        ("org/name@../x", "not a valid revision"),
        ("SmolLM2 135M", "a prepared model name uses lower-case letters"),
        ("UpperCase", "a prepared model name uses lower-case letters"),
    ],
)
def test_bad_references_say_what_is_wrong(raw, why):
    with pytest.raises(ConfigError) as caught:
        parse_model_ref(raw)
    assert why in caught.value.message
    assert caught.value.field == "model"


@pytest.mark.parametrize(
    "raw, uri, network",
    [
        ("org/name@v1", "org/name@v1", True),
        ("s3://my-models/x/", "s3://my-models/x", True),
        ("gs://b-1/x", "gs://b-1/x", True),
        ("pvc://claim/sub", "pvc://claim/sub", False),
        ("smollm2-135m-instruct", "smollm2-135m-instruct", False),
        ("/m", "/m", False),
    ],
)
def test_canonical_uri_and_network_need(raw, uri, network):
    ref = parse_model_ref(raw)
    assert ref.uri == uri
    assert ref.needs_network is network
    assert "/" not in ref.cache_name()
