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
