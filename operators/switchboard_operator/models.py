"""TaskModel: the pydantic schema of one task's model deployment, the same one the TaskModel CRD's `spec` uses."""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.alias_generators import to_camel

from serving.vocabulary.catalog import GENERATIVE, Task
from serving.vocabulary.kinds import DeploymentEngine

GROUP = "switchboard.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "TaskModel"
PLURAL = "taskmodels"

MODEL_PATTERN = (
    r"^((s3|gs|pvc)://[A-Za-z0-9][A-Za-z0-9._/-]*|[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?)$"
)
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$"
LabelValue = Annotated[str, StringConstraints(max_length=63)]
Quantity = Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN)]


class _Spec(BaseModel):
    """camelCase on the wire (CRD convention), snake_case in Python; unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


Engine = DeploymentEngine  # the CRD's `engine` enum is the data plane's (serving.vocabulary.kinds)


class Dtype(str, Enum):
    AUTO = "auto"
    FLOAT32 = "float32"
    FLOAT16 = "float16"
    BFLOAT16 = "bfloat16"


# Which engines can serve which task (checked by the operator; the CRD only checks the enums).
ENGINES_FOR_TASK: dict[Task, tuple[Engine, ...]] = {
    Task.REDACT: (Engine.PRESIDIO,),
    Task.CLASSIFY_INTENT: (Engine.EMBEDDING,),
    **dict.fromkeys(GENERATIVE, (Engine.VLLM, Engine.TRANSFORMERS)),
    Task.SCORE_QUALITY: (Engine.VLLM, Engine.TRANSFORMERS, Engine.QUALITY_HEAD),
}


class Replicas(_Spec):
    """Ray Serve autoscaling bounds of the task's deployment (replicas, not pods)."""

    min: int = Field(1, ge=0, le=1000, description="Autoscaling floor; 0 lets the deployment scale to zero.")
    max: int = Field(1, ge=1, le=1000, description="Autoscaling ceiling; must be >= min.")

    @model_validator(mode="after")
    def _ordered(self) -> "Replicas":
        if self.max < self.min:
            raise ValueError(f"replicas.max ({self.max}) must be >= replicas.min ({self.min})")
        return self


class Batching(_Spec):
    max_batch_size: int = Field(16, ge=1, le=1024, description="Largest batch a replica assembles.")
    batch_wait_timeout_s: float = Field(0.005, ge=0, le=1, description="Longest wait (seconds) to fill a batch.")


class Resources(_Spec):
    """What one replica reserves in Ray (and what sizes the worker pods of its node pool)."""

    cpu: float = Field(0.5, gt=0, le=64, description="CPUs per replica (Ray num_cpus; fractions allowed).")
    memory: Quantity | None = Field(None, description="Memory per replica as a Kubernetes quantity (e.g. 2Gi).")
    gpus: int = Field(0, ge=0, le=8, description="GPUs per replica (Ray num_gpus, pods request nvidia.com/gpu).")


