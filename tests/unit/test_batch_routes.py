"""`/v1/batches` over HTTP: upload, progress, results in input order with per-line errors, tenant isolation, cancel,
uploads refused whole.

Faked: the task engines, replaced by the recording TaskBackend (as in test_router.py), because what is under test is
the batch path; and, in the cancel test, a gate in front of the real task path so that a line is in flight on cue.
Real: the router app (auth, middleware, error table), the sample tenant profiles, the task service, admission,
the batch store on a temporary folder and the batch worker, over httpx's ASGI transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil

import httpx
import pytest

from serving.batches import BatchRunner, BatchStore
from serving.profiles import FolderProfileSource, ProfileRegistry, approximate_counter
from serving.router import RouterContext, batches, create_app
from serving.settings import Settings
from tests.conftest import NORTHBANK_KEY, SAMPLES, SHOPRIGHT_KEY
from tests.fakes import RecordingBackend

SHOPRIGHT = {"Authorization": f"Bearer {SHOPRIGHT_KEY}"}
NORTHBANK = {"Authorization": f"Bearer {NORTHBANK_KEY}"}
JSONL = {"content-type": "application/jsonl"}


def jsonl(*items) -> bytes:
    return b"".join((item if isinstance(item, bytes) else json.dumps(item).encode()) + b"\n" for item in items)


@contextlib.asynccontextmanager
async def router(tmp_path, wrap=lambda execute: execute, northbank_batches=True, max_lines=100):
    """The real router app with the batch routes, the worker on a temporary folder, and an HTTP client."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    shutil.copy(SAMPLES / "shopright.yaml", profiles / "shopright.yaml")
    northbank = (SAMPLES / "northbank.yaml").read_text()
    if not northbank_batches:
        northbank = northbank.replace("    defaultClass: interactive\n",
                                      "    defaultClass: interactive\n    allowedClasses: [interactive]\n")
    (profiles / "northbank.yaml").write_text(northbank)
    registry = ProfileRegistry(approximate_counter)
    settings = Settings(profiles_dir=profiles, max_request_bytes=4096, batch_max_bytes=8192, max_text_chars=500)
    ctx = RouterContext(settings, registry, FolderProfileSource(profiles, registry, 0.1), RecordingBackend())
    ctx.batches = BatchRunner(BatchStore(tmp_path / "batches"), wrap(batches.executor(ctx)), poll_s=0.05,
                              max_lines=max_lines)
    app = create_app(ctx)  # its lifespan starts and stops the runner
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://router") as http:
            yield http


async def until_finished(http, batch_id, headers=SHOPRIGHT) -> dict:
    async with asyncio.timeout(5):
        while True:
            info = (await http.get(f"/v1/batches/{batch_id}", headers=headers)).json()
            if info["status"] in ("completed", "cancelled"):
                return info
            await asyncio.sleep(0.02)


def records(response) -> list[dict]:
    return [json.loads(line) for line in response.text.splitlines()]


async def test_upload_progress_and_results_in_input_order_with_per_line_errors(tmp_path):
    upload = jsonl(
        {"custom_id": "r1", "task": "redact", "body": {"text": "mail jo@example.com"}},
        {"custom_id": "c1", "task": "classify-intent", "body": {"text": "where is my parcel?", "top_k": 1}},
        b"{this is not json",
        {"custom_id": "u1", "task": "translate", "body": {"text": "hola"}},
        {"custom_id": "s1", "task": "summarize", "body": {"transcript": "Customer: hi"}},
        {"custom_id": "long", "task": "redact", "body": {"text": "x" * 600}},
    )
    async with router(tmp_path) as http:
        created = await http.post("/v1/batches", content=upload, headers={**SHOPRIGHT, **JSONL})
        assert created.status_code == 202, created.text
        batch = created.json()
        assert batch["status"] == "queued" and batch["object"] == "batch"
        assert batch["counts"] == {"total": 6, "completed": 0, "failed": 2, "pending": 4}
        assert created.headers["location"] == f"/v1/batches/{batch['id']}"

        info = await until_finished(http, batch["id"])
        assert info["status"] == "completed" and info["finished_at"] >= info["created_at"]
        assert info["counts"] == {"total": 6, "completed": 2, "failed": 4, "pending": 0}

        results = await http.get(f"/v1/batches/{batch['id']}/results", headers=SHOPRIGHT)
        listed = (await http.get("/v1/batches", headers=SHOPRIGHT)).json()
        metrics = (await http.get("/metrics")).text
    assert results.status_code == 200 and results.headers["content-type"].startswith("application/jsonl")
    assert results.headers["x-switchboard-batch-status"] == "completed"
    assert results.headers["x-switchboard-batch-pending"] == "0"
    lines = records(results)
    assert [(r["line"], r["custom_id"]) for r in lines] == [
        (1, "r1"), (2, "c1"), (3, None), (4, "u1"), (5, "s1"), (6, "long")]
    assert lines[0]["response"]["text"] == "mail <EMAIL_ADDRESS_1>" and lines[0]["response"]["tenant"] == "shopright"
    assert lines[1]["response"]["label"] == "order_status"
    errors = {r["line"]: r["error"] for r in lines if "error" in r}
    assert errors[3]["status"] == 422 and errors[3]["message"].startswith("line 3: not JSON")
    assert errors[4]["status"] == 422 and "unknown task 'translate'" in errors[4]["message"]
    assert errors[5]["status"] == 404 and errors[5]["type"] == "not_found"  # no generative engine deployed here
    assert errors[6]["status"] == 422 and "over the limit of 500" in errors[6]["message"]
    assert [b["id"] for b in listed] == [batch["id"]]
    # lines went through the router's task path as the batch priority class
    assert 'switchboard_admitted_requests_total{priority="batch",task="redact",tenant="shopright"} 1.0' in metrics


