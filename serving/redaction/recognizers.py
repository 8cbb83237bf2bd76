"""Presidio recognizers for customer-service identifiers that Presidio lacks by default (imported by engine.py only).

Spaced IBANs ("GB82 WEST 1234 5698 7654 32", any case) need nothing here: Presidio's IbanRecognizer finds them and
checks the country format and mod-97 checksum (tests/unit/test_redaction.py covers it).
"""

from __future__ import annotations

import re
from typing import Callable, List, Optional

from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts
from presidio_analyzer.predefined_recognizers import CreditCardRecognizer

# "number", "no.", "num", "#", "id", ":" between a keyword and the value, in any order the way people type them.
_NUMBER_WORDS = r"(?:\s*(?:number|num|no\.?|nr\.?|id|ref(?:erence)?|#|:|is|was)){0,3}\s*"


class KeywordIdRecognizer(EntityRecognizer):
    """Finds a value right after a keyword ("account 12345678") and reports only the value's span.

    `regex` must hold a named group `value`; the keyword is part of the match, so the score is high by itself
    (no separate context enhancement is needed and none is applied).
    """

    def __init__(self, entity: str, regexes: List[str], score: float, name: str):
        self._regexes = [re.compile(r, re.IGNORECASE) for r in regexes]
        self._score = score
        super().__init__(supported_entities=[entity], name=name, supported_language="en")

    def load(self) -> None:
        """Nothing to load: the patterns are compiled in the constructor."""

    def analyze(self, text: str, entities: List[str], nlp_artifacts: Optional[NlpArtifacts] = None):
        """One result per keyword-led value; the span covers the value, never the keyword."""
        results = []
        for regex in self._regexes:
            for m in regex.finditer(text):
                if self.validate(m.group("value")):
                    results.append(self._result(m.start("value"), m.end("value")))
        return results

    def validate(self, value: str) -> bool:
        """Hook for subclasses; the default accepts every match."""
        return True

    def _result(self, start: int, end: int) -> RecognizerResult:
        meta = {"recognizer_name": self.name, "recognizer_identifier": self.id}
        return RecognizerResult(self.supported_entities[0], start, end, self._score, recognition_metadata=meta)


def account_number_recognizer() -> KeywordIdRecognizer:
    """ACCOUNT_NUMBER: 6-17 digits (spaces/dashes allowed inside) after "account", "acct", "a/c" and the like."""
    keyword = r"\b(?:(?:bank|checking|savings|customer|member(?:ship)?)\s+)?(?:account|acct\.?|a/c)"
    value = r"(?P<value>\d(?:[ -]?\d){5,16})(?![\d-])"
    return KeywordIdRecognizer("ACCOUNT_NUMBER", [keyword + _NUMBER_WORDS + value], 0.95, "AccountNumberRecognizer")


def order_number_recognizer() -> KeywordIdRecognizer:
    """ORDER_NUMBER: "order #55123", "order number 1234567", "ORD-123456" (with or without the keyword)."""
    keyed = r"\border" + _NUMBER_WORDS + r"(?P<value>(?:[A-Z]{1,4}-?)?\d[\dA-Z-]{3,19})\b"
    prefixed = r"\b(?P<value>ORD-?\d{4,12})\b"
    return KeywordIdRecognizer("ORDER_NUMBER", [keyed, prefixed], 0.95, "OrderNumberRecognizer")


def ticket_number_recognizer() -> KeywordIdRecognizer:
    """TICKET_NUMBER: "ticket 4411", "case #99812", "incident no. 5521", "TKT-00123"."""
    keyed = r"\b(?:ticket|case|incident|complaint)" + _NUMBER_WORDS + r"(?P<value>(?:[A-Z]{1,4}-?)?\d{3,12})\b"
    prefixed = r"\b(?P<value>(?:TKT|TCK|INC|CS)-?\d{3,12})\b"
    return KeywordIdRecognizer("TICKET_NUMBER", [keyed, prefixed], 0.95, "TicketNumberRecognizer")