class TolerationOperator(str, Enum):
    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(str, Enum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Toleration(_Spec):
    key: str | None = Field(None, max_length=253, description="Taint key; empty with Exists matches every taint.")
    operator: TolerationOperator = Field(TolerationOperator.EQUAL, description="Exists or Equal.")
    value: LabelValue | None = Field(None, description="Taint value (with Equal).")
    effect: TaintEffect | None = Field(None, description="Taint effect to tolerate; empty means all.")
    toleration_seconds: int | None = Field(None, ge=0, description="How long a NoExecute taint is tolerated.")


class NodePool(_Spec):
    """Where the task's replicas run: TaskModels naming the same pool share one Ray worker group."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$")] = Field(
        "cpu", description="Pool name; becomes the Ray worker group name."
    )
    node_selector: dict[str, LabelValue] = Field(
        default_factory=dict, description="Node labels the worker pods require."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, max_length=20, description="Taints the worker pods tolerate."
    )
    accelerator_type: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,40}$")] | None = Field(
        None, description="Ray accelerator type (e.g. H100, L4); replicas are placed only on such workers."
    )
    max_workers: int = Field(10, ge=1, le=1000, description="Most worker pods the Ray autoscaler may add to this pool.")


class TaskModelSpec(_Spec):
    task: Task = Field(description="The task this model serves; one TaskModel per task and namespace.")
    model: str = Field(
        pattern=MODEL_PATTERN,
        max_length=512,
        description="Model source: a prepared model name, a Hugging Face hub id (org/name), or an s3://, gs:// or pvc:// URI.",
    )
    adapter: str | None = Field(
        None,
        pattern=MODEL_PATTERN,
        max_length=512,
        description="Trained weights on top of the model, held-out figures included (the quality gate reads them): a LoRA "
        "adapter (vllm, transformers) or the score-quality head (quality-head); a prepared name or folder, or an s3://, "
        "gs:// or pvc:// URI.",
    )
    engine: Engine = Field(
        description="Engine that runs the model: vllm, transformers, embedding, presidio or "
        "quality-head (score-quality: the head in `adapter` on the sentence-embedding `model`)."
    )
    dtype: Dtype = Field(Dtype.AUTO, description="Weights dtype (generative engines).")
    max_model_len: int | None = Field(
        None, ge=128, le=262_144, description="Longest context in tokens (generative engines)."
    )
    replicas: Replicas = Field(default_factory=Replicas, description="Autoscaling bounds of the deployment.")
    target_queue_depth: float = Field(
        8, gt=0, le=10_000, description="Ongoing+queued requests per replica that autoscaling aims at."
    )
    max_ongoing_requests: int = Field(32, ge=1, le=10_000, description="Requests one replica works on at once.")
    max_queued_requests: int | None = Field(
        None, ge=1, le=1_000_000, description="Requests queued per caller before Serve answers 503; unset is unbounded."
    )
    batching: Batching = Field(default_factory=Batching, description="Dynamic batching inside a replica.")
    resources: Resources = Field(default_factory=Resources, description="Per-replica reservations.")
    node_pool: NodePool = Field(default_factory=NodePool, description="Node pool the replicas run in.")

    @model_validator(mode="after")
    def _engine_fits(self) -> "TaskModelSpec":
        allowed = ENGINES_FOR_TASK[self.task]
        if self.engine not in allowed:
            names = ", ".join(e.value for e in allowed)
            raise ValueError(f"engine {self.engine.value!r} cannot serve task {self.task.value!r}; use {names}")
        if self.adapter is not None and self.task not in GENERATIVE:
            raise ValueError(f"adapter: task {self.task.value!r} takes no LoRA adapter (only generative tasks do)")
        if self.engine is Engine.QUALITY_HEAD and self.adapter is None:
            raise ValueError(
                "adapter: engine 'quality-head' needs the head's folder or URI in adapter "
                "(e.g. models/quality-minilm); model is its sentence-embedding base"
            )
        if self.node_pool.accelerator_type and self.resources.gpus == 0:
            raise ValueError("nodePool.acceleratorType needs resources.gpus >= 1")
        if self.target_queue_depth >= self.max_ongoing_requests:
            # Serve counts at most maxOngoingRequests per replica toward the target: at or above it, it never scales.
            raise ValueError(
                f"targetQueueDepth ({self.target_queue_depth:g}) must be < maxOngoingRequests "
                f"({self.max_ongoing_requests}), or autoscaling never sees enough load to add a replica"
            )
        return self

    @property
    def source_kind(self) -> str:
        """`uri`, `hub` (org/name) or `prepared` (a name the image ships)."""
        return _ref_kind(self.model)

    @property
    def adapter_kind(self) -> str | None:
        """`uri`, or `local` (a folder in the image, relative to its working directory; the data plane reads adapters
        from no hub); None when no adapter is set."""
        if self.adapter is None:
            return None
        return "uri" if _ref_kind(self.adapter) == "uri" else "local"


def _ref_kind(ref: str) -> str:
    if re.match(r"^(s3|gs|pvc)://", ref):
        return "uri"
    return "hub" if "/" in ref else "prepared"


_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity_bytes(quantity: str) -> int:
    """Bytes of a Kubernetes memory quantity such as `2Gi` or `500M`."""
    match = re.match(QUANTITY_PATTERN, quantity)
    if not match:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    number = quantity[: len(quantity) - len(match.group(2) or "")]
    return int(float(number) * _UNITS[match.group(2) or ""])
