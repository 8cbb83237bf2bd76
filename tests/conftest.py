"""Shared fixtures: paths to the repository's samples and the shared data sets."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "manifests" / "samples"
DATA = ROOT.parent / "shared" / "data"

NORTHBANK_KEY = "sb-demo-northbank-7f3c9a"
SHOPRIGHT_KEY = "sb-demo-shopright-2b81d4"


@pytest.fixture
def samples_dir() -> Path:
    return SAMPLES


@pytest.fixture
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"shared data sets not found at {DATA} (the checkout must sit beside ../shared)")
    return DATA