def driver_license_recognizer() -> KeywordIdRecognizer:
    """DRIVER_LICENSE (any country): a 5-20 character id with digits after "driver's license" / "driving licence" /
    "DL" (Presidio's own US pattern recognizer scores these too weakly to pass a 0.4 threshold)."""
    keyword = r"\b(?:driver'?s?\s+licen[cs]e|driving\s+licen[cs]e|DL)"
    value = r"(?P<value>(?=[A-Z-]*\d)[A-Z0-9](?:[A-Z0-9-]{3,18})[A-Z0-9])\b"
    return KeywordIdRecognizer("DRIVER_LICENSE", [keyword + _NUMBER_WORDS + value], 0.9, "DriverLicenseRecognizer")


class PersonAfterKeywordRecognizer(KeywordIdRecognizer):
    """PERSON: the capitalised words right after "my name is", "Name:", "call me", "Dear", "Mr./Mrs./Ms./Dr."
    (spaCy's small model misses many non-English names; a keyword makes them cheap to catch)."""

    _STOP = frozenset(
        {"I", "The", "A", "An", "And", "Or", "But", "My", "Your", "Our", "Is", "Am", "Not", "Please", "Thanks"}
    )

    def __init__(self):
        keyword = r"\b(?:my\s+name\s+is|name\s*:|call(?:s|ed)?\s+me|dear|(?:mr|mrs|ms|miss|dr|prof)\.?)"
        value = r"(?P<value>[^\W\d_][\w'-]*\.?(?:[ \t]+[^\W\d_][\w'-]*\.?){0,3})"
        super().__init__("PERSON", [keyword + r"[ \t]+" + value], 0.8, "PersonAfterKeywordRecognizer")

    def analyze(self, text: str, entities: List[str], nlp_artifacts: Optional[NlpArtifacts] = None):
        """Keep the leading capitalised words of each match (at most four)."""
        results = []
        for m in self._regexes[0].finditer(text):
            start, end = m.start("value"), m.start("value")
            for token in re.finditer(r"\S+", m.group("value")):
                word = token.group().rstrip(".,")
                if not word[:1].isupper() or word in self._STOP:
                    break
                end = m.start("value") + token.start() + len(word)
            if end - start >= 2:
                results.append(self._result(start, end))
        return results


_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DATE = (
    r"(?P<value>\d{4}-\d{1,2}-\d{1,2}"  # 1990-03-14
    r"|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}"  # 14/03/1990, 3-14-90
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+\d{{4}}"  # 14th of March, 1990
    rf"|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}})"  # March 14, 1990
)


def date_of_birth_recognizer() -> KeywordIdRecognizer:
    """DATE_OF_BIRTH: a full date within a few words after "born", "DOB", "date of birth" or "birthday"."""
    keyword = r"\b(?:born|d\.?o\.?b\.?|date\s+of\s+birth|birth\s*date|birthday)\b"
    gap = r"[^\n\d.;!?]{0,20}?"
    spaced = r"(?P<value>\d{1,2}\s\d{1,2}\s(?:19|20)\d{2})"  # "14 07 1986", as read out on a call
    return KeywordIdRecognizer(
        "DATE_OF_BIRTH",
        [keyword + gap + _DATE + r"(?!\d)", keyword + gap + spaced + r"(?!\d)"],
        0.95,
        "DateOfBirthRecognizer",
    )


class BirthYearDateRecognizer(KeywordIdRecognizer):
    """DATE_OF_BIRTH without a keyword: a full date (day, month and year) whose year is 1920-2012. A contact centre's
    own dates (orders, deliveries, calls) are recent; a full date that far back is a birth date ("it's 14/07/1986"
    in answer to the agent's question). Scored below the keyword form."""

    def __init__(self):
        super().__init__("DATE_OF_BIRTH", [r"(?<![\d/.-])" + _DATE + r"(?![\d/-])"], 0.6, "BirthYearDateRecognizer")

    def validate(self, value: str) -> bool:
        years = re.findall(r"(?<!\d)(\d{4}|\d{2})(?!\d)", value)
        year = years[0] if re.match(r"\d{4}-", value) else (years[-1] if years else "")
        return len(year) == 4 and 1920 <= int(year) <= 2012


