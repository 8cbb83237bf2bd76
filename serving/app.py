"""Builds the Ray Serve application (`build_app`, the one builder): the router ingress and the task deployments, each
with its own knobs.

Two shapes of `build_app` args, one code path:
- local (`switchboard run`): Settings, or Settings fields; redact, classify-intent and one `generate` deployment that serves the
  three generative tasks (they share the small model); score-quality goes to the classify-intent deployment instead when
  the trained head (models/quality-minilm) passes the quality gate;
- cluster (the operator's serveConfigV2): `profiles: {source: kubernetes, namespace}` and `tasks: {<task>: {...}}`, one
  deployment per TaskModel, named after its task (serveConfigV2 sets their replicas and resources by that name); a
  `quality-head` score-quality runs the head in a deployment of its own. The replicas that gate an adapter or a head
  write the verdict to their TaskModel's status (serving.deployments.gate_report).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from ray import serve
from ray.serve import Application, Deployment

from serving.deployments.generate import GenerateDeployment
from serving.deployments.ingress import Ingress
from serving.deployments.tasks import IntentDeployment, QualityHeadDeployment, RedactDeployment
from serving.settings import DeploymentSettings, Settings
from serving.vocabulary.catalog import GENERATIVE, Task
from serving.vocabulary.kinds import DeploymentEngine, EngineKind

APP_NAME = "switchboard"


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)


class Batching(_Args):
    max_batch_size: int = Field(8, ge=1)
    batch_wait_timeout_s: float = Field(0.01, ge=0)


class TaskArgs(_Args):
    task_model: str
    model: str
    model_source: str = "prepared"
    engine: DeploymentEngine | Literal[EngineKind.FAKE]
    dtype: str = "auto"
    max_model_len: int | None = None
    adapter: str | None = Field(
        None,
        description="LoRA adapter of a generative task, or the score-quality head of "
        "a quality-head one: a folder, or a URI / volume.",
    )
    adapter_source: str = "local"
    fallback_adapter: str | None = Field(
        None,
        description="The last adapter accepted for this TaskModel: it serves "
        "when `adapter` is refused by the quality gate or fails to load.",
    )
    batching: Batching = Batching()
    max_ongoing_requests: int = Field(32, ge=1, description="As in the deployment's options; sizes the router's gate.")
    max_queued_requests: int | None = Field(None, ge=0, description="Requests the router queues for this task.")


class ProfileSourceArgs(_Args):
    source: Literal["folder", "kubernetes"] = "folder"
    namespace: str | None = None


class ClusterArgs(_Args):
    profiles: ProfileSourceArgs
    tasks: dict[Task, TaskArgs]
    settings: dict[str, Any] = Field(default_factory=dict, description="Other Settings fields.")


def deployment_options(name: str, knobs: DeploymentSettings) -> dict[str, Any]:
    """Ray Serve options of one deployment (pure)."""
    options: dict[str, Any] = {
        "name": name,
        "max_ongoing_requests": knobs.max_ongoing_requests,
        "max_queued_requests": knobs.max_queued_requests or -1,
        "health_check_period_s": knobs.health_check_period_s,
        # Over max_queued_requests, Ray Serve's HTTP proxy answers 503 (in front of the router) with a Retry-After.
        "backpressure_config": {"status_code": 503, "retry_after_s": 1},
        "ray_actor_options": {"num_cpus": knobs.num_cpus},
    }
    if knobs.min_replicas == knobs.max_replicas:
        options["num_replicas"] = knobs.min_replicas
    else:
        options["autoscaling_config"] = knobs.autoscaling_config()
    return options


def _local_application(settings: Settings, profile_source: dict | None = None) -> Application:
    """The local shape: one deployment per in-process task and one shared `generate` deployment."""
    d, traced = settings.deployments, settings.tracing.model_dump(mode="json")
    tuned_tasks: dict[str, str] = {}
    head = accepted_head(settings.models.quality_head)
    intent = _intent(settings, d.classify_intent, Task.CLASSIFY_INTENT.value, profile_source, head)
    handles = {Task.REDACT.value: _redact(settings, d.redact, Task.REDACT.value), Task.CLASSIFY_INTENT.value: intent}
    if settings.models.generator_engine != "none":
        generate = _deployment(GenerateDeployment).options(**deployment_options("generate", d.generate))
        engine_options = {
            **settings.models.engine_options,
            "max_batch_size": d.generate.batch_size,
            "batch_wait_s": d.generate.batch_wait_s,
        }
        bound = generate.bind(
            settings.models.generator_engine,
            settings.models.generator,
            str(settings.models.cache_dir.expanduser()),
            engine_options,
            traced,
        )
        handles.update({task.value: bound for task in GENERATIVE})
        store = adapter_store(settings)
        adapters = {t: f for t, f in settings.models.adapters.items() if not (head and t == Task.SCORE_QUALITY.value)}
        tuned_tasks = accepted_adapters(adapters, store) if settings.models.generator_engine != "fake" else {}
        for task, folder in tuned_tasks.items():  # a deployment per tuned task; the others share `generate`
            tuned = _deployment(GenerateDeployment).options(**deployment_options(f"generate-{task}", d.generate))
            adapter = {"adapter": folder, "adapter_task": task, "adapter_store": str(store)}
            handles[task] = tuned.bind(
                settings.models.generator_engine,
                settings.models.generator,
                str(settings.models.cache_dir.expanduser()),
                {**engine_options, **adapter},
                traced,
            )
    heads = [Task.SCORE_QUALITY.value] if head else []
    handles.update(dict.fromkeys(heads, intent))  # the head runs in the classify replica, on its MiniLM
    gates = {task: gate_config(_local_deployment(task), d.for_task(_local_deployment(task))) for task in handles}
    gates.update({task: gate_config(f"generate-{task}", d.generate) for task in tuned_tasks})
    gates.update({task: gate_config(Task.CLASSIFY_INTENT.value, d.classify_intent) for task in heads})
    return _router(settings, handles, profile_source, gates, heads)


def accepted_head(ref: str) -> str | None:
    """The score-quality head's folder when it exists and its held-out figures pass the quality gate; None (and the
    reason logged, figures only) otherwise, so score-quality stays on the generative model."""
    if not ref or ref == "none":
        return None
    from serving.quality.head import gate, resolve_folder

    why = gate(ref)
    if why is not None:
        logging.getLogger(__name__).warning(
            "score-quality head %s refused: %s; score-quality stays on the generative model", ref, why
        )
        return None
    return str(resolve_folder(ref).resolve())


def accepted_adapters(adapters: dict[str, str], store: Path | None = None) -> dict[str, str]:
    """The tasks that get their own deployment (absolute adapter paths): those whose adapter passes the quality gate,
    and those whose adapter is refused but which have a last accepted copy in `store` (that copy serves; the
    deployment says why). The reason is logged for a refused one; without a copy that task stays on the shared base."""
    from serving.models.adapters import choose_adapter, last_accepted

    tuned = {}
    for task, folder in adapters.items():
        path = Path(folder).expanduser().resolve()
        last_good = last_accepted(store, task) if store is not None else None
        if not path.exists() and last_good is None:
            continue
        choice = choose_adapter(str(path), last_good)
        if choice.serving is not None:
            tuned[task] = str(path)
        if choice.reason:
            logging.getLogger(__name__).warning("%s: %s", task, choice.reason)
    return tuned


def adapter_store(settings: Settings) -> Path:
    """Where local mode keeps a copy of the last adapter accepted per task (under the model cache)."""
    from serving.models.adapters import STORE_DIR

    return settings.models.cache_dir.expanduser() / STORE_DIR


def _local_deployment(task: str) -> str:
    return task if task in (Task.REDACT.value, Task.CLASSIFY_INTENT.value) else "generate"


def gate_config(deployment: str, knobs: DeploymentSettings) -> dict[str, Any]:
    """The router's queue in front of one deployment (see serving.pipeline.scheduler)."""
    return {
        "deployment": deployment,
        "per_replica": knobs.max_ongoing_requests,
        "max_queued": knobs.max_queued_requests,
    }


