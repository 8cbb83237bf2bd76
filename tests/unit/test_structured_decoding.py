"""Structured decoding, the pure parts: schema -> plan, the walk a driver answers, and the token rules for strings and
numbers. No model: a scripted driver answers the steps (first option, fixed strings, fixed numbers) and every text it
produces must be JSON that validates against the schema."""

from __future__ import annotations

import json
import random

import jsonschema
import pytest

from serving.engines import structured as sd
from serving.vocabulary.conversation import parse_transcript
from serving.tasks.quality import evidence_quotes, output_schema
from tests.unit.test_generative_policies import CONVERSATION, shopright  # noqa: F401  (fixture)


def _scripted(strings=("ok",), numbers=("7",), pick=lambda step: 0):
    """A driver that answers Picks with `pick`, strings and numbers from the given lists (cycled)."""
    strings, numbers = list(strings), list(numbers)

    def answer(step):
        if isinstance(step, sd.Pick):
            return pick(step)
        if isinstance(step, sd.FreeString):
            return strings.pop(0) if len(strings) > 1 else strings[0]
        if isinstance(step, sd.FreeNumber):
            return sd.finish_number(numbers.pop(0) if len(numbers) > 1 else numbers[0], step.node)
        return None

    return answer


def _decode(schema, **driver):
    text, value = sd.run(sd.compile_schema(schema), _scripted(**driver))
    assert json.loads(text) == value, "the text is the value's JSON"
    jsonschema.validate(value, schema)
    return text, value


# ---- plans and walks ---------------------------------------------------------------------------------------------------


def test_object_skeleton_is_written_in_property_order():
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "n": {"type": "integer"},
                                               "ok": {"type": "boolean"}, "none": {"type": "null"}}, "required": ["name"]}
    text, value = _decode(schema, strings=["Ada"], numbers=["42"])
    assert text == '{"name": "Ada", "n": 42, "ok": true, "none": null}'


def test_enum_and_const_are_picked_or_written():
    schema = {"type": "object", "properties": {"verdict": {"enum": ["met", "not_met"]}, "kind": {"const": "x"}}}
    steps = []
    _, value = _decode(schema, pick=lambda step: steps.append(step) or 1)
    assert value == {"verdict": "not_met", "kind": "x"}
    assert steps == [sd.Pick(('"met"', '"not_met"'))], "a const is written, not asked"


def test_enum_values_that_break_other_keywords_are_never_offered():
    plan = sd.compile_schema({"type": "string", "enum": ["short", "far too long"], "maxLength": 5})
    assert plan == sd.Choice(("short",))


def test_fixed_length_arrays_follow_prefix_items_then_items():
    schema = {"type": "array", "prefixItems": [{"const": "a"}, {"const": "b"}], "items": {"type": "integer"},
              "minItems": 4, "maxItems": 4}
    assert _decode(schema, numbers=["1", "2"])[1] == ["a", "b", 1, 2]


@pytest.mark.parametrize("choice, expected", [(0, ["x"]), (1, ["x", "x", "x"])])
def test_bounded_arrays_let_the_model_close_or_continue(choice, expected):
    schema = {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3}
    assert _decode(schema, strings=["x"], pick=lambda step: choice)[1] == expected


def test_array_continuation_offers_a_stop_option():
    steps = list(_steps({"type": "array", "items": {"const": 1}, "maxItems": 2}))
    assert sd.Pick(("]", ", "), stop=0) in steps


def _steps(schema):
    walker, steps, answer = sd.walk(sd.compile_schema(schema)), [], None
    driver = _scripted(pick=lambda step: 1)
    try:
        while True:
            step = walker.send(answer)
            steps.append(step)
            answer = driver(step)
    except StopIteration:
        return steps


@pytest.mark.parametrize("schema, keyword", [
    ({"type": "string", "pattern": "^a"}, "pattern"),
    ({"anyOf": [{"type": "string"}]}, "type"),
    ({"type": ["string", "null"]}, "type"),
    ({"type": "object", "properties": {}, "required": ["x"]}, "'x'"),
    ({"type": "number", "multipleOf": 2}, "multipleOf"),
    ({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, "uniqueItems"),
    ({"type": "integer", "minimum": 1, "maximum": 0}, "bounds"),
])
def test_schemas_outside_the_subset_are_refused_by_name(schema, keyword):
    with pytest.raises(sd.UnsupportedSchema, match=keyword):
        sd.compile_schema(schema)


def test_answers_that_break_the_rules_are_refused():
    with pytest.raises(ValueError, match="string rules"):
        sd.run(sd.compile_schema({"type": "string", "maxLength": 2}), lambda step: "abc")
    with pytest.raises(ValueError, match="option index"):
        sd.run(sd.compile_schema({"enum": [1, 2]}), lambda step: 5)


def test_random_drivers_always_produce_valid_json():
    """Any answers a driver may give (within the token rules) make schema-valid JSON: validity is structural."""
    schema = {"type": "object", "properties": {
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 4}, "maxItems": 3},
        "score": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
        "level": {"type": "integer", "exclusiveMinimum": 0, "maximum": 5},
        "flag": {"enum": [True, None, "x"]},
    }}
    rng = random.Random(7)
    for _ in range(200):
        strings = ["".join(rng.choice("ab c") for _ in range(rng.randint(0, 4))) for _ in range(3)]
        numbers = [rng.choice(["", "-", "0", "12", "3.", "-0.5", "99.25", "1"]) for _ in range(2)]
        _decode(schema, strings=strings, numbers=numbers, pick=lambda step: rng.randrange(len(step.options)))