def sort_code_recognizer() -> KeywordIdRecognizer:
    """ACCOUNT_NUMBER: a UK sort code after "sort code" ("20-00-00", "20 00 00", "200000")."""
    value = r"(?P<value>\d{2}([ -]?)\d{2}\2\d{2})(?![\d-])"
    return KeywordIdRecognizer("ACCOUNT_NUMBER", [r"\bsort\s*code" + _NUMBER_WORDS + value], 0.95, "SortCodeRecognizer")


def spaced_card_recognizer() -> CreditCardRecognizer:
    """CREDIT_CARD written in groups ("4111 1111 1111 1111", "4111-1111-1111-1111", Amex 4-6-5), any issuer prefix
    (Presidio's own pattern misses e.g. the 2-series Mastercard range); Luhn-checked by CreditCardRecognizer."""
    patterns = [
        Pattern("card 4x4", r"\b\d{4}([ -])\d{4}\1\d{4}\1\d{4}\b", 0.5),
        Pattern("card 4-6-5", r"\b3[47]\d{2}([ -])\d{6}\1\d{5}\b", 0.5),
        Pattern("card 16 digits", r"\b\d{16}\b", 0.3),
    ]
    return CreditCardRecognizer(patterns=patterns, name="SpacedCardRecognizer")


class CardAfterKeywordRecognizer(KeywordIdRecognizer):
    """CREDIT_CARD: 12-19 digits right after "card" or "cc" (any issuer, no grouping), Luhn-checked."""

    def __init__(self):
        keyword = r"\b(?:card|cc)"
        value = r"(?P<value>\d{12,19})(?!\d)"
        super().__init__("CREDIT_CARD", [keyword + _NUMBER_WORDS + value], 0.95, "CardAfterKeywordRecognizer")

    def validate(self, value: str) -> bool:
        """The Luhn checksum."""
        digits = [int(c) for c in reversed(value)]
        total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
        return total % 10 == 0


_PHONE = r"(?P<value>(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,6}(?:[ .-]\d{2,6}){0,4}(?:\s?x\d{1,5})?)"


class PhoneAfterKeywordRecognizer(KeywordIdRecognizer):
    """PHONE_NUMBER in any national format ("0490 75 40 81", "(37) 788-063", "+46 (0)8 928 571 38") when a phone word
    leads ("Phone:", "call me at", "messages to") or follows ("... office", "... fax"); 7-15 digits, not a date."""

    def __init__(self):
        lead = (
            r"\b(?:phone|tel(?:ephone)?|mobile|cell|fax|desk|whatsapp|sms|call(?:\s+me)?(?:\s+(?:at|on))?"
            r"|reach\s+(?:me|us)\s+(?:at|on)|text\s+me\s+(?:at|on)|messages\s+to|answering\s+at)"
        )
        trail = r"(?<![\w+])" + _PHONE + r"[\s-]{0,2}(?:office|fax|mobile|cell|home|work)\b"
        leading = lead + r"(?:\s*(?:number|no\.?|#|is))?[\s:#|>-]{0,6}" + r"(?<![\d])" + _PHONE + r"(?![\d])"
        super().__init__("PHONE_NUMBER", [leading, trail], 0.9, "PhoneAfterKeywordRecognizer")

    def validate(self, value: str) -> bool:
        """7 to 15 digits (E.164 allows 15) and not an ISO date."""
        digits = sum(c.isdigit() for c in value.split("x")[0])
        return 7 <= digits <= 15 and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip())


_SUFFIX = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Drive|Dr|Boulevard|Blvd|Court|Ct|Way|Place|Pl|Square|Sq|Terrace"
    r"|Parkway|Pkwy|Highway|Hwy|Circle|Cir|Close|Crescent|Gardens|Alley|Plaza|Row|Walk|Trail)\b\.?"
)
_UNIT = r"(?:[,\s]+(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Flat|Floor|#)\s*\d+\w?)?"
_NAME = r"[^\W\d_][\w'.-]*"
# Words that never name a street: "at 9 and close at 5" is not an address.
_STREET_WORD = r"(?!(?:and|or|to|at|of|in|on|for|by|with|from|a|an|is|are|was|it|i|we|you|they|my|our|your|then|but)\b)"
_LEAD_UNIT = r"(?:\b(?:Apt\.?|Apartment|Suite|Unit|Flat)\s*\d+\w?,?\s+)?"


