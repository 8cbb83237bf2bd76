"""Builds the Ray Serve application: the router ingress and one deployment per task, each with its own knobs."""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve import Application

from serving.deployments.generate import GenerateDeployment
from serving.deployments.ingress import Ingress
from serving.deployments.tasks import IntentDeployment, RedactDeployment
from serving.settings import DeploymentSettings, Settings
from serving.tasks.catalog import GENERATIVE, Task

APP_NAME = "switchboard"


def deployment_options(name: str, knobs: DeploymentSettings) -> dict[str, Any]:
    """Ray Serve options of one deployment (pure)."""
    options: dict[str, Any] = {
        "name": name,
        "max_ongoing_requests": knobs.max_ongoing_requests,
        "ray_actor_options": {"num_cpus": knobs.num_cpus},
    }
    if knobs.min_replicas == knobs.max_replicas:
        options["num_replicas"] = knobs.min_replicas
    else:
        options["autoscaling_config"] = knobs.autoscaling_config()
    return options


def build_application(settings: Settings) -> Application:
    d = settings.deployments
    redact = serve.deployment(RedactDeployment).options(**deployment_options(Task.REDACT.value, d.redact))
    intent = serve.deployment(IntentDeployment).options(**deployment_options(Task.CLASSIFY_INTENT.value, d.classify_intent))
    router = serve.deployment(Ingress).options(**deployment_options("router", d.router))
    traced = settings.tracing.model_dump(mode="json")
    handles = {
        Task.REDACT.value: redact.bind(settings.models.spacy, d.redact.batch_size, d.redact.batch_wait_s, traced),
        Task.CLASSIFY_INTENT.value: intent.bind(
            settings.models.embedding, d.classify_intent.batch_size, d.classify_intent.batch_wait_s, traced
        ),
    }
    if settings.models.generator_engine != "none":
        generate = serve.deployment(GenerateDeployment).options(**deployment_options("generate", d.generate))
        engine_options = {"max_batch_size": d.generate.batch_size, "batch_wait_s": d.generate.batch_wait_s}
        bound = generate.bind(settings.models.generator_engine, settings.models.generator,
                              str(settings.models.cache_dir.expanduser()), engine_options, traced)
        handles.update({task.value: bound for task in GENERATIVE})
    return router.bind(settings.model_dump(mode="json"), handles)


def build_app(args: dict[str, Any]) -> Application:
    """Entry point for `serve run serving.app:build_app` and KubeRay's serveConfigV2 (`args` = settings fields)."""
    return build_application(Settings(**(args or {})))
