"""The redaction section of a TenantProfile: the default set, narrowing it (and the status that says what is left in
clear), `strict`, and `restore`'s validation. Real schema, compiler and router; the task deployments are the
RecordingBackend (tests/fakes.py) because only the policy's way to the deployment is under test here."""

from __future__ import annotations

import shutil

import pytest
import yaml
from fastapi.testclient import TestClient

from serving.errors import ProfileError
from serving.profiles import FolderProfileSource, ProfileRegistry, approximate_counter, compile_profile, parse_document
from serving.router import RouterContext, create_app
from serving.settings import Settings
from serving.vocabulary.entities import DEFAULT_ENTITIES, DESCRIPTIONS, SUPPORTED_ENTITIES
from tests.conftest import SAMPLES, SHOPRIGHT_KEY
from tests.fakes import RecordingBackend

AUTH = {"Authorization": f"Bearer {SHOPRIGHT_KEY}"}
CONTACT_CENTRE_CLASSES = {"PERSON", "LOCATION", "PHONE_NUMBER", "EMAIL_ADDRESS", "DATE_OF_BIRTH", "CREDIT_CARD",
                          "ACCOUNT_NUMBER", "IBAN_CODE", "PASSPORT", "DRIVER_LICENSE", "NATIONAL_ID", "US_SSN",
                          "CUSTOMER_ID", "POLICY_NUMBER", "ORDER_NUMBER", "TICKET_NUMBER", "IP_ADDRESS"}


@pytest.fixture
def doc() -> dict:
    return yaml.safe_load((SAMPLES / "shopright.yaml").read_text())


def compiled(doc: dict):
    return compile_profile("shopright", parse_document(doc).spec, approximate_counter)


def reject(doc: dict) -> str:
    with pytest.raises(ProfileError) as info:
        parse_document(doc, "test.yaml")
    return info.value.message


def test_default_set_covers_every_contact_centre_class(doc):
    assert CONTACT_CENTRE_CLASSES <= set(DEFAULT_ENTITIES) <= set(SUPPORTED_ENTITIES)
    assert set(DESCRIPTIONS) == set(SUPPORTED_ENTITIES)
    doc["spec"]["redaction"].pop("entities", None)
    profile = compiled(doc)
    assert profile.spec.redaction.entities == list(DEFAULT_ENTITIES) and profile.not_redacted == ()


def test_a_narrowed_profile_lists_what_it_leaves_in_clear(doc):
    doc["spec"]["redaction"]["entities"] = [e for e in DEFAULT_ENTITIES if e not in ("PASSPORT", "LOCATION")]
    assert compiled(doc).not_redacted == ("LOCATION", "PASSPORT")  # catalogue order
    doc["spec"]["redaction"]["entities"] = ["EMAIL_ADDRESS", "URL"]
    left = compiled(doc).not_redacted
    assert "EMAIL_ADDRESS" not in left and "URL" not in left and len(left) == len(DEFAULT_ENTITIES) - 1


def test_restore_needs_placeholder_mode(doc):
    doc["spec"]["redaction"].update(mode="mask", restore=True)
    message = reject(doc)
    assert "spec.redaction" in message and "restore: needs mode placeholder" in message and "mask" in message
    doc["spec"]["redaction"]["mode"] = "hash"
    assert "restore: needs mode placeholder" in reject(doc)
    doc["spec"]["redaction"].update(mode="placeholder", applyToTasks=False)
    assert "restore: needs applyToTasks: true" in reject(doc)
    doc["spec"]["redaction"]["applyToTasks"] = True
    assert compiled(doc).spec.redaction.restore is True


def test_strict_and_restore_default_off_and_are_part_of_the_version(doc):
    plain = compiled(doc)
    assert plain.spec.redaction.strict is False and plain.spec.redaction.restore is False
    doc["spec"]["redaction"]["strict"] = True
    assert compiled(doc).version != plain.version
    doc["spec"]["redaction"]["strict"] = "sometimes"
    assert "spec.redaction.strict" in reject(doc)


@pytest.fixture
def backend():
    return RecordingBackend()


def client_for(tmp_path, backend, redaction: dict):
    doc = yaml.safe_load((SAMPLES / "shopright.yaml").read_text())
    doc["spec"]["redaction"].update(redaction)
    (tmp_path / "shopright.yaml").write_text(yaml.safe_dump(doc))
    registry = ProfileRegistry(approximate_counter)
    ctx = RouterContext(Settings(profiles_dir=tmp_path), registry, FolderProfileSource(tmp_path, registry), backend)
    return TestClient(create_app(ctx))


def test_tenant_status_shows_the_policy_and_what_is_not_redacted(tmp_path, backend):
    narrowed = [e for e in DEFAULT_ENTITIES if e not in ("CUSTOMER_ID", "PHONE_NUMBER")]
    with client_for(tmp_path, backend, {"entities": narrowed, "strict": True}) as client:
        body = client.get("/v1/tenants/shopright", headers=AUTH).json()
    assert body["redaction"]["notRedacted"] == ["PHONE_NUMBER", "CUSTOMER_ID"]
    assert body["redaction"]["strict"] is True and body["redaction"]["mode"] == "placeholder"
    assert body["redaction"]["entities"] == narrowed


def test_the_sample_tenant_redacts_the_complete_set(tmp_path, backend):
    shutil.copy(SAMPLES / "shopright.yaml", tmp_path / "shopright.yaml")
    with client_for(tmp_path, backend, {}) as client:
        body = client.get("/v1/tenants/shopright", headers=AUTH).json()
    assert body["redaction"]["notRedacted"] == [] and body["redaction"]["restore"] is False


def test_strict_reaches_the_redaction_deployment(tmp_path, backend):
    with client_for(tmp_path, backend, {"strict": True}) as client:
        assert client.post("/v1/tasks/redact", json={"text": "ref 1234"}, headers=AUTH).status_code == 200
        turns = [{"speaker": "customer", "text": "my ref is 5678"}]
        assert client.post("/v1/tasks/classify-intent", json={"turns": turns}, headers=AUTH).status_code == 200
    assert [job.strict for _, job in backend.jobs if _ == "redact"] == [True, True]