def generate_engine_options(spec: TaskArgs, extra: dict[str, Any]) -> dict[str, Any]:
    """Engine options of a generative TaskModel (pure): the settings' extras, then batching, dtype and context length
    from the spec, in each engine's own terms (`auto` dtype leaves the engine's default: float32 for transformers on
    CPU, the checkpoint's for vLLM)."""
    options = {
        **extra,
        "max_batch_size": spec.batching.max_batch_size,
        "batch_wait_s": spec.batching.batch_wait_timeout_s,
    }
    if spec.dtype != "auto" and spec.engine != "fake":
        options["dtype"] = spec.dtype
    if spec.max_model_len is not None:
        options["max_context_tokens" if spec.engine == "fake" else "max_model_len"] = spec.max_model_len
    if spec.adapter and spec.engine != "fake":
        options["adapter"] = spec.adapter
        if spec.fallback_adapter:
            options["fallback_adapter"] = spec.fallback_adapter
    return options


def _cluster_application(args: ClusterArgs) -> Application:
    """The operator's shape: one deployment per TaskModel; serveConfigV2 supplies replicas and resources by name."""
    settings = Settings(**args.settings)
    d, traced = settings.deployments, settings.tracing.model_dump(mode="json")
    handles, gates, heads = {}, {}, []
    cache = str(settings.models.cache_dir.expanduser())
    for task, spec in args.tasks.items():
        queued = (
            spec.max_queued_requests
            if spec.max_queued_requests is not None
            else d.for_task(task.value).max_queued_requests
        )
        gates[task.value] = {"deployment": task.value, "per_replica": spec.max_ongoing_requests, "max_queued": queued}
        report = gate_report_target(args.profiles, spec)
        if task is Task.REDACT:
            handles[task.value] = _redact(
                settings.model_copy(update={"models": settings.models.model_copy(update={"spacy": spec.model})}),
                d.redact,
                task.value,
            )
        elif task is Task.CLASSIFY_INTENT:
            models = settings.models.model_copy(update={"embedding": spec.model})
            handles[task.value] = _intent(
                settings.model_copy(update={"models": models}),
                d.classify_intent,
                task.value,
                args.profiles.model_dump(),
            )
        elif spec.engine == DeploymentEngine.QUALITY_HEAD:
            head = _deployment(QualityHeadDeployment).options(name=task.value)
            handles[task.value] = head.bind(
                spec.model,
                spec.adapter,
                cache,
                spec.fallback_adapter,
                traced,
                settings.models.embedding_precision,
                settings.models.embedding_threads,
                settings.models.allow_network,
                report,
            )
            heads.append(task.value)
        else:
            options = generate_engine_options(spec, settings.models.engine_options)
            generate = _deployment(GenerateDeployment).options(name=task.value)
            handles[task.value] = generate.bind(
                spec.engine, spec.model, cache, options, traced, settings.models.allow_network, report
            )
    return _router(settings, handles, args.profiles.model_dump(), gates, heads)


