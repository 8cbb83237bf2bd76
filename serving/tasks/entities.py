"""The entity types Switchboard can redact; part of the task catalogue, so profiles validate without Presidio."""

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
)

SUPPORTED_ENTITIES = PRESIDIO_ENTITIES + CUSTOM_ENTITIES

DEFAULT_ENTITIES = (
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_SSN",
    "IP_ADDRESS",
    "ACCOUNT_NUMBER",
    "ORDER_NUMBER",
    "TICKET_NUMBER",
    "DATE_OF_BIRTH",
)
