"""Recognizers for the ids a contact centre hears that Presidio lacks: customer ids, insurance policy numbers,
passports, driving licences, national insurance numbers, UK postcodes and phone numbers written the international or
the UK way (imported by serving.redaction.recognizers only).

Keyword-led recognizers report only the value; the value may be written in pieces ("CUST-771-204", "533 380 006",
"QQ 12 34 56 C", "D 1 2 3 - 4 5 6 7") and stops at the first word that is neither a number nor a capital-letter group.
Pattern recognizers without a keyword carry context words that raise their score (Presidio's context enhancer).
"""

from __future__ import annotations

import re
from typing import List, Optional

from presidio_analyzer import Pattern, PatternRecognizer
from presidio_analyzer.nlp_engine import NlpArtifacts

from serving.redaction.recognizers import _NUMBER_WORDS, KeywordIdRecognizer

# One piece holds a digit ("771", "X4829931L", "MORGA753116SM9IJ"), or is a group of capitals ("CUST", "QQ", "D").
_PIECE = r"(?:(?=[A-Z]*\d)[A-Z0-9]{1,20}|(?-i:[A-Z]{1,4})(?![A-Za-z]))"
_SEP = r"(?:[ \t]?[-/.][ \t]?|[ \t])"
ID_VALUE = rf"(?P<value>{_PIECE}(?:{_SEP}{_PIECE}){{0,12}})"
_TRAILING_WORDS = re.compile(r"(?:[ \t]+(?:I|A))+$")


class IdAfterKeywordRecognizer(KeywordIdRecognizer):
    """A value in pieces after a keyword, with at least `min_digits` digits and `min_chars` letters and digits in all.

    Reports the value without a trailing lone "I" or "A" (the start of the next sentence: "policy 88123 I think").
    """

    def __init__(
        self,
        entity: str,
        keyword: str,
        name: str,
        min_digits: int = 3,
        min_chars: int = 4,
        max_chars: int = 24,
        score: float = 0.95,
    ):
        self._min_digits, self._min_chars, self._max_chars = min_digits, min_chars, max_chars
        super().__init__(entity, [keyword + _NUMBER_WORDS + ID_VALUE + r"(?![\w-])"], score, name)

    def analyze(self, text: str, entities: List[str], nlp_artifacts: Optional[NlpArtifacts] = None):
        results = []
        for m in self._regexes[0].finditer(text):
            value = _TRAILING_WORDS.sub("", m.group("value"))
            if self.validate(value):
                results.append(self._result(m.start("value"), m.start("value") + len(value)))
        return results

    def validate(self, value: str) -> bool:
        chars = [c for c in value if c.isalnum()]
        digits = sum(c.isdigit() for c in chars)
        return digits >= self._min_digits and self._min_chars <= len(chars) <= self._max_chars


def customer_id_recognizer() -> IdAfterKeywordRecognizer:
    """CUSTOMER_ID after "customer id/number/ref", "client", "member(ship)", "loyalty (card)", "subscriber", "user id"
    ("customer account ..." stays an ACCOUNT_NUMBER)."""
    keyword = (
        r"\b(?:customer(?!\s+(?:account|acct|service|care|support))|client|member(?:ship)?|loyalty(?:\s+card)?"
        r"|subscriber|user\s+id|reward(?:s)?(?:\s+card)?)"
    )
    return IdAfterKeywordRecognizer("CUSTOMER_ID", keyword, "CustomerIdRecognizer")


def prefixed_customer_id_recognizer() -> PatternRecognizer:
    """CUSTOMER_ID written with its prefix and no keyword: "CUST-771-204", "CID 44812", "MBR-00912"."""
    patterns = [
        Pattern("customer prefix", r"\b(?:CUST|CUS|CID|CST|MBR|MEM|LOY)[- ]?\d[\dA-Z]*(?:-[\dA-Z]+){0,3}\b", 0.85)
    ]
    return PatternRecognizer(
        "CUSTOMER_ID",
        name="PrefixedCustomerIdRecognizer",
        patterns=patterns,
        context=["customer", "member", "account", "id", "reference"],
    )


def policy_number_recognizer() -> IdAfterKeywordRecognizer:
    """POLICY_NUMBER after "policy", "claim", "cover note", "certificate" ("insurance policy HX-55102-31")."""
    keyword = r"\b(?:policy|claim|cover\s+note|certificate|insurance)"
    return IdAfterKeywordRecognizer("POLICY_NUMBER", keyword, "PolicyNumberRecognizer")


def prefixed_policy_recognizer() -> PatternRecognizer:
    """POLICY_NUMBER written with its prefix and no keyword: "POL-4410-22871", "CLM-2025-0087"."""
    patterns = [Pattern("policy prefix", r"\b(?:POL|PLC|POLNO|CLM)[- ]?\d[\dA-Z]*(?:-[\dA-Z]+){0,3}\b", 0.85)]
    return PatternRecognizer(
        "POLICY_NUMBER",
        name="PrefixedPolicyRecognizer",
        patterns=patterns,
        context=["policy", "claim", "insurance", "cover"],
    )


def passport_recognizer() -> IdAfterKeywordRecognizer:
    """PASSPORT (any country) after "passport": 6-12 letters and digits, at least 5 digits, spaced or not."""
    return IdAfterKeywordRecognizer(
        "PASSPORT", r"\bpassports?", "PassportRecognizer", min_digits=5, min_chars=6, max_chars=12
    )


