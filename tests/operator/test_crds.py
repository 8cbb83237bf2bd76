"""The CRDs: generated from the pydantic models, committed in two places, and the samples validate against them.

Nothing is faked; the schema checks use jsonschema over the CRDs' openAPIV3Schema (no API server: CEL rules are
checked for presence here and evaluated by a real API server in the e2e suite).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from operators.switchboard_operator.crds import all_crds, render, structural_schema
from operators.switchboard_operator.models import TaskModelSpec
from serving.profiles.model import TenantProfileSpec
from tests.k8s_helpers import CRDS, ROOT, SAMPLES, crd_schema, load_samples, schema_errors

CHART_CRDS = ROOT / "charts" / "switchboard-crds" / "templates"


@pytest.mark.parametrize("folder", [CRDS, CHART_CRDS], ids=["manifests", "chart"])
def test_committed_crds_match_the_models(folder: Path):
    for name, crd in all_crds().items():
        assert (folder / name).read_text() == render(crd), f"{folder / name} drifted: run python -m operators.switchboard_operator.crds"


def _walk(node, path=""):
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")


@pytest.mark.parametrize("model", [TenantProfileSpec, TaskModelSpec])
def test_schemas_are_structural(model):
    """What the API server refuses in a structural schema: refs, unions of types, titles, additionalProperties: false."""
    for path, node in _walk(structural_schema(model)):
        assert not {"$ref", "$defs", "anyOf", "oneOf", "allOf", "title", "const", "propertyNames"} & set(node), path
        assert node.get("additionalProperties") is not False, path
        if "properties" in node or "additionalProperties" in node:
            assert node.get("type") == "object", path
        if "default" in node:
            assert not isinstance(node["default"], (dict, list)) and node["default"] is not None, path


def test_names_scope_status_subresource_and_printer_columns():
    crds = {c["spec"]["names"]["kind"]: c for c in all_crds().values()}
    for kind, short in (("TenantProfile", "tp"), ("TaskModel", "tm")):
        spec = crds[kind]["spec"]
        assert spec["group"] == "switchboard.dev" and spec["scope"] == "Namespaced"
        assert spec["names"]["shortNames"] == [short]
        assert spec["versions"][0]["name"] == "v1alpha1" and spec["versions"][0]["subresources"] == {"status": {}}
    columns = lambda kind: [c["name"] for c in crds[kind]["spec"]["versions"][0]["additionalPrinterColumns"] if not c.get("priority")]
    assert columns("TenantProfile") == ["ACCEPTED", "TOKENS", "AGE"]
    assert columns("TaskModel") == ["TASK", "ENGINE", "MIN", "MAX", "READY", "AGE"]


def test_cel_rules_for_cross_field_checks():
    tp = crd_schema(CRDS / "switchboard.dev_tenantprofiles.yaml")["properties"]["spec"]["properties"]
    tm = crd_schema(CRDS / "switchboard.dev_taskmodels.yaml")["properties"]["spec"]
    assert tp["apiKey"]["x-kubernetes-validations"][0]["rule"] == "has(self.sha256) != has(self.secretRef)"
    assert tm["properties"]["replicas"]["x-kubernetes-validations"][0]["rule"] == "self.max >= self.min"
    assert tm["x-kubernetes-validations"][0]["rule"] == "self.task == oldSelf.task"
    assert "maxProperties" in tp["instructions"]  # bounds the cost of its CEL rule


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.yaml")) + sorted(SAMPLES.glob("taskmodels/*.yaml")),
                         ids=lambda p: p.name)
def test_samples_validate_against_their_crd(path: Path):
    files = {"TenantProfile": "switchboard.dev_tenantprofiles.yaml", "TaskModel": "switchboard.dev_taskmodels.yaml"}
    for doc in (d for d in yaml.safe_load_all(path.read_text()) if d):
        assert schema_errors(crd_schema(CRDS / files[doc["kind"]]), doc) == [], f"{path.name}: {doc['metadata']['name']}"
        if doc["kind"] == "TaskModel":
            TaskModelSpec.model_validate(doc["spec"])


def test_crd_schema_refuses_what_the_models_refuse():
    schema = crd_schema(CRDS / "switchboard.dev_taskmodels.yaml")
    doc = load_samples("taskmodels/cpu.yaml")[0]
    bad = json.loads(json.dumps(doc))
    bad["spec"].update(engine="onnx", targetQueueDepth=0)
    bad["spec"]["resources"]["memory"] = "lots"
    errors = " ".join(schema_errors(schema, bad))
    assert "'onnx' is not one of" in errors and "memory" in errors and "targetQueueDepth" in errors
