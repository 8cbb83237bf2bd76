"""The entity types Switchboard can redact; part of the task catalogue, so profiles validate without Presidio.

Every name here is what a detector reports and what a profile lists: the pattern recognizers
(serving.redaction.recognizers), Presidio's own, and the trained token classifier use the same names.
"""

from __future__ import annotations

# Presidio's built-in recognizers that work offline with the small spaCy model.
PRESIDIO_ENTITIES = (
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
    "URL",
    "LOCATION",
    "DATE_TIME",
    "NRP",
    "US_SSN",
    "US_BANK_NUMBER",
    "US_DRIVER_LICENSE",
    "US_PASSPORT",
    "US_ITIN",
    "UK_NHS",
    "MEDICAL_LICENSE",
    "CRYPTO",
)

# Customer-service identifiers Presidio lacks by default (recognizers in serving.redaction.recognizers).
CUSTOM_ENTITIES = (
    "ACCOUNT_NUMBER",
    "ORDER_NUMBER",
    "TICKET_NUMBER",
    "DATE_OF_BIRTH",
    "CUSTOMER_ID",
    "POLICY_NUMBER",
    "PASSPORT",
    "DRIVER_LICENSE",
    "NATIONAL_ID",
)

SUPPORTED_ENTITIES = PRESIDIO_ENTITIES + CUSTOM_ENTITIES

# What each type covers (the tenant status names the types a profile leaves out with these words).
DESCRIPTIONS = {
    "PERSON": "names of people",
    "EMAIL_ADDRESS": "e-mail addresses",
    "PHONE_NUMBER": "phone numbers in any format (+44 7700 900123, (555) 010-4477, 0490 75 40 81)",
    "CREDIT_CARD": "payment card numbers (Luhn-checked, any grouping)",
    "IBAN_CODE": "IBANs (checksum-checked, spaced or not)",
    "IP_ADDRESS": "IPv4 and IPv6 addresses",
    "URL": "web addresses",
    "LOCATION": "street addresses, postcodes and places (42 Wallaby Way, SW1A 2AA, Sydney)",
    "DATE_TIME": "any specific date or time",
    "NRP": "nationalities, religious and political groups",
    "US_SSN": "US social security numbers",
    "US_BANK_NUMBER": "US bank account numbers",
    "US_DRIVER_LICENSE": "US driver's licence numbers (Presidio's state patterns)",
    "US_PASSPORT": "US passport numbers (Presidio's pattern)",
    "US_ITIN": "US individual taxpayer ids",
    "UK_NHS": "UK NHS numbers",
    "MEDICAL_LICENSE": "medical licence numbers",
    "CRYPTO": "crypto wallet addresses",
    "ACCOUNT_NUMBER": "bank and customer account numbers, sort codes",
    "ORDER_NUMBER": "order numbers (order #55123, ORD-123456)",
    "TICKET_NUMBER": "ticket, case and incident numbers",
    "DATE_OF_BIRTH": "dates of birth in any format (14/07/1986, July 14th 1986)",
    "CUSTOMER_ID": "customer, member and loyalty ids (CUST-771-204)",
    "POLICY_NUMBER": "insurance policy and claim numbers",
    "PASSPORT": "passport numbers of any country",
    "DRIVER_LICENSE": "driving licence numbers of any country (UK MORGA753116SM9IJ, US state formats)",
    "NATIONAL_ID": "national insurance and other national id numbers (UK NI QQ 12 34 56 C)",
}

# Every personal-data class a contact centre sees; a profile may narrow it (its status lists what it leaves out).
DEFAULT_ENTITIES = (
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "LOCATION",
    "DATE_OF_BIRTH",
    "CREDIT_CARD",
    "IBAN_CODE",
    "ACCOUNT_NUMBER",
    "US_BANK_NUMBER",
    "PASSPORT",
    "US_PASSPORT",
    "DRIVER_LICENSE",
    "US_DRIVER_LICENSE",
    "NATIONAL_ID",
    "US_SSN",
    "US_ITIN",
    "UK_NHS",
    "CUSTOMER_ID",
    "POLICY_NUMBER",
    "ORDER_NUMBER",
    "TICKET_NUMBER",
    "IP_ADDRESS",
)


def not_redacted(entities: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The default types a policy leaves out, in catalogue order (what a tenant's status reports)."""
    chosen = set(entities)
    return tuple(e for e in DEFAULT_ENTITIES if e not in chosen)
