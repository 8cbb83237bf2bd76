"""`/v1/batches` over HTTP: upload, progress, results in input order with per-line errors, tenant isolation, cancel,
uploads refused whole.

Faked: the task engines, replaced by the recording TaskBackend (as in test_router.py), because what is under test is
the batch path; and, in the cancel and delete tests, a gate in front of the real task path so that a line is in flight
on cue (whether cancelling the router's call reaches the replica is Ray Serve's part, covered by the engine tests).
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

from serving.batches import BatchRunner, BatchStore, Quota
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
async def router(tmp_path, wrap=lambda execute: execute, northbank_batches=True, max_lines=100, quota=None,
                 northbank_rps=50):
    """The real router app with the batch routes, the worker on a temporary folder, and an HTTP client."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    shutil.copy(SAMPLES / "shopright.yaml", profiles / "shopright.yaml")
    northbank = (SAMPLES / "northbank.yaml").read_text()
    if not northbank_batches:
        northbank = northbank.replace("    defaultClass: interactive\n",
                                      "    defaultClass: interactive\n    allowedClasses: [interactive]\n")
    northbank = northbank.replace("requestsPerSecond: 50", f"requestsPerSecond: {northbank_rps}")
    (profiles / "northbank.yaml").write_text(northbank)
    registry = ProfileRegistry(approximate_counter)
    settings = Settings(profiles_dir=profiles, max_request_bytes=4096, batch_max_bytes=32768, max_text_chars=500)
    ctx = RouterContext(settings, registry, FolderProfileSource(profiles, registry, 0.1), RecordingBackend())
    ctx.batches = BatchRunner(BatchStore(tmp_path / "batches"), wrap(batches.executor(ctx)), poll_s=0.05,
                              max_lines=max_lines, max_line_bytes=8192, quota=quota or Quota())
    app = create_app(ctx)  # its lifespan starts and stops the runner
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://router") as http:
            yield http


async def until_finished(http, batch_id, headers=SHOPRIGHT) -> dict:
    async with asyncio.timeout(20):
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
        async with asyncio.timeout(20):
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
    (jsonl(*[{"task": "redact", "body": {"text": "x"}}] * 4), JSONL, 413, "payload_too_large", "over the limit of 3"),
    (b"--x\r\n", {"content-type": "multipart/form-data; boundary=x"}, 415, "unsupported_media_type", "raw request body"),
    (b"x" * 33000, JSONL, 413, "payload_too_large", "over the limit of 32768 bytes"),
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


async def test_malformed_lines_each_get_their_own_422_and_the_good_lines_run(tmp_path):
    """The issue's probes (a deeply nested line, a 5,000-digit integer) and their relatives fail one line each."""
    good = {"custom_id": "ok", "task": "redact", "body": {"text": "mail jo@example.com"}}
    upload = jsonl(
        b"[" * 1500 + b"]" * 1500,  # RecursionError in json.loads
        b'{"task": "redact", "body": {"text": "x", "n": ' + b"7" * 4400 + b"}}",  # ValueError: int digit limit (4300)
        b'{"task": "classify-intent", "body": {"text": "x", "top_k": NaN}}',
        b'["task", "redact"]',
        b'{"task": "classify-intent", "body": {"text": "x", "top_k": true}}',
        b'{"task": "redact", "body": {"text": "' + b"x" * 8200 + b'"}}',  # over max_line_bytes (8192)
        b'{"task": "redact", "body": {"text": "\\udc00"}}',
        good,
    )
    async with router(tmp_path) as http:
        created = await http.post("/v1/batches", content=upload, headers={**SHOPRIGHT, **JSONL})
        assert created.status_code == 202, created.text
        assert created.json()["counts"] == {"total": 8, "completed": 0, "failed": 7, "pending": 1}
        await until_finished(http, created.json()["id"])
        lines = records(await http.get(f"/v1/batches/{created.json()['id']}/results", headers=SHOPRIGHT))
    errors = {r["line"]: r["error"] for r in lines if "error" in r}
    assert sorted(errors) == [1, 2, 3, 4, 5, 6, 7]
    assert all(e["status"] == 422 and e["type"] == "invalid_request" and e["message"].startswith(f"line {n}: ")
               for n, e in errors.items())
    assert "nested deeper" in errors[1]["message"] and "more digits" in errors[2]["message"]
    assert "NaN" in errors[3]["message"] and "got an array" in errors[4]["message"]
    assert "body.top_k" in errors[5]["message"] and "over the limit of 8192 bytes a line" in errors[6]["message"]
    assert "surrogate" in errors[7]["message"]
    assert lines[7]["response"]["text"] == "mail <EMAIL_ADDRESS_1>"


def gate_on(text: str, gate: asyncio.Event, cancelled: list):
    def gated(execute):
        async def run(tenant_id, task, body):
            if body["text"] == text:
                try:
                    await gate.wait()
                except asyncio.CancelledError:
                    cancelled.append(body["text"])
                    raise
            return await execute(tenant_id, task, body)
        return run
    return gated


