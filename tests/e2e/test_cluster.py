"""Real-cluster end to end: helm install the CRD chart and the chart, apply the samples, watch the operator work.

Nothing is faked. Runs only when KUBECONFIG points at a cluster (and scripts/install-tools.sh installed helm and
kubectl); skipped otherwise. It covers what the API-server emulator cannot: CEL rules, structural-schema defaulting and
pruning, RBAC, garbage collection through owner references, KubeRay reconciling the RayService, and `helm test`
(the router's /readyz). Set SWITCHBOARD_E2E_IMAGE (repository:tag) to test an image of your own.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.k8s_helpers import ROOT, SAMPLES

HELM = ROOT / ".tools" / "bin" / "helm"
KUBECTL = ROOT / ".tools" / "bin" / "kubectl"
KUBECONFIG = os.environ.get("KUBECONFIG", "")

pytestmark = [
    pytest.mark.skipif(not KUBECONFIG or not Path(KUBECONFIG).is_file(), reason="KUBECONFIG does not point at a cluster"),
    pytest.mark.skipif(not (HELM.is_file() and KUBECTL.is_file()), reason="run scripts/install-tools.sh for helm and kubectl"),
]


def sh(*args: str, check: bool = True, stdin: str | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, input=stdin, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))}\n{result.stdout}\n{result.stderr}")
    return result


def kubectl(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return sh(KUBECTL, *args, **kwargs)


def wait_for(check, timeout: float = 180, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}")


def condition(obj: dict, type_: str) -> str | None:
    return next((c["status"] for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_), None)


def get(kind: str, name: str, namespace: str) -> dict:
    result = kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else {}


@pytest.fixture(scope="module")
def release():
    namespace = f"sb-e2e-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    sh(HELM, "upgrade", "--install", "switchboard-crds", ROOT / "charts" / "switchboard-crds", "--wait")
    image = os.environ.get("SWITCHBOARD_E2E_IMAGE", "")
    overrides = []
    if image:
        repo, tag = image.rsplit(":", 1)
        for key in ("operator.image", "rayService.image"):
            overrides += ["--set", f"{key}.repository={repo}", "--set", f"{key}.tag={tag}"]
    sh(HELM, "install", "sb", ROOT / "charts" / "switchboard", "-n", namespace, "--wait", "--timeout", "5m", *overrides)
    try:
        yield namespace
    finally:
        sh(HELM, "uninstall", "sb", "-n", namespace, check=False)
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_cel_rule_refuses_max_below_min(release):
    doc = yaml.safe_load_all((SAMPLES / "taskmodels" / "cpu.yaml").read_text()).__next__()
    doc["metadata"]["name"] = "bad-replicas"
    doc["spec"]["replicas"] = {"min": 3, "max": 2}
    result = kubectl("apply", "--dry-run=server", "-n", release, "-f", "-", stdin=json.dumps(doc), check=False)
    assert result.returncode != 0 and "replicas.max must be >= replicas.min" in result.stderr


def test_tenantprofile_is_accepted_with_token_counts(release):
    kubectl("apply", "-n", release, "-f", SAMPLES / "shopright.yaml")
    profile = wait_for(lambda: condition(get("tp", "shopright", release), "Accepted") == "True"
                       and get("tp", "shopright", release), what="shopright accepted")
    assert profile["status"]["instructionTokensTotal"] > 0
    print(kubectl("get", "tp,tm", "-n", release).stdout)


def test_default_taskmodels_build_an_owned_rayservice(release):
    for name in ("redact", "classify-intent", "summarize", "score-quality", "reply"):
        wait_for(lambda n=name: condition(get("tm", n, release), "Accepted") == "True", what=f"{name} accepted")
    rayservice = wait_for(lambda: get("rayservice", "switchboard", release), what="RayService")
    assert {o["name"] for o in rayservice["metadata"]["ownerReferences"]} >= {"redact", "reply"}


def test_helm_test_reaches_readyz(release):
    if kubectl("get", "crd", "rayservices.ray.io", check=False).returncode != 0:
        pytest.skip("KubeRay's operator is not installed in this cluster")
    wait_for(lambda: condition(get("tm", "redact", release), "Ready") == "True", timeout=900, what="redact Ready")
    sh(HELM, "test", "sb", "-n", release, "--timeout", "10m", timeout=660)