def spaced_driver_license_recognizer() -> IdAfterKeywordRecognizer:
    """DRIVER_LICENSE written in pieces after "driving licence" / "driver's license" ("D 1 2 3 - 4 5 6 7 - 8 9 0 1");
    the unspaced forms are serving.redaction.recognizers.driver_license_recognizer's."""
    keyword = r"\b(?:driver'?s?\s+licen[cs]e|driving\s+licen[cs]e|licen[cs]e\s+number)"
    return IdAfterKeywordRecognizer(
        "DRIVER_LICENSE", keyword, "SpacedDriverLicenseRecognizer", min_digits=4, min_chars=5, max_chars=20, score=0.9
    )


def uk_driver_license_recognizer() -> PatternRecognizer:
    """DRIVER_LICENSE in the UK (DVLA) format without a keyword: 5 surname letters (9-padded), 6 digits, 2 initials
    (9-padded), a digit and 2 check letters ("WOODS802154JA9AB")."""
    patterns = [Pattern("dvla", r"\b(?-i:[A-Z9]{5}\d[0156]\d[0-3]\d{2}[A-Z9]{2}\d[A-Z]{2})(?:\s?\d{2})?\b", 0.85)]
    return PatternRecognizer(
        "DRIVER_LICENSE",
        name="UkDriverLicenseRecognizer",
        patterns=patterns,
        context=["licence", "license", "driving", "dvla"],
    )


_NINO = r"(?-i:(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z](?:[ \t]?\d{2}){3}[ \t]?[A-D])"


def national_id_recognizer() -> IdAfterKeywordRecognizer:
    """NATIONAL_ID after "national insurance", "NI number", "NINO", "national id", "identity card", "social insurance",
    "tax id" (any format with at least 5 digits: the HMRC specimen "QQ 12 34 56 C" included)."""
    keyword = (
        r"\b(?:national\s+(?:insurance|id(?:entity)?|identification)(?:\s+card)?|(?-i:NI|NINO)"
        r"|social\s+insurance|identity\s+card|id\s+card|tax\s+(?:id|identification|code)|(?-i:TIN|SIN))"
    )
    return IdAfterKeywordRecognizer(
        "NATIONAL_ID", keyword, "NationalIdRecognizer", min_digits=5, min_chars=6, max_chars=20
    )


def uk_nino_recognizer() -> PatternRecognizer:
    """NATIONAL_ID: a UK national insurance number in HMRC's format without a keyword ("AB 12 34 56 C", "JG103759A")."""
    patterns = [Pattern("nino", rf"\b{_NINO}\b", 0.7)]
    return PatternRecognizer(
        "NATIONAL_ID",
        name="UkNinoRecognizer",
        patterns=patterns,
        context=["national", "insurance", "ni", "nino", "hmrc"],
    )


_US_STATES = (
    "AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC"
    "|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY"
)


def postcode_recognizer() -> PatternRecognizer:
    """LOCATION for postal codes: UK postcodes ("SW1A 1AA", "M1 1AE") and a US state with its ZIP ("NY 10118")."""
    patterns = [
        Pattern("uk postcode", r"\b(?-i:[A-Z]{1,2}\d[A-Z\d]?[ \t]\d[ABD-HJLNP-UW-Z]{2})\b", 0.6),
        Pattern("uk postcode unspaced", r"\b(?-i:[A-Z]{1,2}\d[A-Z\d]?\d[ABD-HJLNP-UW-Z]{2})\b", 0.3),
        Pattern("us state zip", rf"\b(?-i:(?:{_US_STATES}))[ \t]+\d{{5}}(?:-\d{{4}})?\b", 0.9),
    ]
    return PatternRecognizer(
        "LOCATION",
        name="PostcodeRecognizer",
        patterns=patterns,
        context=["postcode", "post code", "zip", "address", "live", "deliver", "ship"],
    )


class PhoneFormatRecognizer(PatternRecognizer):
    """PHONE_NUMBER without a keyword: international ("+44 7700 900123", "+33 6 12 34 56 78", "+1 (415) 555-0132",
    "0044 20 7946 0018") and UK national ("07700 900123", "020 7946 0018") numbers; 8-15 digits (E.164)."""

    def __init__(self):
        patterns = [
            Pattern(
                "international",
                r"(?<![\w+])(?:\+|00)[1-9]\d{0,2}(?:[ .-]?\(0\))?(?:[ .-]?(?:\(\d{1,4}\)|\d{1,6})){1,6}"
                r"(?![\d-])",
                0.7,
            ),
            Pattern("uk national", r"(?<![\w+])0[1-9]\d{1,4}[ -]?\d{3,4}[ -]?\d{3,4}(?![\d-])", 0.5),
            Pattern("us parenthesised", r"(?<![\w+])\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}(?![\d-])", 0.6),
        ]
        context = ["phone", "mobile", "cell", "call", "ring", "number", "tel", "landline", "text", "whatsapp", "reach"]
        super().__init__("PHONE_NUMBER", name="PhoneFormatRecognizer", patterns=patterns, context=context)

    def validate_result(self, pattern_text: str) -> Optional[bool]:
        """8 to 15 digits (E.164), the '00' prefix not counted; None keeps the pattern's score."""
        digits = re.sub(r"\D", "", pattern_text)
        digits = digits[2:] if pattern_text.startswith("00") else digits
        return None if 8 <= len(digits) <= 15 else False


def identifier_recognizers() -> list:
    """Every recognizer this module adds (see serving.redaction.recognizers.custom_recognizers)."""
    return [
        customer_id_recognizer(),
        prefixed_customer_id_recognizer(),
        policy_number_recognizer(),
        prefixed_policy_recognizer(),
        passport_recognizer(),
        spaced_driver_license_recognizer(),
        uk_driver_license_recognizer(),
        national_id_recognizer(),
        uk_nino_recognizer(),
        postcode_recognizer(),
        PhoneFormatRecognizer(),
    ]
