"""The operator's serveConfigV2 application args, run on real local Ray Serve: the quality-head TaskModel (the
sample manifests/samples/taskmodels/quality-head.yaml, as the chart installs it by default) serves score-quality
through the router's one request path, with the verdicts each tenant's glossary calls for.

Faked: only what a cluster adds. The args are what operators.switchboard_operator.builders.app_args writes for the
sample TaskModels, but the profiles come from a folder instead of the Kubernetes API (no API server runs here), so
no replica has a TaskModel to report its quality gate to (that report is tested against the API-server emulator in
tests/operator/test_quality_gate_status.py). KubeRay would start Serve with these args the same way
(`serve.run(build_app(args))` through serveConfigV2's import_path).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import httpx
import pytest

from serving.cli import PROXY_READY_TIMEOUT
from tests.e2e.test_quality_head_platform import _conversation, _key, quality_profiles
from tests.k8s_helpers import load_samples
from tests.local_run import free_port, serving

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 240
LAUNCH = """
import json, signal, sys, threading
import ray
from ray import serve
from serving.app import APP_NAME, build_app
args, port = json.loads(open(sys.argv[1]).read()), int(sys.argv[2])
stop = threading.Event()
signal.signal(signal.SIGINT, lambda *_: stop.set())
ray.init(include_dashboard=False, num_cpus=2)
try:
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(args), name=APP_NAME, route_prefix="/", blocking=False)
    stop.wait()
finally:
    serve.shutdown()
    ray.shutdown()
"""


def serve_args(folder: Path) -> dict:
    from operators.switchboard_operator.builders import AcceptedModel, app_args
    from operators.switchboard_operator.models import TaskModelSpec

    docs = [d for d in load_samples("taskmodels/cpu.yaml") if d["spec"]["task"] == "redact"]
    docs += load_samples("taskmodels/quality-head.yaml")
    models = [AcceptedModel(d["metadata"]["name"], "uid", TaskModelSpec.model_validate(d["spec"])) for d in docs]
    args = app_args("support", models)
    assert args["tasks"]["score-quality"]["engine"] == "quality-head"
    return {**args, "profiles": {"source": "folder"}, "settings": {"profiles_dir": str(folder)}}


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    folder = quality_profiles(tmp_path_factory.mktemp("profiles"))
    args_file = tmp_path_factory.mktemp("args") / "args.json"
    args_file.write_text(json.dumps(serve_args(folder)))
    port = free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", PROXY_READY_TIMEOUT[0]: PROXY_READY_TIMEOUT[1]}
    with serving([sys.executable, "-c", LAUNCH, str(args_file), str(port)], env,
                 tmp_path_factory.mktemp("logs") / "cluster-shape.log", port, STARTUP_TIMEOUT_S, ROOT) as base:
        yield {"base": base}


def test_the_quality_head_taskmodel_scores_by_each_tenants_glossary(platform):
    pair = _conversation()
    gold = {t: {lab["id"]: lab["verdict"] for lab in r["labels"]} for t, r in pair.items()}
    for tenant, record in pair.items():
        response = httpx.post(f"{platform['base']}/v1/tasks/score-quality", json={"turns": record["turns"]},
                              headers={"Authorization": f"Bearer {_key(tenant)}"}, timeout=60)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["usage"]["tokens_out"] == 0  # the head answered, not a generative model
        got = {c["criterion"]: c["verdict"] for c in body["criteria"]}
        for criterion in ("verification", "empathy", "upsell", "closing"):  # the glossary decides these
            assert got[criterion] == gold[tenant][criterion], (tenant, criterion)

