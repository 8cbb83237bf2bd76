"""Mask, then restore: the model, logs, spans and metrics see placeholders; the tenant's own caller gets the values.

Faked: the model, by the deterministic FakeEngine (it echoes the conversation it was sent, so an answer names every
placeholder the model saw); redaction, by the RecordingBackend's e-mail-only redactor (tests/fakes.py; Presidio has
its own tests), except in the one test marked `real redactor`, which runs Presidio. `SplitStream` cuts the engine's
stream into 3-character deltas so that placeholders arrive split across chunks. Real: the router, the profile
pipeline, SSE framing, the OpenAI route, the batch executor, OpenTelemetry's SDK (in-memory exporter), logging and the
Prometheus registry.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
import yaml
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from serving.engines.fake import FakeEngine
from serving.profiles import FolderProfileSource, ProfileRegistry, approximate_counter
from serving.router import RouterContext, batches, create_app
from serving.settings import Settings
from serving.tasks.restore import Restorer, renumbered, restored_stream
from tests.conftest import SAMPLES, SHOPRIGHT_KEY, attach_span_exporter
from tests.fakes import RecordingBackend

AUTH = {"Authorization": f"Bearer {SHOPRIGHT_KEY}"}
SECRETS = ("jo.secret@example.com", "sam.other@example.org")
TURNS = [
    {"speaker": "customer", "text": f"My lamp arrived broken, write to {SECRETS[0]}"},
    {"speaker": "agent", "text": f"Sorry! Is {SECRETS[0]} right, or {SECRETS[1]}?"},
    {"speaker": "customer", "text": f"Yes, {SECRETS[0]} please, not {SECRETS[1]}."},
]
EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def spans():
    """Spans go to EXPORTER too, whichever module installed the process's one TracerProvider."""
    attach_span_exporter(EXPORTER)


# --- the Restorer: pure -----------------------------------------------------------------------------------------------


def test_a_value_keeps_one_placeholder_across_turns_and_two_values_never_share_one():
    originals = ["mail a@x.io", "or b@y.io, not a@x.io"]
    per_text = [{"entities": [{"type": "EMAIL_ADDRESS", "start": 5, "end": 11}]},
                {"entities": [{"type": "EMAIL_ADDRESS", "start": 3, "end": 9},
                              {"type": "EMAIL_ADDRESS", "start": 15, "end": 21}]}]
    texts, restorer = renumbered(originals, per_text)
    assert texts == ["mail <EMAIL_ADDRESS_1>", "or <EMAIL_ADDRESS_2>, not <EMAIL_ADDRESS_1>"]
    assert restorer.restore("Sent to <EMAIL_ADDRESS_2> and <EMAIL_ADDRESS_1>; <PERSON_1> stays.") == \
        "Sent to b@y.io and a@x.io; <PERSON_1> stays."
    assert "x.io" not in repr(restorer) and "x.io" not in str(restorer) and len(restorer) == 2


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 100])
def test_a_stream_restores_placeholders_split_anywhere(size):
    restorer = Restorer()
    restorer.add("<ORDER_NUMBER_1>", "55123")
    restorer.add("<PERSON_1>", "Jo")
    answer = "Hi <PERSON_1>, a replacement for order <ORDER_NUMBER_1> ships; <X_9> and 3 < 4 stay, <ORDER_NUMBER_1>"
    chunks = [{"delta": answer[i : i + size]} for i in range(0, len(answer), size)] + [{"finish_reason": "stop"}]

    async def collect():
        async def source():
            for chunk in chunks:
                yield chunk

        return [c async for c in restored_stream(source(), restorer)]

    out = asyncio.run(collect())
    assert "".join(c.get("delta", "") for c in out) == restorer.restore(answer)
    assert out[-1] == {"finish_reason": "stop"}
    assert all("<ORDER_NUM" not in c.get("delta", "") and "<PERS" not in c.get("delta", "") for c in out)


# --- through the router -----------------------------------------------------------------------------------------------


class SplitStream(RecordingBackend):
    """The engine's stream re-cut into 3-character deltas (a placeholder then always spans chunks)."""

    async def stream(self, task, job):
        async for chunk in super().stream(task, job):
            if "delta" not in chunk:
                yield chunk
                continue
            for i in range(0, len(chunk["delta"]), 3):
                yield {"delta": chunk["delta"][i : i + 3]}


@pytest.fixture
def backend():
    return SplitStream(engine=FakeEngine())


def make_ctx(tmp_path, backend, restore: bool) -> RouterContext:
    doc = yaml.safe_load((SAMPLES / "shopright.yaml").read_text())
    doc["spec"]["redaction"]["restore"] = restore
    (tmp_path / "shopright.yaml").write_text(yaml.safe_dump(doc))
    registry = ProfileRegistry(approximate_counter)
    return RouterContext(Settings(profiles_dir=tmp_path, batches_dir=tmp_path / "batches"), registry,
                         FolderProfileSource(tmp_path, registry), backend)


