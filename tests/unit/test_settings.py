"""Settings from the environment and a secrets folder, with clear errors (real pydantic-settings)."""

from __future__ import annotations

import pytest

from serving.errors import ConfigError
from serving.settings import load_settings


def test_nested_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("SWITCHBOARD_PORT", "9100")
    monkeypatch.setenv("SWITCHBOARD_DEPLOYMENTS__CLASSIFY_INTENT__MAX_REPLICAS", "4")
    settings = load_settings(secrets_dir=tmp_path / "none")
    assert settings.port == 9100
    assert settings.deployments.classify_intent.max_replicas == 4
    assert settings.deployments.for_task("classify-intent").max_replicas == 4


def test_one_knob_keeps_the_deployments_own_defaults(monkeypatch, tmp_path):
    # pydantic builds a nested model from the env keys alone, with the class defaults (num_cpus 0.25): setting the
    # router's replicas must not also reset its num_cpus 0.1 and max_ongoing_requests 256 (2 such replicas did not
    # fit a 2-core machine), nor touch the other deployments.
    defaults = load_settings(secrets_dir=tmp_path / "none").deployments
    monkeypatch.setenv("SWITCHBOARD_DEPLOYMENTS__ROUTER__MIN_REPLICAS", "2")
    monkeypatch.setenv("SWITCHBOARD_DEPLOYMENTS__ROUTER__MAX_REPLICAS", "2")
    router = load_settings(secrets_dir=tmp_path / "none").deployments.router
    assert (router.min_replicas, router.max_replicas) == (2, 2)
    assert router.model_dump(exclude={"min_replicas", "max_replicas"}) == defaults.router.model_dump(
        exclude={"min_replicas", "max_replicas"})
    assert router.num_cpus == defaults.router.num_cpus != 0.25
    # Overrides passed in code merge the same way.
    generate = load_settings(secrets_dir=tmp_path / "none", deployments={"generate": {"batch_size": 4}}).deployments
    assert generate.generate.batch_size == 4
    assert generate.generate.num_cpus == defaults.generate.num_cpus
    assert generate.redact == defaults.redact


def test_secrets_folder_is_read(tmp_path, monkeypatch):
    # Secret files are named like the variables, e.g. a mounted Secret key `switchboard_ray_address`.
    (tmp_path / "switchboard_ray_address").write_text("ray://head:10001")
    assert load_settings(secrets_dir=tmp_path).ray_address == "ray://head:10001"


def test_bad_value_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("SWITCHBOARD_PORT", "seventy")
    with pytest.raises(ConfigError, match="SWITCHBOARD_PORT"):
        load_settings(secrets_dir=tmp_path)


def test_replica_bounds_are_checked(monkeypatch, tmp_path):
    monkeypatch.setenv("SWITCHBOARD_DEPLOYMENTS__REDACT__MIN_REPLICAS", "3")
    monkeypatch.setenv("SWITCHBOARD_DEPLOYMENTS__REDACT__MAX_REPLICAS", "2")
    with pytest.raises(ConfigError, match=r"max_replicas \(2\) must be >= min_replicas \(3\)"):
        load_settings(secrets_dir=tmp_path)


def test_unknown_setting_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("SWITCHBOARD_DEPLOYMENTS__REDACT__MAX_REPLICA", "2")
    with pytest.raises(ConfigError, match="MAX_REPLICA"):
        load_settings(secrets_dir=tmp_path)
