"""The router as the Ray Serve ingress: builds the FastAPI app on the replica, after handles arrive."""

from __future__ import annotations

from ray import serve

from serving.deployments.backend import RayBackend
from serving.profiles.compiler import wordpiece_counter
from serving.profiles.registry import ProfileRegistry
from serving.profiles.source import FolderProfileSource
from serving.resources import tokenizer_file
from serving.router import RouterContext, create_app
from serving.settings import Settings
from serving.telemetry import tracing
from serving.telemetry.logging import configure_logging


@serve.ingress()
class Ingress:
    def __init__(self, settings: dict, handles: dict):
        # Settings were read once by the launcher; replicas rebuild them from that snapshot, not from their env.
        self.settings = Settings(**settings)
        configure_logging(self.settings.log_level)
        tracing.setup_tracing(self.settings.tracing, "router")
        counter = wordpiece_counter(str(tokenizer_file(self.settings.models.embedding)))
        self.registry = ProfileRegistry(counter)
        self.source = FolderProfileSource(self.settings.profiles_dir, self.registry, self.settings.profile_poll_interval_s)
        self.backend = RayBackend(handles)

    def __serve_build_asgi_app__(self):
        return create_app(RouterContext(self.settings, self.registry, self.source, self.backend))
