"""Readers for the public intent corpora in ../shared/data (BANKING77, CLINC150, Bitext) and the fixed held-out rule.

CLINC150's data file carries no domains; `CLINC150_DOMAINS` lists the 15 intents of each of its 10 domains as the
dataset's own `domains.json` does. `HELD_OUT_DOMAINS` were fixed before any encoder training: the encoder never sees
their utterances, and neither does it see BANKING77, so both measure what a new tenant's unseen taxonomy gets.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

CLINC150_DOMAINS: dict[str, tuple[str, ...]] = {
    "banking": ("transfer", "transactions", "balance", "freeze_account", "pay_bill", "bill_balance", "bill_due",
                "interest_rate", "routing", "min_payment", "order_checks", "pin_change", "report_fraud",
                "account_blocked", "spending_history"),
    "credit_cards": ("credit_score", "report_lost_card", "credit_limit", "rewards_balance", "new_card",
                     "application_status", "card_declined", "international_fees", "apr", "redeem_rewards",
                     "credit_limit_change", "damaged_card", "replacement_card_duration", "improve_credit_score",
                     "expiration_date"),
    "kitchen_and_dining": ("recipe", "restaurant_reviews", "calories", "nutrition_info", "restaurant_suggestion",
                           "ingredients_list", "ingredient_substitution", "cook_time", "food_last", "meal_suggestion",
                           "restaurant_reservation", "confirm_reservation", "how_busy", "cancel_reservation",
                           "accept_reservations"),
    "home": ("shopping_list", "shopping_list_update", "next_song", "play_music", "update_playlist", "todo_list",
             "todo_list_update", "calendar", "calendar_update", "what_song", "order", "order_status", "reminder",
             "reminder_update", "smart_home"),
    "auto_and_commute": ("traffic", "directions", "gas", "gas_type", "distance", "current_location", "mpg",
                         "oil_change_when", "oil_change_how", "jump_start", "uber", "schedule_maintenance",
                         "last_maintenance", "tire_pressure", "tire_change"),
    "travel": ("book_flight", "book_hotel", "car_rental", "travel_suggestion", "travel_alert", "travel_notification",
               "carry_on", "timezone", "vaccines", "translate", "flight_status", "international_visa", "lost_luggage",
               "plug_type", "exchange_rate"),
    "utility": ("time", "alarm", "share_location", "find_phone", "weather", "text", "spelling", "make_call", "timer",
                "date", "calculator", "measurement_conversion", "flip_coin", "roll_dice", "definition"),
    "work": ("direct_deposit", "pto_request", "taxes", "payday", "w2", "pto_balance", "pto_request_status",
             "next_holiday", "insurance", "insurance_change", "schedule_meeting", "pto_used", "meeting_schedule",
             "rollover_401k", "income"),
    "small_talk": ("greeting", "goodbye", "tell_joke", "where_are_you_from", "how_old_are_you", "what_is_your_name",
                   "who_made_you", "thank_you", "what_can_i_ask_you", "what_are_your_hobbies", "do_you_have_pets",
                   "are_you_a_bot", "meaning_of_life", "who_do_you_work_for", "fun_fact"),
    "meta": ("change_ai_name", "change_user_name", "cancel", "user_name", "reset_settings", "whisper_mode", "repeat",
             "no", "yes", "maybe", "change_language", "change_accent", "change_speed", "change_volume", "sync_device"),
}

# Service domains a contact centre could run (airline, car service, restaurant bookings), far from banking.
HELD_OUT_DOMAINS: tuple[str, ...] = ("travel", "auto_and_commute", "kitchen_and_dining")

Rows = list[tuple[str, str]]  # (text, label)


def read_banking77(path: Path) -> Rows:
    """`text,category` CSV; the one label with a `?` (reverted_card_payment?) loses it, as in the northbank profile."""
    with path.open(newline="", encoding="utf-8") as f:
        return [(r["text"].strip(), r["category"].rstrip("?")) for r in csv.DictReader(f)]


def read_clinc150(path: Path) -> dict[str, Rows]:
    """{split: [(text, label)]}: train/val/test (in scope) and oos_train/oos_val/oos_test (label `oos`)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return {split: [(str(text), str(label)) for text, label in rows] for split, rows in data.items()}


def read_bitext(path: Path) -> Rows:
    with path.open(newline="", encoding="utf-8") as f:
        return [(r["instruction"].strip(), r["intent"]) for r in csv.DictReader(f) if r["instruction"].strip()]


def clinc_domain_of() -> dict[str, str]:
    return {intent: domain for domain, intents in CLINC150_DOMAINS.items() for intent in intents}


def held_out_intents(domains: tuple[str, ...] = HELD_OUT_DOMAINS) -> frozenset[str]:
    return frozenset(intent for d in domains for intent in CLINC150_DOMAINS[d])


def encoder_training_rows(data_dir: Path, held_out: tuple[str, ...] = HELD_OUT_DOMAINS) -> Rows:
    """What the customer-service encoder may learn from: CLINC150 train outside the held-out domains and the Bitext
    sample, labels prefixed by corpus. Never BANKING77, never a val/test/oos split."""
    clinc = read_clinc150(data_dir / "clinc150" / "data_full.json")["train"]
    excluded = held_out_intents(held_out)
    rows = [(t, f"clinc:{label}") for t, label in clinc if label not in excluded]
    rows += [(t, f"bitext:{label}") for t, label in read_bitext(data_dir / "bitext" / "bitext_customer_support_sample_4514.csv")]
    return rows


def by_label(rows: Rows) -> dict[str, list[str]]:
    """Distinct texts per label, first-seen order."""
    grouped: dict[str, dict[str, None]] = defaultdict(dict)
    for text, label in rows:
        grouped[label][text] = None
    return {label: list(texts) for label, texts in grouped.items()}