async def test_delete_stops_a_running_batch_and_removes_its_files(tmp_path):
    gate, cancelled = asyncio.Event(), []
    upload = jsonl({"task": "redact", "body": {"text": "a"}}, {"task": "redact", "body": {"text": "wait"}})
    async with router(tmp_path, wrap=gate_on("wait", gate, cancelled)) as http:
        batch_id = (await http.post("/v1/batches", content=upload, headers=SHOPRIGHT)).json()["id"]
        async with asyncio.timeout(20):
            while (await http.get(f"/v1/batches/{batch_id}", headers=SHOPRIGHT)).json()["counts"]["completed"] < 1:
                await asyncio.sleep(0.02)
        assert (await http.delete(f"/v1/batches/{batch_id}", headers=NORTHBANK)).status_code == 404
        deleted = await http.delete(f"/v1/batches/{batch_id}", headers=SHOPRIGHT)
        after = [await http.request(m, f"/v1/batches/{batch_id}{p}", headers=SHOPRIGHT)
                 for m, p in (("GET", ""), ("GET", "/results"), ("DELETE", ""))]
        listed = (await http.get("/v1/batches", headers=SHOPRIGHT)).json()
    assert deleted.status_code == 200 and deleted.json() == {"id": batch_id, "object": "batch", "deleted": True}
    assert cancelled == ["wait"]  # the line in flight was cancelled, not left to run on
    assert [r.status_code for r in after] == [404, 404, 404] and listed == []
    assert [p.name for p in (tmp_path / "batches").iterdir() if not p.name.startswith(".")] == []


async def test_a_finished_batch_expires_after_the_retention(tmp_path):
    async with router(tmp_path, quota=Quota(retention_s=0.3)) as http:
        batch_id = (await http.post("/v1/batches", content=jsonl({"task": "redact", "body": {"text": "x"}}),
                                    headers=SHOPRIGHT)).json()["id"]
        info = await until_finished(http, batch_id)
        assert info["expires_at"] == int(info["finished_at"] + 0.3) or info["expires_at"] >= info["finished_at"]
        async with asyncio.timeout(20):
            while (await http.get(f"/v1/batches/{batch_id}", headers=SHOPRIGHT)).status_code != 404:
                await asyncio.sleep(0.05)
    assert not (tmp_path / "batches" / batch_id).exists()


async def test_uploads_over_a_tenant_cap_get_429_with_retry_after(tmp_path):
    gate, cancelled = asyncio.Event(), []
    one = jsonl({"task": "redact", "body": {"text": "wait"}})
    quota = Quota(max_active=1, max_stored=2, max_stored_bytes=4000, retention_s=600)
    async with router(tmp_path, wrap=gate_on("wait", gate, cancelled), quota=quota) as http:
        first = await http.post("/v1/batches", content=one, headers=SHOPRIGHT)
        busy = await http.post("/v1/batches", content=one, headers=SHOPRIGHT)
        other = await http.post("/v1/batches", content=one, headers=NORTHBANK)  # caps are per tenant
        gate.set()
        await until_finished(http, first.json()["id"])
        second = await http.post("/v1/batches", content=jsonl({"task": "redact", "body": {"text": "b"}}),
                                 headers=SHOPRIGHT)
        await until_finished(http, second.json()["id"])
        full = await http.post("/v1/batches", content=jsonl({"task": "redact", "body": {"text": "c"}}),
                               headers=SHOPRIGHT)
        await http.delete(f"/v1/batches/{first.json()['id']}", headers=SHOPRIGHT)
        room = await http.post("/v1/batches", content=jsonl({"task": "redact", "body": {"text": "c"}}),
                               headers=SHOPRIGHT)
        too_big = await http.post("/v1/batches", content=jsonl(*[{"task": "redact", "body": {"text": "y" * 400}}] * 11),
                                  headers=NORTHBANK)
    assert first.status_code == 202 and other.status_code == 202
    assert busy.status_code == 429 and busy.headers["retry-after"] == "30"
    assert "1 batches queued or running" in busy.json()["error"]["message"]
    assert full.status_code == 429 and "keeps 2 batches" in full.json()["error"]["message"]
    assert 590 <= int(full.headers["retry-after"]) <= 600  # when the oldest finished batch expires
    assert room.status_code == 202
    assert too_big.status_code == 413 and "a tenant may keep" in too_big.json()["error"]["message"]


async def test_uploads_count_against_the_tenant_request_limits(tmp_path):
    async with router(tmp_path, northbank_rps=1) as http:
        responses = [await http.post("/v1/batches", content=jsonl({"task": "redact", "body": {"text": "x"}}),
                                     headers=NORTHBANK) for _ in range(2)]
    assert [r.status_code for r in responses] == [202, 429]
    assert "requestsPerSecond" in responses[1].json()["error"]["message"] and int(responses[1].headers["retry-after"]) >= 1
