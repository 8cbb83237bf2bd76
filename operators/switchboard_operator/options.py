"""What the builders take besides the TaskModels: accepted models, the chart's cluster-wide options, pool resources."""

from __future__ import annotations

from dataclasses import dataclass, replace

from pydantic import BaseModel, ConfigDict, Field

from operators.switchboard_operator.models import TaskModelSpec


@dataclass(frozen=True)
class AcceptedModel:
    """A TaskModel whose spec validated (now, or the last good version kept from the current RayService)."""

    name: str
    uid: str
    spec: TaskModelSpec
    # The adapter this TaskModel served before its current one: the data plane serves it when the new adapter is
    # refused by the quality gate or fails to load (TaskArgs.fallbackAdapter), instead of dropping to the base.
    fallback_adapter: str | None = None

    def succeeding(self, previous: "AcceptedModel | None") -> "AcceptedModel":
        """This model as the successor of `previous` (same TaskModel): the adapter it replaces becomes the fallback."""
        if previous is None or previous.uid != self.uid:
            return self
        fallback = previous.spec.adapter if previous.spec.adapter != self.spec.adapter else previous.fallback_adapter
        return replace(self, fallback_adapter=fallback if fallback != self.spec.adapter else None)


class RouterOptions(BaseModel):
    """Cluster-wide knobs of the RayService (from the chart's values via the operator's environment)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("switchboard", description="RayService name (one per namespace).")
    image: str = Field("ghcr.io/switchboard/switchboard:0.1.0", description="Image of the head and the CPU workers.")
    gpu_image: str | None = Field(None, description="Image of workers in pools with GPUs (CUDA, vLLM); unset: `image`.")
    image_pull_secrets: tuple[str, ...] = Field((), description="Secrets for pulling the Ray images.")
    ray_version: str = Field("2.60.0", description="Ray version inside the image.")
    head_cpu: str = Field("1", description="CPU request of the head pod.")
    head_memory: str = Field("4Gi", description="Memory request and limit of the head pod.")
    worker_cpu: int = Field(2, ge=1, le=256, description="Smallest CPU size of a worker pod.")
    worker_memory: str = Field("4Gi", description="Smallest memory size of a worker pod.")
    router_pool: str = Field("cpu", description="Node pool (worker group) the router runs in.")
    router_num_cpus: float = Field(0.1, gt=0, description="CPUs per router replica.")
    router_min_replicas: int = Field(2, ge=1)  # one survives a router replica's death (the chart's default)
    router_max_replicas: int = Field(3, ge=1)
    router_target_ongoing_requests: float = Field(64, gt=0)
    router_max_ongoing_requests: int = Field(256, ge=1)
    serve_service_name: str | None = Field(
        None, description="Name of the router's Service (spec.serveService); unset: KubeRay's <name>-serve-svc."
    )
    serve_service_type: str = Field(
        "ClusterIP", pattern="^(ClusterIP|NodePort|LoadBalancer)$", description="Type of the router's Service."
    )
    serve_service_annotations: dict[str, str] = Field(default_factory=dict, description="Annotations on that Service.")
    storage_secret: str | None = Field(
        None,
        description="Secret whose keys become the Ray containers' environment (AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL...): credentials for s3:// and gs:// models and adapters.",
    )
    key_secrets: tuple[str, ...] | None = Field(
        None, description="Secrets the router may read (its Role's resourceNames); None: not restricted."
    )
    service_account: str | None = Field(
        None, description="ServiceAccount of the Ray pods (the router watches profiles)."
    )
    env: tuple[tuple[str, str], ...] = Field((), description="Environment of every Ray container (OTel, log level).")


def pool_resource(pool: str) -> str:
    """Ray custom resource every worker of a pool advertises; deployments ask for a sliver of it to land there."""
    return f"pool:{pool}"


__all__ = ["AcceptedModel", "RouterOptions", "pool_resource"]
