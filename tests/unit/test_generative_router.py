"""Generative task endpoints and the OpenAI-compatible endpoint over HTTP.

Faked: the model, by the project's deterministic FakeEngine (it echoes the last user turn; the real engines pass the
same contract suite in tests/contract) and, for redaction, the RecordingBackend's e-mail-only redactor. Real: the
router, the profile pipeline, prompt composition, score-quality validation, SSE framing, and the `openai` client
talking HTTP to the app (through httpx's ASGI transport; nothing leaves the process).
"""

from __future__ import annotations

import json
import shutil

import httpx
import pytest
from fastapi.testclient import TestClient

from serving.engines.fake import FakeEngine
from serving.profiles import FolderProfileSource, ProfileRegistry, approximate_counter
from serving.router import RouterContext, create_app
from serving.settings import Settings
from tests.conftest import SAMPLES, SHOPRIGHT_KEY
from tests.fakes import RecordingBackend

AUTH = {"Authorization": f"Bearer {SHOPRIGHT_KEY}"}
TURNS = [
    {"speaker": "agent", "text": "Hi, this is Sam from ShopRight, how can I help?"},
    {"speaker": "customer", "text": "My lamp arrived broken, write to jo@example.com"},
]


@pytest.fixture
def backend():
    return RecordingBackend(engine=FakeEngine())


@pytest.fixture
def app(tmp_path, backend):
    shutil.copy(SAMPLES / "shopright.yaml", tmp_path / "shopright.yaml")
    registry = ProfileRegistry(approximate_counter)
    ctx = RouterContext(Settings(profiles_dir=tmp_path), registry, FolderProfileSource(tmp_path, registry), backend)
    return create_app(ctx)


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        yield c


