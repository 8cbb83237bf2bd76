"""The router as the Ray Serve ingress: builds the FastAPI app on the replica, after handles arrive."""

from __future__ import annotations

import gc

from ray import serve

from serving.deployments.backend import RayBackend
from serving.profiles.compiler import wordpiece_counter
from serving.profiles.registry import ProfileRegistry
from serving.profiles.source import FolderProfileSource
from serving.resources import instruction_tokenizer_file
from serving.router import RouterContext, build_gates, create_app
from serving.settings import Settings
from serving.telemetry import tracing
from serving.telemetry.logging import configure_logging


@serve.ingress()
class Ingress:
    def __init__(
        self,
        settings: dict,
        handles: dict,
        profile_source: dict | None = None,
        gates: dict | None = None,
        heads: list[str] | None = None,
    ):
        # Settings were read once by the launcher; replicas rebuild them from that snapshot, not from their env.
        self.settings = Settings(**settings)
        configure_logging(self.settings.log_level)
        tracing.setup_tracing(self.settings.tracing, "router")
        models = self.settings.models
        generator = models.generator if models.generator_engine not in ("none", "fake") else None
        counter = wordpiece_counter(str(instruction_tokenizer_file(generator, models.cache_dir, models.embedding)))
        self.source = _profile_source(profile_source or {}, self.settings, counter)
        self.registry = self.source.registry
        self.backend = RayBackend(handles, heads=heads or ())  # heads: tasks a trained head answers (score-quality)
        self.gates = build_gates(gates or {}, self.settings.scheduling)
        # What start-up built (modules, tokenizer, settings) goes to the permanent generation, so a full collection
        # walks only what requests allocate: about 0.4 s for this heap on 2 busy cores, a stall every request feels.
        gc.freeze()

    def __serve_build_asgi_app__(self):
        return create_app(
            RouterContext(self.settings, self.registry, self.source, self.backend, gates=self.gates),
            behind_serve_proxy=True,
        )


def _profile_source(args: dict, settings: Settings, counter):
    """A folder of YAML locally; the TenantProfiles (and key Secrets) of the namespace in a cluster."""
    if args.get("source") == "kubernetes":
        from kubernetes import config

        from serving.profiles.kubernetes import KubernetesProfileSource

        config.load_incluster_config()  # the router pod's ServiceAccount
        return KubernetesProfileSource.with_registry(counter, args["namespace"])
    return FolderProfileSource(settings.profiles_dir, ProfileRegistry(counter), settings.profile_poll_interval_s)
