"""Index warm-up: a serving process builds every tenant taxonomy's index when its profile is loaded or changes.

Without it the first classify-intent request of a taxonomy (a new tenant, an edited profile, a fresh replica) embeds
all the taxonomy's descriptions and examples inside its own deadline: about 5 s for NorthBank's 77 intents on two
busy cores, against a 10 s deadline. The warmer follows a ProfileRegistry (kept current by a ProfileSource) instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from serving.errors import ConfigError, NotFound
from serving.intent.classifier import IntentClassifier
from serving.profiles.compiler import CompiledProfile
from serving.profiles.registry import ProfileRegistry
from serving.profiles.source import ProfileSource

log = logging.getLogger(__name__)


class TaxonomyWarmer:
    """Builds the indexes of the taxonomies a registry holds; `watch` keeps doing so as profiles change."""

    def __init__(self, classifier: IntentClassifier, registry: ProfileRegistry, interval_s: float = 0.5):
        self.classifier = classifier
        self.registry = registry
        self.interval_s = interval_s
        self._seen: dict[
            str, CompiledProfile
        ] = {}  # tenant -> the compiled profile last warmed (identity: unchanged since)

    def warm(self) -> int:
        """Build the indexes of accepted profiles that changed since the last call (blocking); returns how many
        indexes were built. A taxonomy whose index cannot be built (a missing head file) is logged and left to its
        requests, which answer with the error; at most `cache_size` are built per call (more would evict each other)."""
        current = {tenant: profile for tenant in self.registry.tenants() if (profile := self._profile(tenant))}
        changed = [(t, p.spec.intents) for t, p in current.items() if self._seen.get(t) is not p and p.spec.intents]
        built = 0
        for tenant, taxonomy in changed[: self.classifier.cache_size]:
            try:
                built += self.classifier.warm([taxonomy])
            except ConfigError as exc:
                log.warning("intent index not built", extra={"tenant": tenant, "reason": exc.message})
        self._seen = current
        if built:
            log.info("intent indexes built ahead of requests", extra={"indexes": built, "tenants": len(changed)})
        return built

    async def watch(self) -> None:
        """Warm every `interval_s` until cancelled."""
        while True:
            await asyncio.sleep(self.interval_s)
            await asyncio.to_thread(self.warm_logged)

    def warm_logged(self) -> int:
        """`warm`, but an unexpected failure is logged, not raised (the watch loop must outlive it)."""
        try:
            return self.warm()
        except Exception as exc:  # noqa: BLE001 - the next change is warmed again; requests still build their own
            log.warning("intent index warm-up failed", extra={"reason": f"{type(exc).__name__}: {str(exc)[:300]}"})
            return 0

    def _profile(self, tenant: str) -> CompiledProfile | None:
        try:
            return self.registry.get(tenant)
        except NotFound:  # removed between tenants() and get()
            return None


def start_warming(
    classifier: IntentClassifier,
    source: ProfileSource,
    registry: ProfileRegistry,
    interval_s: float = 0.5,
    spawn: Callable | None = None,
) -> TaxonomyWarmer:
    """Read the profiles once and build their indexes (blocking: a replica is ready when they exist), then follow
    changes with `spawn` (e.g. `loop.create_task`) running the source's watch and the warmer's."""
    warmer = TaxonomyWarmer(classifier, registry, interval_s)
    try:
        source.sync()
    except Exception as exc:  # noqa: BLE001 - no profiles yet: requests still work, they build their own index
        log.warning(
            "profiles unreadable at start; intent indexes are built on first use", extra={"reason": str(exc)[:300]}
        )
    warmer.warm_logged()
    if spawn is not None:
        spawn(source.watch())
        spawn(warmer.watch())
    return warmer