@pytest.fixture(params=[True, False], ids=["restore", "no-restore"])
def restore(request):
    return request.param


@pytest.fixture
def client(tmp_path, backend, restore):
    with TestClient(create_app(make_ctx(tmp_path, backend, restore))) as c:
        yield c


def sse(client, path, body) -> list:
    with client.stream("POST", path, json=body, headers=AUTH) as response:
        assert response.status_code == 200, response.read()
        return [line[6:] for line in response.iter_lines() if line.startswith("data: ")]


def answers(client) -> dict[str, str]:
    """What the caller reads from every generative route, streamed and not."""
    out = {}
    body = {"turns": TURNS, "max_tokens": 60}
    out["summarize"] = client.post("/v1/tasks/summarize", json=body, headers=AUTH).json()["summary"]
    out["reply"] = client.post("/v1/tasks/reply", json=body, headers=AUTH).json()["reply"]
    events = [json.loads(e) for e in sse(client, "/v1/tasks/reply", {**body, "stream": True})]
    assert events[-1]["done"] is True
    out["reply stream"] = "".join(e.get("delta", "") for e in events)
    messages = [{"role": "user" if t["speaker"] == "customer" else "assistant", "content": t["text"]} for t in TURNS]
    chat = {"model": "switchboard/summarize", "messages": messages, "max_tokens": 60}
    out["openai"] = client.post("/v1/chat/completions", json=chat, headers=AUTH).json()["choices"][0]["message"]["content"]
    events = sse(client, "/v1/chat/completions", {**chat, "stream": True})
    assert events[-1] == "[DONE]"
    out["openai stream"] = "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1])
    return out


def test_restore_round_trip_on_every_generative_route(client, backend, restore, caplog):
    caplog.set_level(logging.DEBUG)
    EXPORTER.clear()
    for route, answer in answers(client).items():
        if restore:  # the caller reads the values, each where the model wrote its placeholder
            assert SECRETS[0] in answer and SECRETS[1] in answer, (route, answer)
            assert "<EMAIL_ADDRESS_" not in answer, (route, answer)
        else:
            assert not any(s in answer for s in SECRETS), (route, answer)
            assert "<EMAIL_ADDRESS_1>" in answer and "<EMAIL_ADDRESS_2>" in answer, (route, answer)
    seen_by_model = json.dumps([request.messages for request in backend.engine.received])
    assert "<EMAIL_ADDRESS_1>" in seen_by_model and "<EMAIL_ADDRESS_2>" in seen_by_model
    logs = json.dumps([{**r.__dict__, "msg": r.getMessage()} for r in caplog.records], default=str)
    spans = json.dumps([dict(s.attributes) for s in EXPORTER.get_finished_spans()]
                       + [[e.name, dict(e.attributes)] for s in EXPORTER.get_finished_spans() for e in s.events])
    metrics = client.get("/metrics").text
    assert caplog.records and EXPORTER.get_finished_spans() and "switchboard_requests_total" in metrics
    for where, text in (("model", seen_by_model), ("logs", logs), ("spans", spans), ("metrics", metrics)):
        for secret in SECRETS:
            assert secret not in text and secret.split("@")[0] not in text, (where, secret)


def test_a_batch_line_stores_placeholders_even_when_the_profile_restores(tmp_path, backend):
    """Batch results are written to disk, so the batch path never restores (README: what a batch stores)."""
    ctx = make_ctx(tmp_path, backend, restore=True)
    ctx.source.sync()
    response = asyncio.run(batches.executor(ctx)("shopright", "summarize", {"turns": TURNS, "max_tokens": 60}))
    assert "<EMAIL_ADDRESS_1>" in response["summary"] and not any(s in json.dumps(response) for s in SECRETS)


def test_real_redactor_order_number_comes_back_for_the_caller(tmp_path):
    """real redactor: Presidio finds the order number; the model sees <ORDER_NUMBER_1>, the caller reads 55123."""
    from serving.redaction import Redactor
    from serving.replica.local_backend import LocalBackend
    from serving.replica.runner import TaskRunner

    engine = FakeEngine()
    ctx = make_ctx(tmp_path, LocalBackend(TaskRunner(redactor=Redactor()), engine), restore=True)
    with TestClient(create_app(ctx)) as client:
        body = {"turns": [{"speaker": "customer", "text": "My lamp arrived broken, order 55123."}], "max_tokens": 40}
        reply = client.post("/v1/tasks/reply", json=body, headers=AUTH).json()["reply"]
    assert "55123" in reply and "<ORDER_NUMBER_1>" not in reply
    prompt = json.dumps(engine.received[-1].messages)
    assert "55123" not in prompt and "<ORDER_NUMBER_1>" in prompt