# ---- token rules -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("token, expected", [
    (" Paris", (sd.PLAIN, " Paris")),
    ('",', (sd.CLOSE, "")),
    ('."}', (sd.CLOSE, ".")),
    ("\n", (sd.REJECT, "")),
    ("\\n", (sd.REJECT, "")),
    ("\ufffd", (sd.REJECT, "")),
    ("", (sd.REJECT, "")),
    ('a\n"', (sd.REJECT, "")),
])
def test_string_tokens_continue_close_or_are_rejected(token, expected):
    assert sd.string_token(token) == expected


def test_strings_close_at_the_quote_or_at_max_length():
    step = sd.FreeString(0, 5)
    assert sd.extend_string("ab", sd.PLAIN, "c", step) == ("abc", False)
    assert sd.extend_string("ab", sd.CLOSE, "!", step) == ("ab!", True)
    assert sd.extend_string("abc", sd.PLAIN, "defg", step) == ("abcde", True)
    with pytest.raises(ValueError):
        sd.extend_string("", sd.REJECT, "", step)


@pytest.mark.parametrize("current, piece, integer, ok", [
    ("", "-", True, True), ("-", "0", True, True), ("0", "1", True, False), ("1", ".", True, False),
    ("1", ".", False, True), ("1.", "5", False, True), ("1.5", ".", False, False), ("", "12", False, True),
    ("1" * sd.MAX_NUMBER_CHARS, "1", True, False),
])
def test_number_tokens_keep_a_json_number_prefix(current, piece, integer, ok):
    assert sd.number_continues(current, piece, integer) is ok


@pytest.mark.parametrize("text, node, expected", [
    ("42", sd.Number(True), "42"),
    ("", sd.Number(True, minimum=3), "3"),
    ("-", sd.Number(False), "0"),
    ("7.", sd.Number(False), "7"),
    ("99", sd.Number(True, maximum=10), "10"),
    ("5", sd.Number(True, exclusive_maximum=5), "4"),
    ("1", sd.Number(False, minimum=0, exclusive_maximum=1), "0.5"),
    ("2.25", sd.Number(False), "2.25"),
])
def test_numbers_are_finished_inside_their_bounds(text, node, expected):
    assert sd.finish_number(text, node) == expected


def test_option_trie_narrows_to_one_option():
    trie = sd.OptionTrie([[1, 2, 3], [1, 4], [5]])
    assert trie.decided() is None and trie.allowed() == [1, 5]
    trie.advance(1)
    assert trie.allowed() == [2, 4]
    trie.advance(4)
    assert trie.decided() == 1 and trie.rest(1) == []
    with pytest.raises(ValueError):
        sd.OptionTrie([[1], [2]]).advance(3)


def test_common_prefix_is_written_before_the_choice():
    assert sd.common_prefix(['""', '"Hi there."', '"How"']) == '"'
    assert sd.common_prefix(["]", ", "]) == ""


# ---- the score-quality schema ------------------------------------------------------------------------------------------


def test_score_quality_schema_is_inside_the_subset_and_pins_every_criterion(shopright):  # noqa: F811
    rubric = list(shopright.spec.rubric)
    quotes = evidence_quotes(parse_transcript(CONVERSATION))
    schema = output_schema(rubric, quotes)
    _, value = _decode(schema, pick=lambda step: len(step.options) - 1)
    assert [item["criterion"] for item in value["criteria"]] == [c.id for c in rubric]
    assert all(item["evidence"] in quotes for item in value["criteria"])


def test_evidence_quotes_are_the_agents_sentences():
    quotes = evidence_quotes(parse_transcript(CONVERSATION))
    assert quotes[:2] == ["Hi, this is Sam from ShopRight, how can I help?", "Sorry about that."]
    assert "It is <ORDER_NUMBER_1>." not in quotes, "customer turns are not quoted when the agent spoke"
    assert all(len(q) <= 300 for q in evidence_quotes(parse_transcript("Agent: " + "word " * 200)))
