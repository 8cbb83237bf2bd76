"""Router behaviour over HTTP: auth, tenant isolation, error bodies, limits, redaction before classification.

Faked: the task engines, replaced by a recording TaskBackend, because what is under test is the router (the real
engines have their own tests and run behind the real router through Ray in tests/e2e). Real: FastAPI, the profile
registry and folder source on the sample profiles, the middleware, the error table.
"""

from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient

from serving.errors import Overloaded
from serving.profiles import FolderProfileSource, ProfileRegistry, approximate_counter
from serving.router import RouterContext, create_app
from serving.settings import Settings
from tests.conftest import NORTHBANK_KEY, SAMPLES, SHOPRIGHT_KEY
from tests.fakes import RecordingBackend


@pytest.fixture
def backend():
    return RecordingBackend()


@pytest.fixture
def client(tmp_path, backend):
    for name in ("shopright.yaml", "northbank.yaml"):
        if (SAMPLES / name).exists():
            shutil.copy(SAMPLES / name, tmp_path / name)
    settings = Settings(profiles_dir=tmp_path, max_request_bytes=4096, max_text_chars=500)
    registry = ProfileRegistry(approximate_counter)
    ctx = RouterContext(settings, registry, FolderProfileSource(tmp_path, registry, 0.1), backend)
    with TestClient(create_app(ctx)) as c:
        yield c


def auth(key=SHOPRIGHT_KEY):
    return {"Authorization": f"Bearer {key}"}


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["type"] == code and body["message"] and body["request_id"]
    return body


