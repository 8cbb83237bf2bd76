"""What the router app is built from: settings, the profile registry and source, and the task backend; and the
request path (serving.pipeline) that its routes hand their calls to, built from them."""

from __future__ import annotations

from dataclasses import dataclass, field

from serving.batches import BatchRunner
from serving.pipeline import Gates, Pipeline, TenantLimiter
from serving.pipeline.fairshare import SharePolicy
from serving.profiles.registry import ProfileRegistry
from serving.profiles.source import ProfileSource
from serving.settings import Settings
from serving.tasks.jobs import TaskBackend
from serving.telemetry.metrics import RouterMetrics


@dataclass
class RouterContext:
    settings: Settings
    registry: ProfileRegistry
    source: ProfileSource
    backend: TaskBackend
    metrics: RouterMetrics = field(default_factory=RouterMetrics)
    limiter: TenantLimiter = field(default_factory=TenantLimiter)
    # The router's queue per task deployment; none configured (in-process tests) means no router-side queueing.
    gates: Gates = field(default_factory=lambda: Gates({}, SharePolicy()))
    # The bulk worker; None builds the default one (folder store from settings) in create_app.
    batches: BatchRunner | None = None
    pipeline: Pipeline = field(init=False)

    def __post_init__(self) -> None:
        self.pipeline = Pipeline(self.backend, self.settings.max_text_chars, self.limiter, self.gates, self.metrics)
