"""Chart fixtures: the helm binary from .tools/bin (scripts/install-tools.sh puts it there), or a clean skip."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.k8s_helpers import ROOT

HELM = ROOT / ".tools" / "bin" / "helm"
CHART = ROOT / "charts" / "switchboard"
CRD_CHART = ROOT / "charts" / "switchboard-crds"
GPU_VALUES = CHART / "ci" / "gpu-values.yaml"
MINIMAL_VALUES = CHART / "ci" / "minimal-values.yaml"
CLUSTERWIDE_VALUES = CHART / "ci" / "clusterwide-values.yaml"
VALUE_SETS = {"default": None, "gpu": GPU_VALUES, "minimal": MINIMAL_VALUES, "clusterwide": CLUSTERWIDE_VALUES}


@pytest.fixture(scope="session")
def helm() -> Path:
    if not HELM.is_file():
        pytest.skip(f"helm not found at {HELM}: run scripts/install-tools.sh (CI does before the tests)")
    return HELM


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=60)


def render(helm: Path, *args: str, chart: Path = CHART) -> list[dict]:
    result = run_helm(helm, "template", "sb", str(chart), "--namespace", "switchboard", *args)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.fixture(scope="session")
def default_objects(helm) -> list[dict]:
    return render(helm)


@pytest.fixture(scope="session")
def gpu_objects(helm) -> list[dict]:
    return render(helm, "-f", str(GPU_VALUES))


@pytest.fixture(scope="session")
def rendered(helm) -> dict[str, list[dict]]:
    """Every value set of VALUE_SETS, rendered once."""
    return {name: render(helm, *(["-f", str(path)] if path else [])) for name, path in VALUE_SETS.items()}
