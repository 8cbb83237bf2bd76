"""One trace per request, parented across the deployment handle, continuing a client's traceparent, without text.

Faked: the Ray transport only. A FakeHandle pickles each job and runs the real GenerateDeployment method in a fresh
contextvars context, so the trace can only cross the way it crosses a real Ray Serve handle: in the job's W3C carrier.
Real: OpenTelemetry SDK (in-memory exporter), the router, RayBackend's dispatch spans, the deployment's spans, the
deterministic FakeEngine. The real-Ray version of this check (file exporter, several processes) is in tests/e2e.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import pickle

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from serving.deployments.backend import RayBackend
from serving.deployments.generate import GenerateDeployment
from serving.profiles import FolderProfileSource, ProfileRegistry, approximate_counter
from serving.router import RouterContext, create_app
from serving.settings import Settings
from tests.conftest import SAMPLES, SHOPRIGHT_KEY, attach_span_exporter

EXPORTER = InMemorySpanExporter()
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
SECRET = "jo.secret@example.com"


@pytest.fixture(scope="module", autouse=True)
def provider():
    """Spans go to EXPORTER, whichever module installed the process's one TracerProvider (a second
    set_tracer_provider is refused: this test lost every span when test_restore.py ran first)."""
    attach_span_exporter(EXPORTER)


class _Method:
    def __init__(self, replica, name):
        self.replica, self.name = replica, name

    async def remote(self, job):
        crossed = pickle.loads(pickle.dumps(job))  # what Ray does to arguments
        call = getattr(self.replica, self.name)(crossed)
        return await asyncio.create_task(call, context=contextvars.Context())


class FakeHandle:
    def __init__(self, replica):
        self.replica = replica

    def __getattr__(self, name):
        return _Method(self.replica, name)


@pytest.fixture
def client(tmp_path):
    text = (SAMPLES / "shopright.yaml").read_text().replace("    mode: placeholder", "    mode: placeholder\n    applyToTasks: false")
    (tmp_path / "shopright.yaml").write_text(text)
    replica = GenerateDeployment("fake", "fake-model", "/nonexistent")
    backend = RayBackend({"summarize": FakeHandle(replica)})
    registry = ProfileRegistry(approximate_counter)
    ctx = RouterContext(Settings(profiles_dir=tmp_path), registry, FolderProfileSource(tmp_path, registry), backend)
    EXPORTER.clear()
    with TestClient(create_app(ctx)) as c:
        yield c


def _post(client, headers=None):
    body = {"turns": [{"speaker": "customer", "text": f"my e-mail is {SECRET}, parcel lost"}], "max_tokens": 8}
    response = client.post("/v1/tasks/summarize", json=body,
                           headers={"Authorization": f"Bearer {SHOPRIGHT_KEY}", **(headers or {})})
    assert response.status_code == 200, response.text
    return {s.name: s for s in EXPORTER.get_finished_spans()}, EXPORTER.get_finished_spans()


def ancestors(span, all_spans) -> list[str]:
    by_id = {s.context.span_id: s for s in all_spans}
    names = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


def test_one_trace_parented_across_the_handle(client):
    spans, all_spans = _post(client)
    assert len({s.context.trace_id for s in all_spans}) == 1
    root = spans["POST /v1/tasks/summarize"]  # FastAPI's native HTTP server span
    assert root.parent is None and root.kind == trace.SpanKind.SERVER
    assert root.attributes["switchboard.tenant"] == "shopright" and root.attributes["switchboard.task"] == "summarize"
    assert root.attributes["http.response.status_code"] == 200 and root.attributes["http.route"] == "/v1/tasks/summarize"
    assert ancestors(spans["authenticate"], all_spans)[-1] == root.name
    dispatch = spans["dispatch summarize"]
    assert dispatch.kind == trace.SpanKind.CLIENT and ancestors(dispatch, all_spans)[-1] == root.name
    replica = spans["task generate"]
    assert replica.kind == trace.SpanKind.SERVER and replica.parent.span_id == dispatch.context.span_id
    engine = spans["engine generate"]
    assert engine.parent.span_id == replica.context.span_id
    assert engine.attributes["switchboard.tokens_out"] > 0 and engine.attributes["switchboard.engine"] == "fake"
    assert spans["queue_wait"].parent.span_id == dispatch.context.span_id
    assert spans["compose prompt"].attributes["switchboard.instruction_tokens"] > 0


def test_a_client_traceparent_is_continued(client):
    _, all_spans = _post(client, {"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"})
    assert {format(s.context.trace_id, "032x") for s in all_spans} == {CLIENT_TRACE}
    root = next(s for s in all_spans if s.name.startswith("POST"))
    assert format(root.parent.span_id, "016x") == CLIENT_SPAN


def test_no_text_in_any_span(client):
    _, all_spans = _post(client)
    dumped = json.dumps([dict(s.attributes) for s in all_spans] + [s.name for s in all_spans])
    assert SECRET not in dumped and "parcel lost" not in dumped and SHOPRIGHT_KEY not in dumped