def test_health_and_ready(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["tenants"] >= 1


def test_missing_and_wrong_keys_are_401(client):
    body = assert_error(client.post("/v1/tasks/redact", json={"text": "hi"}), 401, "unauthenticated")
    assert "Authorization" in body["message"]
    assert_error(client.post("/v1/tasks/redact", json={"text": "hi"}, headers=auth("sb-nope")), 401, "unauthenticated")
    assert_error(client.post("/v1/tasks/redact", json={"text": "hi"}, headers={"Authorization": "Basic abc"}), 401,
                 "unauthenticated")


def test_a_key_reads_only_its_own_tenant(client):
    own = client.get("/v1/tenants/shopright", headers=auth())
    assert own.status_code == 200
    info = own.json()
    assert info["accepted"] and info["instruction_tokens"]["score-quality"] > 0
    assert "sha256" not in own.text and SHOPRIGHT_KEY not in own.text
    assert_error(client.get("/v1/tenants/northbank", headers=auth()), 403, "forbidden")


def test_redact_uses_the_tenant_policy(client, backend):
    response = client.post("/v1/tasks/redact", json={"text": "mail me at jo@example.com"}, headers=auth())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"] == "mail me at <EMAIL_ADDRESS_1>" and body["tenant"] == "shopright"
    job = backend.jobs[-1][1]
    assert job.salt == "shopright" and job.mode == "placeholder" and "ORDER_NUMBER" in job.entities


def test_classification_sees_only_redacted_text(client, backend):
    response = client.post("/v1/tasks/classify-intent", json={"text": "refund to jo@example.com please", "top_k": 1},
                           headers=auth())
    assert response.status_code == 200, response.text
    assert response.json()["redacted_entities"] == 1
    task, job = backend.jobs[-1]
    assert task == "classify-intent" and "jo@example.com" not in job.text and job.top_k == 1
    assert job.taxonomy.labels[0].name == "order_status"  # the caller's own taxonomy


def test_validation_errors_name_the_field(client):
    body = assert_error(client.post("/v1/tasks/classify-intent", json={"txt": "x"}, headers=auth()), 422, "invalid_request")
    assert "body.txt" in body["message"] and body["field"] in ("body.text", "body.txt")  # text is one of text/texts/turns
    body = assert_error(client.post("/v1/tasks/classify-intent", json={"text": "x", "top_k": 99}, headers=auth()), 422,
                        "invalid_request")
    assert "body.top_k" in body["message"]
    body = assert_error(client.post("/v1/tasks/redact", content=b"{not json", headers={**auth(), "content-type": "application/json"}),
                        422, "invalid_request")


def test_text_over_the_character_limit_is_422(client):
    body = assert_error(client.post("/v1/tasks/redact", json={"text": "a" * 501}, headers=auth()), 422, "invalid_request")
    assert "limit of 500" in body["message"]


def test_body_over_the_byte_limit_is_413(client):
    assert_error(client.post("/v1/tasks/redact", json={"text": "a" * 5000}, headers=auth()), 413, "payload_too_large")


def test_unknown_and_undeployed_tasks_are_404(client):
    body = assert_error(client.post("/v1/tasks/translate", json={}, headers=auth()), 404, "not_found")
    assert "unknown task 'translate'" in body["message"]
    body = assert_error(client.post("/v1/tasks/summarize", json={"transcript": "Customer: hi"}, headers=auth()), 404, "not_found")
    assert "not deployed" in body["message"]
    assert_error(client.get("/v1/nothing-here"), 404, "not_found")


def test_task_list_shows_served_and_enabled(client):
    tasks = {t["task"]: t for t in client.get("/v1/tasks", headers=auth()).json()}
    assert tasks["redact"]["served"] and tasks["redact"]["enabled"]
    assert not tasks["summarize"]["served"]  # this backend has no generative engine


def test_overload_from_a_deployment_is_503_with_retry_after(client, backend):
    backend.fail_with = Overloaded("task 'redact' is at capacity; retry shortly", retry_after=2)
    response = client.post("/v1/tasks/redact", json={"text": "hi"}, headers=auth())
    assert_error(response, 503, "overloaded")
    assert response.headers["Retry-After"] == "2"


def test_unexpected_failure_is_a_clean_500(client, backend):
    backend.fail_with = RuntimeError("secret customer text in the message")
    response = client.post("/v1/tasks/redact", json={"text": "hi"}, headers=auth())
    body = assert_error(response, 500, "internal_error")
    assert "secret customer text" not in response.text and "Traceback" not in response.text
    assert body["request_id"] == response.headers["x-request-id"]


def test_disabled_task_is_403(tmp_path, backend):
    text = (SAMPLES / "shopright.yaml").read_text().replace("  glossary:", "  tasks: [redact]\n  glossary:")
    (tmp_path / "shopright.yaml").write_text(text)
    registry = ProfileRegistry(approximate_counter)
    ctx = RouterContext(Settings(profiles_dir=tmp_path), registry, FolderProfileSource(tmp_path, registry), backend)
    with TestClient(create_app(ctx)) as c:
        body = assert_error(c.post("/v1/tasks/classify-intent", json={"text": "hi"}, headers=auth()), 403, "forbidden")
        assert "not enabled for tenant 'shopright'" in body["message"]


def test_openapi_documents_typed_task_bodies(client):
    spec = client.get("/openapi.json").json()
    assert "/v1/tasks/classify-intent" in spec["paths"] and "/v1/tasks/redact" in spec["paths"]
    assert "ClassifyIntentRequest" in spec["components"]["schemas"]


def test_northbank_key_reaches_northbank_only(client):
    if not (SAMPLES / "northbank.yaml").exists():
        pytest.skip("northbank sample not generated")
    assert client.get("/v1/tenants/northbank", headers=auth(NORTHBANK_KEY)).status_code == 200
    assert_error(client.get("/v1/tenants/shopright", headers=auth(NORTHBANK_KEY)), 403, "forbidden")


def test_metrics_count_requests_rejections_and_tokens_by_tenant_without_text(client):
    client.post("/v1/tasks/redact", json={"text": "mail jo@example.com"}, headers=auth())
    client.post("/v1/tasks/redact", json={"text": "x"}, headers=auth("sb-nope"))
    client.post("/v1/tasks/classify-intent", json={"text": "a" * 501}, headers=auth())
    text = client.get("/metrics").text
    assert 'switchboard_requests_total{status="200",task="redact",tenant="shopright"} 1.0' in text
    assert 'switchboard_rejected_requests_total{reason="unauthenticated",task="redact",tenant="unknown"} 1.0' in text
    assert 'switchboard_rejected_requests_total{reason="invalid",task="classify-intent",tenant="shopright"} 1.0' in text
    assert 'switchboard_tokens_total{direction="instruction",task="redact"' not in text  # redaction reads no prompt
    assert "switchboard_request_duration_seconds_bucket" in text and "switchboard_profiles_loaded" in text
    assert "jo@example.com" not in text and "aaaa" not in text
