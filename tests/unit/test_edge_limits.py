"""Limits at the router's edge, over raw ASGI so that the body can arrive in chunks or never: a body over the limit
is 413 whether or not it declares its length, the bulk upload has its own larger limit, and a batch upload with no
valid key is refused before its body is read (a stalled body cannot hold the router).

Faked: the task engines (the recording TaskBackend), since no task needs to run. Real: the router app, its
middleware and error table, the sample profiles, the batch worker on a temporary folder.
"""

from __future__ import annotations

import asyncio
import json
import shutil

from serving.profiles import FolderProfileSource, ProfileRegistry, approximate_counter
from serving.router import RouterContext, create_app
from serving.settings import Settings
from tests.conftest import SAMPLES, SHOPRIGHT_KEY
from tests.fakes import RecordingBackend


def app_for(tmp_path):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    shutil.copy(SAMPLES / "shopright.yaml", profiles / "shopright.yaml")
    settings = Settings(profiles_dir=profiles, batches_dir=tmp_path / "batches", max_request_bytes=4096,
                        batch_max_bytes=16_384)
    registry = ProfileRegistry(approximate_counter)
    return create_app(RouterContext(settings, registry, FolderProfileSource(profiles, registry, 0.1), RecordingBackend()))


async def call(app, path: str, chunks: list[bytes] | None, headers: dict[str, str]) -> tuple[int, dict]:
    """One request; `chunks` arrive one message each (None: the body never comes, as from a stalled client)."""
    pending = list(chunks or [])
    sent: list[dict] = []

    async def receive():
        if chunks is None:
            await asyncio.Event().wait()  # a client that sends its headers and then nothing
        if pending:
            return {"type": "http.request", "body": pending.pop(0), "more_body": bool(pending)}
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "client": ("t", 1),
             "server": ("router", 80), "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    await asyncio.wait_for(app(scope, receive, send), 5)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body)


async def test_a_chunked_body_over_the_limit_is_413_without_a_declared_length(tmp_path):
    app = app_for(tmp_path)
    auth = {"authorization": f"Bearer {SHOPRIGHT_KEY}", "content-type": "application/json"}
    async with app.router.lifespan_context(app):
        status, body = await call(app, "/v1/tasks/redact", [b'{"text": "', b"a" * 3000, b"a" * 3000, b'"}'], auth)
        small, _ = await call(app, "/v1/tasks/redact", [b'{"text": ', b'"hi"}'], auth)
    assert status == 413 and body["error"]["message"] == "request body is over the limit of 4096 bytes"
    assert small == 200


async def test_the_bulk_upload_has_its_own_limit_and_no_key_means_no_read(tmp_path):
    app = app_for(tmp_path)
    line = json.dumps({"task": "redact", "body": {"text": "x" * 200}}).encode() + b"\n"
    auth = {"authorization": f"Bearer {SHOPRIGHT_KEY}", "content-type": "application/jsonl"}
    async with app.router.lifespan_context(app):
        accepted, _ = await call(app, "/v1/batches", [line] * 30, auth)  # about 7 KiB: over 4096, under 16384
        too_big, body = await call(app, "/v1/batches", [line] * 80, auth)
        stalled, refusal = await call(app, "/v1/batches", None, {"authorization": "Bearer sb-nope"})
        anonymous, _ = await call(app, "/v1/batches", None, {})
    assert accepted == 202
    assert too_big == 413 and "16384" in body["error"]["message"]
    assert stalled == 401 and refusal["error"]["type"] == "unauthenticated" and anonymous == 401


async def test_a_task_request_without_a_valid_key_is_refused_before_its_body_is_read(tmp_path):
    app = app_for(tmp_path)
    async with app.router.lifespan_context(app):
        wrong, body = await call(app, "/v1/tasks/redact", None, {"authorization": "Bearer sb-nope",
                                                                 "content-type": "application/json"})
        chat, openai_body = await call(app, "/v1/chat/completions", None, {"content-type": "application/json"})
    assert wrong == 401 and body["error"]["message"] == "the API key matches no tenant"
    assert chat == 401 and openai_body["error"]["code"] == "unauthenticated"  # OpenAI-shaped, as the route answers


def test_behind_serve_s_proxy_the_request_id_header_is_the_proxy_s_alone(tmp_path):
    """Ray Serve's proxy passes its x-request-id in and sets it on the response; the app must not add a second one
    (the issue saw it twice on every response), and its error bodies carry the same id. The proxy is not started
    here: its two header steps are what the test stands in for."""
    from fastapi.testclient import TestClient

    profiles = tmp_path / "profiles"
    profiles.mkdir()
    shutil.copy(SAMPLES / "shopright.yaml", profiles / "shopright.yaml")
    registry = ProfileRegistry(approximate_counter)
    ctx = RouterContext(Settings(profiles_dir=profiles, batches_dir=tmp_path / "batches"), registry,
                        FolderProfileSource(profiles, registry, 0.1), RecordingBackend())
    with TestClient(create_app(ctx, behind_serve_proxy=True)) as http:
        response = http.get("/v1/tasks", headers={"x-request-id": "3f0c6a52-proxy-id"})
    assert "x-request-id" not in response.headers
    assert response.status_code == 401 and response.json()["error"]["request_id"] == "3f0c6a52-proxy-id"