def test_summarize_sees_redacted_turns_and_the_tenant_instruction(client, backend):
    response = client.post("/v1/tasks/summarize", json={"turns": TURNS, "max_tokens": 30}, headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["redacted_entities"] == 1 and body["usage"]["instruction_tokens"] > 0 and body["usage"]["tokens_in"] > 0
    request = backend.engine.received[-1]
    prompt = json.dumps(request.messages)
    assert "jo@example.com" not in prompt and "<EMAIL_ADDRESS_1>" in prompt
    assert "Always mention the order number" in request.messages[0]["content"]
    assert "jo@example.com" not in body["summary"]
    metrics = client.get("/metrics").text
    for direction in ("in", "out", "instruction"):
        assert f'switchboard_tokens_total{{direction="{direction}",task="summarize",tenant="shopright"}}' in metrics


def test_transcript_form_is_accepted(client):
    transcript = "Customer: where is my parcel?\nAgent: Let me check."
    response = client.post("/v1/tasks/summarize", json={"transcript": transcript}, headers=AUTH)
    assert response.status_code == 200, response.text


def test_max_tokens_is_honoured(client):
    response = client.post("/v1/tasks/reply", json={"turns": TURNS, "max_tokens": 2}, headers=AUTH)
    assert response.status_code == 200
    assert response.json()["finish_reason"] == "length" and response.json()["usage"]["tokens_out"] <= 2


def test_score_quality_returns_weighted_scores_with_evidence(client, backend):
    answer = {"criteria": [
        {"criterion": "greeting", "verdict": "met", "evidence": "Hi, this is Sam from ShopRight"},
        {"criterion": "verify-order", "verdict": "not_met", "evidence": ""},
        {"criterion": "resolution", "verdict": "not_met", "evidence": ""},
        {"criterion": "upsell", "verdict": "not_applicable", "evidence": ""},
    ]}
    backend.scripted = [json.dumps(answer)]
    response = client.post("/v1/tasks/score-quality", json={"turns": TURNS}, headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["overall"] == pytest.approx(1 / 6, abs=1e-4) and body["attempts"] == 1
    assert body["criteria"][0]["evidence"] == "Hi, this is Sam from ShopRight"
    job = backend.jobs[-1][1]
    assert job.json_schema["properties"]["criteria"]["minItems"] == 4  # the rubric travels as a JSON schema


def test_score_quality_retries_invalid_output_once_then_fails_explicitly(client, backend):
    backend.scripted = ["I think the agent did fine.", '{"criteria": []}']
    response = client.post("/v1/tasks/score-quality", json={"turns": TURNS}, headers=AUTH)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["type"] == "task_failed" and "after 2 attempts" in error["message"]


def test_score_quality_recovers_on_the_retry(client, backend):
    valid = {"criteria": [{"criterion": c, "verdict": "met", "evidence": ""} for c in ("greeting", "verify-order", "resolution", "upsell")]}
    backend.scripted = ["not json", json.dumps(valid)]
    response = client.post("/v1/tasks/score-quality", json={"turns": TURNS}, headers=AUTH)
    assert response.status_code == 200 and response.json()["attempts"] == 2 and response.json()["overall"] == 1.0


def test_reply_streams_server_sent_events(client):
    with client.stream("POST", "/v1/tasks/reply", json={"turns": TURNS, "stream": True, "max_tokens": 8}, headers=AUTH) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    deltas = "".join(e["delta"] for e in events if "delta" in e)
    assert deltas and events[-1]["done"] is True and events[-1]["usage"]["tokens_out"] > 0


def test_conversation_validation_errors(client):
    response = client.post("/v1/tasks/summarize", json={"turns": [{"speaker": "robot", "text": "x"}]}, headers=AUTH)
    assert response.status_code == 422 and "body.turns[0].speaker" in response.json()["error"]["message"]
    response = client.post("/v1/tasks/summarize", json={}, headers=AUTH)
    assert response.status_code == 422 and "exactly one of `turns` or `transcript`" in response.json()["error"]["message"]


# --- OpenAI compatibility, with the real openai client -------------------------------------------------------------

@pytest.fixture
async def openai_client(app):
    openai = pytest.importorskip("openai")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://router") as http:
            yield openai.AsyncOpenAI(api_key=SHOPRIGHT_KEY, base_url="http://router/v1", http_client=http)


async def test_openai_client_chat_completion(openai_client, backend):
    completion = await openai_client.chat.completions.create(
        model="switchboard/reply", messages=[{"role": "user", "content": "my email is jo@example.com, where is my order?"}],
        max_tokens=20)
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content and completion.usage.completion_tokens > 0
    assert "jo@example.com" not in json.dumps(backend.engine.received[-1].messages)


async def test_openai_client_streaming(openai_client):
    stream = await openai_client.chat.completions.create(
        model="switchboard/summarize", messages=[{"role": "user", "content": "the parcel never came"}], stream=True)
    parts, finish = [], None
    async for chunk in stream:
        parts.append(chunk.choices[0].delta.content or "")
        finish = chunk.choices[0].finish_reason or finish
    assert "".join(parts) and finish in ("stop", "length")


async def test_openai_errors_are_openai_shaped(openai_client):
    openai = pytest.importorskip("openai")
    with pytest.raises(openai.NotFoundError) as info:
        await openai_client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}])
    assert "switchboard/reply" in str(info.value)
    bad = openai.AsyncOpenAI(api_key="sb-wrong", base_url="http://router/v1", http_client=openai_client._client)
    with pytest.raises(openai.AuthenticationError):
        await bad.chat.completions.create(model="switchboard/reply", messages=[{"role": "user", "content": "hi"}])


async def test_openai_models_lists_the_tasks(openai_client):
    models = [m.id async for m in openai_client.models.list()]
    assert set(models) == {"switchboard/summarize", "switchboard/score-quality", "switchboard/reply"}


def test_a_stream_past_its_deadline_ends_with_an_error_event(client, backend):
    """The deadline bounds the stream too (README: "queued or running"). Faked: the engine's per-word latency (the
    FakeEngine stands in for a slow model), so the 200 ms deadline runs out mid-stream."""
    backend.engine.token_latency_s = 0.1
    body = {"turns": TURNS, "stream": True, "max_tokens": 400}
    headers = {**AUTH, "X-Switchboard-Deadline-Ms": "200"}
    with client.stream("POST", "/v1/tasks/reply", json=body, headers=headers) as r:
        assert r.status_code == 200
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1]["error"]["type"] == "deadline_exceeded", events[-1]
    assert not any(e.get("done") for e in events)
