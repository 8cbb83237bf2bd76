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


def attach_span_exporter(exporter) -> None:
    """Send every finished span to `exporter` too. OpenTelemetry lets a process set its global TracerProvider once
    (a second set_tracer_provider is refused with a warning), so the first test module that needs spans installs an
    SDK provider and every later one adds its processor to that same provider, whatever the test order."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