def gate_report_target(profiles: ProfileSourceArgs, spec: TaskArgs) -> dict[str, str] | None:
    """Where a replica reports its quality gate's verdict: the TaskModel, in a Kubernetes namespace (pure)."""
    if profiles.source != "kubernetes" or not profiles.namespace or not spec.adapter:
        return None
    return {"namespace": profiles.namespace, "taskModel": spec.task_model}


def _redact(settings: Settings, knobs: DeploymentSettings, name: str):
    deployment = _deployment(RedactDeployment).options(**deployment_options(name, knobs))
    return deployment.bind(
        settings.models.spacy,
        knobs.batch_size,
        knobs.batch_wait_s,
        settings.tracing.model_dump(mode="json"),
        settings.models.pii,
    )


def _intent(
    settings: Settings,
    knobs: DeploymentSettings,
    name: str,
    profile_source: dict | None,
    quality_head: str | None = None,
):
    """The classify deployment reads the router's profile source too: it builds each taxonomy's index when the
    profile is loaded or changes, not on its first request."""
    deployment = _deployment(IntentDeployment).options(**deployment_options(name, knobs))
    profiles = {
        **(profile_source or {"source": "folder"}),
        "folder": str(settings.profiles_dir),
        "interval_s": settings.profile_poll_interval_s,
    }
    return deployment.bind(
        settings.models.embedding,
        knobs.batch_size,
        knobs.batch_wait_s,
        settings.tracing.model_dump(mode="json"),
        profiles,
        settings.models.embedding_precision,
        settings.models.embedding_threads,
        quality_head,
    )


def _deployment(cls: type) -> Deployment:
    """`serve.deployment(cls)`; Ray's overloads type a bare class argument as the decorator-factory form."""
    return cast(Deployment, serve.deployment(cls))


def _router(
    settings: Settings, handles: dict, profile_source: dict | None, gates: dict, heads: list[str] | None = None
) -> Application:
    router = _deployment(Ingress).options(**deployment_options("router", settings.deployments.router))
    return router.bind(
        settings.model_dump(mode="json"), handles, profile_source or {"source": "folder"}, gates, heads or []
    )


def build_app(args: Settings | dict[str, Any] | None = None) -> Application:
    """The application for `switchboard run` (Settings), `serve run serving.app:build_app` (Settings fields) and
    KubeRay's serveConfigV2 (the cluster shape)."""
    if isinstance(args, Settings):
        return _local_application(args)
    args = dict(args or {})
    if "tasks" in args or "profiles" in args:
        return _cluster_application(ClusterArgs.model_validate(args))
    return _local_application(Settings(**args))
