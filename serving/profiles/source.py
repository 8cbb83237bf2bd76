"""ProfileSource: where profiles come from. One interface; the folder implementation here, the Kubernetes one
(TenantProfiles and key Secrets from the API server) in serving/profiles/kubernetes.py."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path
from typing import Protocol, runtime_checkable

from serving.errors import ProfileError
from serving.profiles.compiler import load_documents
from serving.profiles.registry import ProfileRegistry

log = logging.getLogger(__name__)


@runtime_checkable
class ProfileSource(Protocol):
    """Delivers TenantProfile documents to a registry and keeps delivering changes until stopped."""

    def sync(self) -> None:
        """Bring the registry up to date once (blocking); called before the router reports ready."""

    async def watch(self) -> None:
        """Keep the registry up to date until cancelled; never raises on bad input, reports it instead."""


class FolderProfileSource:
    """TenantProfile YAML files (`*.yaml`, `*.yml`) in one folder, re-read when their content changes."""

    def __init__(self, folder: Path, registry: ProfileRegistry, interval_s: float = 0.5):
        self.folder = Path(folder)
        self.registry = registry
        self.interval_s = interval_s
        self._seen: dict[Path, str] = {}

    def sync(self) -> None:
        if not self.folder.is_dir():
            raise ProfileError(f"profiles folder {self.folder} does not exist")
        current = {p: _digest(p) for p in self._files()}
        for path in self._seen.keys() - current.keys():
            self.registry.remove(str(path))
            log.info("profile file removed", extra={"origin": str(path)})
        for path, digest in current.items():
            if digest is not None and self._seen.get(path) != digest:
                self._load(path)
        self._seen = {p: d for p, d in current.items() if d is not None}

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await asyncio.to_thread(self.sync)
            except ProfileError as exc:
                log.error("profiles folder unreadable", extra={"reason": exc.message})

    def _files(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())

    def _load(self, path: Path) -> None:
        origin = str(path)
        try:
            self.registry.apply(origin, load_documents(path.read_text(encoding="utf-8"), origin))
        except (ProfileError, OSError, UnicodeDecodeError) as exc:
            error = exc if isinstance(exc, ProfileError) else ProfileError(f"{origin}: cannot read file: {exc}")
            self.registry.reject(origin, error)


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
