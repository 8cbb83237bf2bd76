"""Structured decoding on the real SmolLM2-135M-Instruct through the transformers engine: score-quality answers are
schema-valid by construction for the sample tenants' rubrics, and requests without a schema are untouched.

Nothing is faked: the sample tenant profiles, the task service's scoring path (in-process backend, no Ray) and the
model. Skipped where SmolLM2 is not prepared. Greedy decoding throughout, so the runs are deterministic; the tests
check validity and structure, not the model's judgement (a 135M model's verdicts are not reliable enough to pin).
"""

from __future__ import annotations

import asyncio
import json

import jsonschema
import pytest
import yaml

from serving.engines import GenerationRequest, SamplingParams, create_engine
from serving.models import DEFAULT_MODEL, ModelStore, default_cache_dir
from serving.pipeline.steps import score_turns
from serving.profiles import approximate_counter, compile_profile, parse_document
from serving.replica.local_backend import LocalBackend
from serving.replica.runner import TaskRunner
from serving.vocabulary.conversation import parse_transcript, render
from serving.tasks.quality import evidence_quotes, output_schema
from tests.conftest import SAMPLES
from tests.contract.test_engine_contract import HAVE_SMOLLM2, NO_SMOLLM2

pytestmark = pytest.mark.skipif(not HAVE_SMOLLM2, reason=NO_SMOLLM2)

CONVERSATIONS = {
    "shopright": (
        "Agent: Hi, this is Sam from ShopRight, how can I help?\n"
        "Customer: My order <ORDER_NUMBER_1> arrived broken.\n"
        "Agent: Sorry about that. Can you confirm the order number?\n"
        "Customer: It is <ORDER_NUMBER_1>. The lamp is cracked.\n"
        "Agent: I will send a replacement today. Would you like to add our two-year warranty?"
    ),
    "northbank": (
        "Customer: I see a card payment I don't recognise on my statement.\n"
        "Agent: I can look into that. First, can you confirm your date of birth and the last four digits of the card?\n"
        "Customer: <DATE_OF_BIRTH_1>, and it ends in 4411.\n"
        "Agent: Thank you, you're verified. I have blocked the card and opened a chargeback; you will hear from us "
        "within five working days."
    ),
}


@pytest.fixture(scope="module")
def engine():
    built = create_engine("transformers", ModelStore(default_cache_dir()).prepare(DEFAULT_MODEL, progress=False))
    yield built
    asyncio.run(built.close())


def _profile(tenant: str):
    doc = yaml.safe_load((SAMPLES / f"{tenant}.yaml").read_text())
    return compile_profile(tenant, parse_document(doc).spec, approximate_counter)


@pytest.mark.parametrize("tenant", ["shopright", "northbank"])
@pytest.mark.parametrize("conversation", ["shopright", "northbank"])
async def test_score_quality_is_schema_valid_for_every_sample_rubric(engine, tenant, conversation):
    profile, turns = _profile(tenant), parse_transcript(CONVERSATIONS[conversation])
    response = await score_turns(profile, turns, 0, LocalBackend(TaskRunner(), engine))
    assert response.attempts == 1, "constrained decoding needs no retry"
    assert [c.criterion for c in response.criteria] == [c.id for c in profile.spec.rubric]
    assert all(c.verdict in ("met", "not_met", "not_applicable") for c in response.criteria)
    text = " ".join(render(turns).lower().split())
    assert all(c.evidence.lower() in text for c in response.criteria), "evidence is quoted from the conversation"
    assert response.overall is None or 0 <= response.overall <= 1


async def test_raw_engine_output_validates_against_the_quality_schema(engine):
    profile, turns = _profile("shopright"), parse_transcript(CONVERSATIONS["shopright"])
    schema = output_schema(list(profile.spec.rubric), evidence_quotes(turns))
    request = GenerationRequest(messages=[{"role": "user", "content": render(turns)}],
                                sampling=SamplingParams(max_tokens=256), json_schema=schema)
    result = await engine.generate(request)
    jsonschema.validate(json.loads(result.text), schema)
    assert result.parsed == json.loads(result.text) and result.finish_reason == "stop"
    assert result.tokens_out == len(engine._tokenizer(result.text, add_special_tokens=False).input_ids)


async def test_free_strings_numbers_and_booleans_stay_in_the_grammar(engine):
    schema = {"type": "object", "properties": {
        "answer": {"type": "string", "maxLength": 40},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "count": {"type": "integer", "minimum": 1, "maximum": 5},
        "urgent": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 3},
    }, "required": ["answer", "confidence", "count", "urgent", "tags"]}
    request = GenerationRequest(messages=[{"role": "user", "content": "My parcel is late. What should I do?"}],
                                sampling=SamplingParams(max_tokens=64), json_schema=schema)
    result = await engine.generate(request)
    jsonschema.validate(result.parsed, schema)
    chunks = [item async for item in engine.stream(request)]
    assert chunks[0] == result.text and chunks[-1].parsed == result.parsed, "streaming a schema request agrees"


async def test_a_tiny_token_budget_still_ends_in_valid_json(engine):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    request = GenerationRequest(messages=[{"role": "user", "content": "Tell me a long story about refunds."}],
                                sampling=SamplingParams(max_tokens=6), json_schema=schema)
    result = await engine.generate(request)
    jsonschema.validate(json.loads(result.text), schema)
    assert result.finish_reason == "length"


async def test_requests_without_a_schema_are_plain_greedy_generation(engine):
    """The engine's text equals transformers' own greedy `generate` on the same chat prompt."""
    import torch

    messages = [{"role": "user", "content": "Where is my parcel?"}]
    result = await engine.generate(GenerationRequest(messages=messages, sampling=SamplingParams(max_tokens=12)))
    tokenizer, model = engine._tokenizer, engine._model
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    encoded = tokenizer([prompt], return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(**encoded, max_new_tokens=12, do_sample=False, temperature=None, top_p=None, top_k=None,
                             pad_token_id=tokenizer.pad_token_id)
    expected = tokenizer.decode(out[0, encoded["input_ids"].shape[1]:], skip_special_tokens=True)
    assert result.text == expected and result.parsed is None
