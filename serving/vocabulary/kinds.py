"""The closed sets of names several layers share: engine kinds and priority classes (str enums, so settings, profiles
and headers keep accepting the same strings, and a member compares equal to its string)."""

from __future__ import annotations

from enum import StrEnum


class EngineKind(StrEnum):
    """What runs the generative tasks (serving.engines builds one of these; `none` serves redact and classify-intent
    only). A TaskModel's `engine` (DeploymentEngine below) names a deployment's engine instead, the in-process
    `presidio`, `embedding` and `quality-head` included."""

    TRANSFORMERS = "transformers"
    VLLM = "vllm"
    FAKE = "fake"
    NONE = "none"


# The kinds serving.engines.create_engine builds (every kind but `none`).
GENERATIVE_ENGINES = (EngineKind.TRANSFORMERS, EngineKind.VLLM, EngineKind.FAKE)


class DeploymentEngine(StrEnum):
    """What runs one task's deployment in a cluster: a TaskModel's `engine` (the CRD's enum, operators.switchboard_
    operator.models) and the data plane's TaskArgs.engine, which also takes `fake` (tests)."""

    VLLM = "vllm"
    TRANSFORMERS = "transformers"
    EMBEDDING = "embedding"
    PRESIDIO = "presidio"
    QUALITY_HEAD = "quality-head"  # score-quality by a trained head on the embedding model (serving.quality)


# A request's class: `interactive` is served first; `batch` (the bulk path's lines) waits behind it within a share
# (serving.pipeline.fairshare). A profile lists the classes its tenant may ask for. (No docstring: pydantic would put
# it in the TenantProfile CRD's schema in place of the fields' own descriptions.)
class PriorityClass(StrEnum):
    INTERACTIVE = "interactive"
    BATCH = "batch"
