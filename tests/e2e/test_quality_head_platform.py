"""score-quality served by the trained head as a user runs the platform: `switchboard run` (real local Ray, Ray
Serve, Presidio, MiniLM) over HTTP, with the generative engine switched off (`none`), so every score-quality answer
comes from the head in the classify-intent replica, through the router's one request path.

Nothing is faked. Two tenants from datasets/quality/rubrics.json (shopright, connectwave) score the same held-out
conversation (ho-c21); their glossaries disagree on what verification, empathy, upsell and closing are, and the
answers must follow each tenant's. Needs the committed head (models/quality-minilm) and about a minute to start.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.local_run import free_port, serving

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "datasets" / "quality"
TENANTS = ("shopright", "connectwave")
STARTUP_TIMEOUT_S = 240


def _key(tenant: str) -> str:
    return f"sb-test-quality-{tenant}"


def _profile(name: str, tenant: dict) -> dict:
    return {"apiVersion": "switchboard.dev/v1alpha1", "kind": "TenantProfile", "metadata": {"name": f"q-{name}"},
            "spec": {"tenantId": f"q-{name}", "displayName": tenant["display_name"],
                     "apiKey": {"sha256": hashlib.sha256(_key(name).encode()).hexdigest()},
                     "tasks": ["score-quality"], "rubric": tenant["rubric"], "glossary": tenant["glossary"]}}


def quality_profiles(folder: Path) -> Path:
    """The TENANTS' TenantProfiles (datasets/quality/rubrics.json rubrics and glossaries) written into `folder`."""
    tenants = json.loads((DATA / "rubrics.json").read_text())["tenants"]
    for name in TENANTS:
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(_profile(name, tenants[name])))
    return folder


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    folder = quality_profiles(tmp_path_factory.mktemp("profiles"))
    port = free_port()
    env = {**os.environ, "SWITCHBOARD_PORT": str(port), "SWITCHBOARD_PROFILES_DIR": str(folder),
           "SWITCHBOARD_MODELS__GENERATOR_ENGINE": "none", "RAY_USAGE_STATS_ENABLED": "0"}
    with serving([sys.executable, "-m", "serving.cli", "run"], env, tmp_path_factory.mktemp("logs") / "platform.log",
                 port, STARTUP_TIMEOUT_S, ROOT) as base:
        yield {"base": base}


def _conversation() -> dict[str, dict]:
    records = [json.loads(line) for line in (DATA / "heldout.jsonl").read_text().splitlines() if line.strip()]
    return {r["tenant"]: r for r in records if r["conversation"] == "ho-c21"}


def test_the_head_answers_score_quality_by_each_tenants_glossary(platform):
    pair = _conversation()
    assert set(pair) == set(TENANTS)
    got = {}
    for tenant, record in pair.items():
        response = httpx.post(f"{platform['base']}/v1/tasks/score-quality", json={"turns": record["turns"]},
                              headers={"Authorization": f"Bearer {_key(tenant)}"}, timeout=60)
        assert response.status_code == 200, response.text
        body = response.json()
        assert [c["criterion"] for c in body["criteria"]] == [lab["id"] for lab in record["labels"]]
        assert body["attempts"] == 1 and body["usage"]["tokens_out"] == 0  # the head, not a generative model
        agent = " ".join(t["text"] for t in record["turns"] if t["speaker"] == "agent")
        for c in body["criteria"]:  # verbatim from the (redacted) agent turns: placeholders stand in for PII
            assert c["verdict"] in ("met", "not_met") and bool(c["evidence"]) == (c["verdict"] == "met"), c
            assert all(w in agent for w in c["evidence"].split() if not w.startswith("<")), c
        got[tenant] = {c["criterion"]: c["verdict"] for c in body["criteria"]}
    gold = {t: {lab["id"]: lab["verdict"] for lab in r["labels"]} for t, r in pair.items()}
    for criterion in ("verification", "empathy", "upsell", "closing"):  # the glossary decides these
        assert gold["shopright"][criterion] != gold["connectwave"][criterion]
        assert {t: got[t][criterion] for t in TENANTS} == {t: gold[t][criterion] for t in TENANTS}, criterion