async def test_another_tenant_cannot_see_or_cancel_a_batch(tmp_path):
    async with router(tmp_path) as http:
        batch_id = (await http.post("/v1/batches", content=jsonl({"task": "redact", "body": {"text": "x"}}),
                                    headers=SHOPRIGHT)).json()["id"]
        for method, path in (("GET", ""), ("GET", "/results"), ("POST", "/cancel")):
            response = await http.request(method, f"/v1/batches/{batch_id}{path}", headers=NORTHBANK)
            assert response.status_code == 404 and response.json()["error"]["type"] == "not_found"
        assert (await http.get("/v1/batches", headers=NORTHBANK)).json() == []
        assert (await http.get(f"/v1/batches/{batch_id}", headers={"Authorization": "Bearer sb-nope"})).status_code == 401
        info = await until_finished(http, batch_id)
    assert info["counts"]["completed"] == 1


async def test_cancel_stops_a_running_batch_and_results_say_which_lines_never_ran(tmp_path):
    gate = asyncio.Event()

    def gated(execute):
        async def run(tenant_id, task, body):
            if body["text"] == "wait":
                await gate.wait()
            return await execute(tenant_id, task, body)
        return run

    upload = jsonl(*({"custom_id": f"c{i}", "task": "redact", "body": {"text": t}}
                     for i, t in enumerate(["a", "wait", "b"], 1)))
    async with router(tmp_path, wrap=gated) as http:
        batch_id = (await http.post("/v1/batches", content=upload, headers=SHOPRIGHT)).json()["id"]
        async with asyncio.timeout(5):
            while (await http.get(f"/v1/batches/{batch_id}", headers=SHOPRIGHT)).json()["counts"]["completed"] < 2:
                await asyncio.sleep(0.02)
        partial = await http.get(f"/v1/batches/{batch_id}/results", headers=SHOPRIGHT)
        assert partial.headers["x-switchboard-batch-status"] == "running"
        assert partial.headers["x-switchboard-batch-pending"] == "1"
        assert [r["line"] for r in records(partial)] == [1, 3]  # finished lines so far, in input order

        cancelled = await http.post(f"/v1/batches/{batch_id}/cancel", headers=SHOPRIGHT)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        gate.set()
        results = await http.get(f"/v1/batches/{batch_id}/results", headers=SHOPRIGHT)
        again = await http.post(f"/v1/batches/{batch_id}/cancel", headers=SHOPRIGHT)
    assert again.json()["status"] == "cancelled"
    lines = records(results)
    assert results.headers["x-switchboard-batch-status"] == "cancelled"
    assert [("response" in r, r["line"]) for r in lines] == [(True, 1), (False, 2), (True, 3)]
    assert lines[1]["error"] == {"status": 409, "type": "cancelled",
                                 "message": "the batch was cancelled before this line ran"}


@pytest.mark.parametrize("body, headers, status, code, message", [
    (b"", JSONL, 422, "invalid_request", "empty"),
    (jsonl(*[{"task": "redact", "body": {"text": "x"}}] * 4), JSONL, 422, "invalid_request", "over the limit of 3"),
    (b"--x\r\n", {"content-type": "multipart/form-data; boundary=x"}, 415, "unsupported_media_type", "raw request body"),
    (b"x" * 9000, JSONL, 413, "payload_too_large", "over the limit of 8192 bytes"),
])
async def test_uploads_refused_whole(tmp_path, body, headers, status, code, message):
    async with router(tmp_path, max_lines=3) as http:
        response = await http.post("/v1/batches", content=body, headers={**SHOPRIGHT, **headers})
        assert (await http.get("/v1/batches", headers=SHOPRIGHT)).json() == []
    assert response.status_code == status, response.text
    assert response.json()["error"]["type"] == code and message in response.json()["error"]["message"]


async def test_a_default_task_from_the_query_and_an_unknown_one(tmp_path):
    async with router(tmp_path) as http:
        ok = await http.post("/v1/batches?task=redact", content=jsonl({"body": {"text": "a@b.co"}}), headers=SHOPRIGHT)
        bad = await http.post("/v1/batches?task=nope", content=jsonl({"body": {"text": "x"}}), headers=SHOPRIGHT)
        assert ok.status_code == 202 and ok.json()["task"] == "redact"
        await until_finished(http, ok.json()["id"])
        (line,) = records(await http.get(f"/v1/batches/{ok.json()['id']}/results", headers=SHOPRIGHT))
    assert line["task"] == "redact" and line["response"]["text"] == "<EMAIL_ADDRESS_1>"
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "query.task"


async def test_a_tenant_without_the_batch_class_may_not_submit(tmp_path):
    async with router(tmp_path, northbank_batches=False) as http:
        upload = jsonl({"task": "redact", "body": {"text": "x"}})
        response = await http.post("/v1/batches", content=upload, headers=NORTHBANK)
    assert response.status_code == 403 and "allowedClasses" in response.json()["error"]["message"]
