"""The folder ProfileSource and the registry: reload on change, last good version on errors (real files, no mocks)."""

from __future__ import annotations

import asyncio
import shutil
import time

import pytest

from serving.errors import NotFound, Unauthenticated
from serving.profiles import FolderProfileSource, ProfileRegistry, ProfileSource, approximate_counter
from tests.conftest import SAMPLES, SHOPRIGHT_KEY


@pytest.fixture
def folder(tmp_path):
    shutil.copy(SAMPLES / "shopright.yaml", tmp_path / "shopright.yaml")
    return tmp_path


@pytest.fixture
def registry():
    return ProfileRegistry(approximate_counter)


def test_folder_source_implements_the_protocol(folder, registry):
    assert isinstance(FolderProfileSource(folder, registry), ProfileSource)


def test_sync_loads_profiles_and_keys_authenticate(folder, registry):
    FolderProfileSource(folder, registry).sync()
    assert registry.tenants() == ["shopright"]
    assert registry.authenticate(SHOPRIGHT_KEY).tenant_id == "shopright"
    with pytest.raises(Unauthenticated):
        registry.authenticate("sb-wrong")


def test_broken_edit_keeps_last_good_version_and_reports_why(folder, registry):
    source = FolderProfileSource(folder, registry)
    source.sync()
    good = registry.get("shopright").version
    path = folder / "shopright.yaml"
    path.write_text(path.read_text().replace("topK: 3", "topK: 3\n    bogus: 1"))
    source.sync()
    status = registry.status("shopright")
    assert not status.accepted and "spec.intents.bogus: unknown field" in status.message
    assert status.serving_version == good == registry.get("shopright").version
    assert registry.authenticate(SHOPRIGHT_KEY).version == good


def test_unparseable_file_keeps_last_good_version(folder, registry):
    source = FolderProfileSource(folder, registry)
    source.sync()
    (folder / "shopright.yaml").write_text("spec: [this is not yaml")
    source.sync()
    assert registry.status("shopright").accepted is False
    assert "not valid YAML" in registry.status("shopright").message
    assert registry.authenticate(SHOPRIGHT_KEY).tenant_id == "shopright"


def test_fixing_the_file_serves_the_new_version(folder, registry):
    source = FolderProfileSource(folder, registry)
    source.sync()
    old = registry.get("shopright").version
    path = folder / "shopright.yaml"
    path.write_text(path.read_text().replace("threshold: 0.3", "threshold: 0.45"))
    source.sync()
    assert registry.status("shopright").accepted
    assert registry.get("shopright").version != old
    assert registry.get("shopright").spec.intents.threshold == 0.45


def test_deleting_the_file_removes_the_tenant(folder, registry):
    source = FolderProfileSource(folder, registry)
    source.sync()
    (folder / "shopright.yaml").unlink()
    source.sync()
    with pytest.raises(NotFound):
        registry.get("shopright")
    with pytest.raises(Unauthenticated):
        registry.authenticate(SHOPRIGHT_KEY)


def test_second_file_claiming_the_same_tenant_is_rejected(folder, registry):
    shutil.copy(folder / "shopright.yaml", folder / "zz-copy.yaml")
    FolderProfileSource(folder, registry).sync()
    assert registry.get("shopright")  # the first file wins, the copy is refused
    assert registry.status("shopright").origin.endswith("shopright.yaml")


def test_same_key_for_two_tenants_is_rejected(folder, registry):
    text = (folder / "shopright.yaml").read_text()
    (folder / "other.yaml").write_text(text.replace("name: shopright", "name: other").replace("tenantId: shopright", "tenantId: other"))
    FolderProfileSource(folder, registry).sync()
    assert registry.tenants() == ["other"] or registry.tenants() == ["shopright"]
    rejected = [t for t in ("other", "shopright") if not registry.status(t).accepted]
    assert rejected and "already used by another tenant" in registry.status(rejected[0]).message


async def test_watch_picks_up_a_change_within_two_seconds(folder, registry):
    source = FolderProfileSource(folder, registry, interval_s=0.2)
    source.sync()
    task = asyncio.create_task(source.watch())
    try:
        path = folder / "shopright.yaml"
        path.write_text(path.read_text().replace("threshold: 0.3", "threshold: 0.5"))
        started = time.monotonic()
        while registry.get("shopright").spec.intents.threshold != 0.5:
            assert time.monotonic() - started < 2.0, "change not applied within 2 s"
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
