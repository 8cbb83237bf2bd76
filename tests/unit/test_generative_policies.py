"""Pure parts of the generative tasks: conversation parsing, prompt composition, score-quality output validation."""

from __future__ import annotations

import json

import pytest
import yaml

from serving.errors import TaskFailed
from serving.profiles import approximate_counter, compile_profile, parse_document
from serving.vocabulary.catalog import Task
from serving.vocabulary.conversation import ConversationInput, Speaker, parse_transcript
from serving.tasks.prompts import compose
from serving.tasks.quality import output_schema, parse_scores
from tests.conftest import SAMPLES

CONVERSATION = (
    "Agent: Hi, this is Sam from ShopRight, how can I help?\n"
    "Customer: My order <ORDER_NUMBER_1> arrived broken.\n"
    "Agent: Sorry about that. Can you confirm the order number?\n"
    "Customer: It is <ORDER_NUMBER_1>.\n"
    "  The lamp is cracked.\n"
    "Agent: I will send a replacement today. Would you like to add our two-year warranty?"
)


@pytest.fixture
def shopright():
    doc = yaml.safe_load((SAMPLES / "shopright.yaml").read_text())
    return compile_profile("shopright", parse_document(doc).spec, approximate_counter)


def test_transcript_parses_into_turns_with_continuations():
    turns = parse_transcript(CONVERSATION)
    assert [t.speaker for t in turns] == [Speaker.AGENT, Speaker.CUSTOMER, Speaker.AGENT, Speaker.CUSTOMER, Speaker.AGENT]
    assert turns[3].text == "It is <ORDER_NUMBER_1>. The lamp is cracked."


def test_conversation_needs_exactly_one_form():
    with pytest.raises(ValueError, match="exactly one of `turns` or `transcript`"):
        ConversationInput()
    with pytest.raises(ValueError):
        ConversationInput(turns=[{"speaker": "customer", "text": "hi"}], transcript="Customer: hi")
    assert ConversationInput(turns=[{"speaker": "customer", "text": "hi"}]).as_turns()[0].text == "hi"


def test_reply_prompt_maps_speakers_to_chat_roles(shopright):
    messages = compose(Task.REPLY, shopright.instructions[Task.REPLY].text, parse_transcript(CONVERSATION))
    assert messages[0]["role"] == "system" and "prepaid return label" in messages[0]["content"]
    assert [m["role"] for m in messages[1:3]] == ["assistant", "user"]


def test_score_prompt_carries_rubric_glossary_and_format(shopright):
    rubric = [c.id for c in shopright.spec.rubric]
    messages = compose(Task.SCORE_QUALITY, shopright.instructions[Task.SCORE_QUALITY].text, parse_transcript(CONVERSATION), rubric)
    system = messages[0]["content"]
    assert "upsell = suggesting an add-on" in system and '"verify-order"' in system and "JSON only" in system


def _answer(**verdicts):
    evidence = {"greeting": "Hi, this is Sam from ShopRight", "upsell": "add our two-year warranty"}
    return json.dumps({"criteria": [{"criterion": k, "verdict": v, "evidence": evidence.get(k, "")} for k, v in verdicts.items()]})


def test_scores_are_weighted_and_evidence_is_checked(shopright):
    rubric = list(shopright.spec.rubric)
    raw = _answer(greeting="met", **{"verify-order": "met"}, resolution="not_met", upsell="not_applicable")
    result = parse_scores(raw, rubric, CONVERSATION)
    # weights: greeting 1, verify-order 2, resolution 3; upsell not applicable -> (1 + 2) / 6
    assert result.overall == pytest.approx(0.5)
    greeting = result.criteria[0]
    assert greeting.evidence_found and greeting.evidence == "Hi, this is Sam from ShopRight"


def test_invented_evidence_is_dropped(shopright):
    raw = json.dumps({"criteria": [{"criterion": c.id, "verdict": "met", "evidence": "words nobody said"} for c in shopright.spec.rubric]})
    result = parse_scores(raw, list(shopright.spec.rubric), CONVERSATION)
    assert all(not c.evidence_found and c.evidence == "" for c in result.criteria)


@pytest.mark.parametrize("raw, message", [
    ("no json here", "did not return JSON"),
    ('{"criteria": [{"criterion": "greeting", "verdict": "met", "evidence": ""}]}', "misses criteria"),
    ('{"criteria": [{"criterion": "smile", "verdict": "met", "evidence": ""}]}', "not in the rubric"),
    ('{"criteria": [{"criterion": "greeting", "verdict": "great", "evidence": ""}]}', "verdict must be one of"),
])
def test_invalid_model_output_is_an_explicit_error(shopright, raw, message):
    with pytest.raises(TaskFailed, match=message):
        parse_scores(raw, list(shopright.spec.rubric), CONVERSATION)


def test_output_schema_is_closed_over_the_rubric(shopright):
    jsonschema = pytest.importorskip("jsonschema")
    schema = output_schema(list(shopright.spec.rubric))
    good = json.loads(_answer(greeting="met", **{"verify-order": "met"}, resolution="met", upsell="met"))
    jsonschema.validate(good, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"criteria": [{"criterion": "smile", "verdict": "met", "evidence": ""}]}, schema)