def street_address_recognizer() -> PatternRecognizer:
    """LOCATION for street addresses: "221 Baker Street", "6750 Koskikatu 25 Apt. 864", "86036 Rua do Arenque 1634",
    "PSC 0413, Box 8144". A house number, a capitalised street name, then a street suffix (English) or a second
    number (the European order), with an optional unit. Spans stop at the street line."""
    patterns = [
        Pattern(
            "number name suffix", rf"{_LEAD_UNIT}\b\d{{1,6}}\s+(?:{_STREET_WORD}{_NAME}\s+){{1,4}}{_SUFFIX}{_UNIT}", 0.6
        ),
        Pattern(
            "number name number",
            rf"\b\d{{1,6}}\s+(?-i:[A-Z\u00c0-\u024f\u0370-\u03ff]){_NAME}"
            rf"(?:\s+{_NAME}){{0,3}}\s+\d{{1,5}}\b{_UNIT}",
            0.5,
        ),
        Pattern("military", r"\b(?:PSC|Unit|USNS|USS|USNV|USCGC)\s+\d{3,5},?\s+Box\s+\d{3,5}", 0.6),
    ]
    context = ["address", "live", "lives", "located", "send", "ship", "deliver", "office", "street", "moved"]
    return PatternRecognizer("LOCATION", name="StreetAddressRecognizer", patterns=patterns, context=context)


class Filtered(EntityRecognizer):
    """Wraps a recognizer and keeps only the results for which `keep(text, result)` is true."""

    def __init__(self, inner: EntityRecognizer, keep: Callable[[str, RecognizerResult], bool], name: str):
        self._inner, self._keep = inner, keep
        super().__init__(
            supported_entities=inner.supported_entities, name=name, supported_language=inner.supported_language
        )

    def load(self) -> None:
        """The inner recognizer is already loaded."""

    def analyze(self, text: str, entities: List[str], nlp_artifacts: Optional[NlpArtifacts] = None):
        """The inner results that pass `keep`, relabelled as this recognizer's (Presidio groups results by id)."""
        kept = [r for r in self._inner.analyze(text, entities, nlp_artifacts) or [] if self._keep(text, r)]
        for r in kept:
            r.recognition_metadata = {
                **(r.recognition_metadata or {}),
                "recognizer_name": self.name,
                "recognizer_identifier": self.id,
            }
        return kept


def needs_context(words: List[str], window: int = 40) -> Callable[[str, RecognizerResult], bool]:
    """A `keep` predicate: one of `words` occurs within `window` characters before the value (for checksums that
    are too weak alone: a US phone number can pass the UK NHS check)."""
    return lambda text, r: any(w in text[max(0, r.start - window) : r.start].lower() for w in words)


_SPECIFIC_DATE = re.compile(
    rf"\b(?:1[89]|20)\d{{2}}\b|\d{{1,2}}[:/.-]\d{{1,2}}|\b{_MONTH}\s*\d|\d\s*(?:of\s+)?{_MONTH}"
    r"|\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b|\b\d{1,2}\s*(?:am|pm)\b",
    re.IGNORECASE,
)


def specific_dates(text: str, result: RecognizerResult) -> bool:
    """A `keep` predicate for spaCy's DATE/TIME: only dates that can point at a person (a year, a day and month, a
    clock time, a weekday); drops "next week", "this morning", "8+ years". Other entity types pass."""
    return result.entity_type != "DATE_TIME" or bool(_SPECIFIC_DATE.search(text[result.start : result.end]))


def custom_recognizers() -> list[EntityRecognizer]:
    """Every recognizer this module and serving.redaction.identifiers add to Presidio's registry."""
    from serving.redaction.identifiers import identifier_recognizers

    return [
        *identifier_recognizers(),
        BirthYearDateRecognizer(),
        sort_code_recognizer(),
        account_number_recognizer(),
        order_number_recognizer(),
        ticket_number_recognizer(),
        date_of_birth_recognizer(),
        spaced_card_recognizer(),
        CardAfterKeywordRecognizer(),
        PhoneAfterKeywordRecognizer(),
        street_address_recognizer(),
        driver_license_recognizer(),
        PersonAfterKeywordRecognizer(),
    ]
