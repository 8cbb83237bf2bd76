"""`GET /metrics` behind a scrape token: open where none is configured; with one, only that bearer token reads it
(tenant API keys do not: the metrics name every tenant). Also that the token comes from the secrets folder.

Faked: the task engines (the recording TaskBackend), since no task runs here. Real: the router app, its settings
(pydantic-settings, secrets folder), the sample profiles, the error table, over Starlette's TestClient.
"""

from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient

from serving.profiles import FolderProfileSource, ProfileRegistry, approximate_counter
from serving.router import RouterContext, create_app
from serving.settings import load_settings
from tests.conftest import SAMPLES, SHOPRIGHT_KEY
from tests.fakes import RecordingBackend

TOKEN = "scrape-6c1f0e2b9d"


def client_for(tmp_path, **overrides) -> TestClient:
    profiles = tmp_path / "profiles"
    profiles.mkdir(exist_ok=True)
    shutil.copy(SAMPLES / "shopright.yaml", profiles / "shopright.yaml")
    settings = load_settings(secrets_dir=tmp_path / "secrets", profiles_dir=profiles,
                             batches_dir=tmp_path / "batches", **overrides)
    registry = ProfileRegistry(approximate_counter)
    ctx = RouterContext(settings, registry, FolderProfileSource(profiles, registry, 0.1), RecordingBackend())
    return TestClient(create_app(ctx))


def test_without_a_token_metrics_are_open(tmp_path):
    with client_for(tmp_path) as http:
        response = http.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert "switchboard_profiles_loaded 1.0" in response.text


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {SHOPRIGHT_KEY}", "Bearer "])
def test_with_a_token_only_that_token_reads_metrics(tmp_path, authorization):
    with client_for(tmp_path, metrics_token=TOKEN) as http:
        refused = http.get("/metrics", headers={"Authorization": authorization} if authorization else {})
        allowed = http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert refused.json()["error"]["type"] == "unauthenticated" and "shopright" not in refused.text
    assert TOKEN not in refused.text
    assert allowed.status_code == 200 and 'tenant="shopright"' not in refused.text


def test_the_token_can_come_from_the_secrets_folder(tmp_path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "switchboard_metrics_token").write_text(TOKEN)  # one file per variable
    with client_for(tmp_path) as http:
        assert http.get("/metrics").status_code == 401
        assert http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
