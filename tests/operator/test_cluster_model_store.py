"""Models load in a cluster: s3:// folders through the `cloud` extra with credentials from a Secret, pvc:// mounts.

Faked: S3 itself, by moto's S3-compatible server on 127.0.0.1 (the same HTTP API; s3fs and botocore are the real
ones, pointed at it with AWS_ENDPOINT_URL as a credentials Secret would). The pvc:// mount is a local folder at the
store's pvc_root. Nothing else: the model store, settings and builders are the real ones.
"""

from __future__ import annotations

import socket

import pytest

from operators.switchboard_operator.builders import RouterOptions, build_rayservice
from serving.errors import ConfigError
from serving.models.store import ModelStore
from serving.settings import Settings
from tests.operator.test_builders import accepted, groups

FILES = {"config.json": b'{"model_type": "llama"}', "model.safetensors": b"\x00" * 4096, "tokenizer.json": b"{}"}


@pytest.fixture
def s3(monkeypatch):
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    pytest.importorskip("s3fs")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # What the chart's rayService.modelStorage.credentialsSecret puts into the Ray containers' environment.
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(key, value)
    import fsspec

    fsspec.config.conf.pop("s3", None)
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket="switchboard-models")
    for name, body in FILES.items():
        client.put_object(Bucket="switchboard-models", Key=f"summarize-slm/v2/{name}", Body=body)
    client.put_object(Bucket="switchboard-models", Key="summarize-slm/v2/lora/adapter_config.json", Body=b"{}")
    try:
        yield client
    finally:
        server.stop()


def test_an_s3_model_folder_is_fetched_once_into_the_cache(s3, tmp_path):
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    store = ModelStore(tmp_path, allow_network=True)
    folder = store.resolve("s3://switchboard-models/summarize-slm/v2")
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name in FILES} == FILES
    assert (folder / "lora" / "adapter_config.json").is_file()
    s3.delete_object(Bucket="switchboard-models", Key="summarize-slm/v2/config.json")
    assert store.resolve("s3://switchboard-models/summarize-slm/v2") == folder  # served from the cache


def test_local_mode_stays_offline():
    assert Settings().models.allow_network is False
    with pytest.raises(ConfigError, match="needs network access"):
        ModelStore("/nonexistent", allow_network=False).resolve("s3://switchboard-models/summarize-slm/v2")


def test_ray_pods_allow_object_storage_with_credentials_from_the_secret(monkeypatch):
    rayservice = build_rayservice("support", accepted("cpu.yaml", "gpu.yaml"), RouterOptions(storage_secret="model-storage"))
    cluster = rayservice["spec"]["rayClusterConfig"]
    containers = [cluster["headGroupSpec"]["template"]["spec"]["containers"][0]] + [
        g["template"]["spec"]["containers"][0] for g in groups(rayservice).values()]
    for container in containers:
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["SWITCHBOARD_MODELS__ALLOW_NETWORK"] == "true"
        assert container["envFrom"] == [{"secretRef": {"name": "model-storage"}}]
    monkeypatch.setenv("SWITCHBOARD_MODELS__ALLOW_NETWORK", "true")  # as the pods read it (pydantic-settings)
    assert Settings().models.allow_network is True


def test_a_pvc_model_resolves_under_the_mount_the_builder_adds(tmp_path):
    rayservice = build_rayservice("support", accepted("gpu.yaml"), RouterOptions())
    mounts = groups(rayservice)["gpu-l4"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert [m["mountPath"] for m in mounts] == ["/mnt/pvc/models"]  # score-quality: pvc://models/score-quality-slm-1b
    (tmp_path / "models" / "score-quality-slm-1b").mkdir(parents=True)
    store = ModelStore(tmp_path / "cache", pvc_root=str(tmp_path))  # tmp_path stands in for /mnt/pvc
    assert store.resolve("pvc://models/score-quality-slm-1b") == tmp_path / "models" / "score-quality-slm-1b"
