"""The PII detector's synthetic training set: templates x faker values, rendered as chat or call (speech-to-text) turns
with character spans per entity type; seeded and deterministic (same seed, same faker version: same bytes).

    python -m serving.training.pii_data --out /tmp/pii-train.jsonl [--n 24000] [--seed 14] [--check]

`--check` verifies that no generated text equals a text of the evaluation set (../shared/data/presidio_synth) or a
turn of datasets/pii/heldout.jsonl, and that no template equals one of theirs once the slots are blanked.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys
from pathlib import Path
from typing import Callable, Iterator

from serving.training import pii_values as v
from serving.training.pii_templates import FILLERS, SECTIONS

# The entity types the detector learns (names from serving.vocabulary.entities); BIO tags over these.
LABELS = (
    "PERSON",
    "STREET_ADDRESS",
    "LOCATION",
    "PHONE_NUMBER",
    "EMAIL_ADDRESS",
    "DATE_OF_BIRTH",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_SSN",
    "IP_ADDRESS",
    "ACCOUNT_NUMBER",
    "CUSTOMER_ID",
    "POLICY_NUMBER",
    "PASSPORT",
    "DRIVER_LICENSE",
    "NATIONAL_ID",
    "ORDER_NUMBER",
    "TICKET_NUMBER",
    "UK_NHS",
)
SLOT_LABEL = {
    "SORT_CODE": "ACCOUNT_NUMBER",
    "CARD_LAST4": "CREDIT_CARD",
    "SSN_LAST4": "US_SSN",
    "ACCT_LAST4": "ACCOUNT_NUMBER",
    "POSTCODE": "LOCATION",
    "UNIT": "STREET_ADDRESS",
    "SURNAME": "PERSON",
    "FIRST_LOWER": "PERSON",
    "SPEAKER": "PERSON",
    "FOREIGN_CITY": "LOCATION",
    "COUNTRY": "LOCATION",
}
SECTION_WEIGHTS = {
    "prose": 4,
    "identity": 3,
    "contact": 3,
    "address": 3,
    "dates": 2,
    "payment": 3,
    "government": 2,
    "ids": 3,
    "tech": 1,
    "general": 3,
    "negative": 4,
    "transcript": 1,
}
ROOT = Path(__file__).resolve().parents[2]
SYNTH = ROOT.parent / "shared" / "data" / "presidio_synth"
HELDOUT = ROOT / "datasets" / "pii" / "heldout.jsonl"
_SLOT = re.compile(r"\{(\w+)\}")
_PRODUCTS = (
    "kettle",
    "headphones",
    "router",
    "washing machine",
    "phone case",
    "laptop",
    "sofa",
    "printer",
    "tablet",
    "broadband package",
    "premium plan",
    "gift card",
    "smart watch",
    "boiler",
)


def bio_tags() -> list[str]:
    return ["O"] + [f"{p}-{label}" for label in LABELS for p in ("B", "I")]


class Ctx:
    """What one example's slots share: the random source, one faker locale, the channel and the names used."""

    def __init__(self, rng: random.Random, fake, speech: bool, en=None, scripts: list | None = None):
        self.rng, self.fake, self.speech = rng, fake, speech
        self.scripts = scripts or [self.fake]  # fakers of v.SCRIPT_LOCALES, for towns in their own script
        self.names: list[str] = []
        self.en = en or fake  # English faker for prose (lorem words, jobs, catch phrases)


def _say(ctx: Ctx, value: str) -> str:
    return v.speechify(ctx.rng, value) if ctx.speech else value


def _person(ctx: Ctx) -> str:
    name = v.person(ctx.rng, ctx.fake)
    ctx.names.append(name)
    return name.lower() if ctx.speech or ctx.rng.random() < 0.12 else name


def _surname(ctx: Ctx) -> str:
    name = ctx.fake.last_name()
    ctx.names.append(name)
    return name.lower() if ctx.speech else name


def _speaker(ctx: Ctx) -> str:
    """A chat speaker label: the first name, the full name, or the same speaker again."""
    if ctx.names and ctx.rng.random() < 0.5:
        return ctx.rng.choice(ctx.names)
    name = ctx.fake.first_name() if ctx.rng.random() < 0.6 else v.person(ctx.rng, ctx.fake)
    ctx.names.append(name)
    return name


def _email(ctx: Ctx) -> str:
    value = v.email(ctx.rng, ctx.fake, ctx.names[-1] if ctx.names else None)
    return v.spoken_email(ctx.rng, value) if ctx.speech and ctx.rng.random() < 0.4 else value


def _phone(ctx: Ctx) -> str:
    value = v.phone(ctx.rng, ctx.fake)
    if ctx.speech and ctx.rng.random() < 0.6:
        return v.spoken_phone(ctx.rng, value) if ctx.rng.random() < 0.7 else v.spaced(value)
    return value


def _card_last4(ctx: Ctx) -> str:
    return _say(ctx, v.digits(ctx.rng, 4))


def _amount(ctx: Ctx) -> str:
    r = ctx.rng
    return r.choice(("£", "$", "€", "")) + f"{r.randint(2, 900)}.{r.randint(0, 99):02d}" + r.choice(("", "", " euros"))


FILL: dict[str, Callable[[Ctx], str]] = {
    "PERSON": _person,
    "STREET_ADDRESS": lambda c: v.street_line(c.rng, c.fake, c.speech),
    "LOCATION": lambda c: v.city_line(c.rng, c.fake).lower() if c.speech else v.city_line(c.rng, c.fake),
    "PHONE_NUMBER": _phone,
    "EMAIL_ADDRESS": _email,
    "DATE_OF_BIRTH": lambda c: v.date_of_birth(c.rng, c.speech),
    "CREDIT_CARD": lambda c: _say(c, v.credit_card(c.rng)),
    "CARD_LAST4": _card_last4,
    "IBAN_CODE": lambda c: v.iban(c.rng, c.fake),
    "US_SSN": lambda c: _say(c, v.ssn(c.rng)),
    "SSN_LAST4": _card_last4,
    "ACCT_LAST4": _card_last4,
    "POSTCODE": lambda c: _say(c, c.fake.postcode()),
    "UNIT": lambda c: _say(
        c, f"{c.rng.choice(('Suite', 'Apt.', 'Apt', 'Unit', 'Flat', 'Apartment'))} {c.rng.randint(1, 999)}"
    ),
    "IP_ADDRESS": lambda c: v.ipv4(c.rng, c.fake),
    "SURNAME": _surname,
    "FIRST_LOWER": lambda c: c.fake.first_name().lower(),
    "SPEAKER": _speaker,
    "FOREIGN_CITY": lambda c: v.foreign_city(c.rng, c.scripts),
    "COUNTRY": lambda c: c.fake.country(),
    "ACCOUNT_NUMBER": lambda c: _say(c, v.account_number(c.rng)),
    "SORT_CODE": lambda c: _say(c, f"{v.digits(c.rng, 2)}-{v.digits(c.rng, 2)}-{v.digits(c.rng, 2)}"),
    "CUSTOMER_ID": lambda c: _say(c, v.customer_id(c.rng)),
    "POLICY_NUMBER": lambda c: _say(c, v.policy_number(c.rng)),
    "PASSPORT": lambda c: _say(c, v.passport(c.rng)),
    "DRIVER_LICENSE": lambda c: _say(c, v.driver_license(c.rng)),
    "NATIONAL_ID": lambda c: _say(c, v.national_id(c.rng)),
    "ORDER_NUMBER": lambda c: _say(c, v.order_number(c.rng)),
    "TICKET_NUMBER": lambda c: _say(c, v.ticket_number(c.rng)),
    "UK_NHS": lambda c: _say(c, v.nhs_number(c.rng)),
    # distractors: labelled O
    "EXPIRY": lambda c: f"{c.rng.randint(1, 12):02d}/{c.rng.randint(25, 31)}",
    "AMOUNT": _amount,
    "WHEN": lambda c: c.fake.date_between("-1y", "+3m").strftime(c.rng.choice(("%d %B", "%B %d", "%d/%m", "%A"))),
    "QTY": lambda c: str(c.rng.randint(2, 30)),
    "YEAR": lambda c: str(c.rng.randint(1990, 2025)),
    "CLOCK": lambda c: f"{c.rng.randint(1, 12)}{c.rng.choice((':00', ':30', 'pm', 'am', ''))}",
    "PRODUCT": lambda c: c.rng.choice(_PRODUCTS),
    "PRODUCT_CODE": lambda c: f"{v.letters(c.rng, 2)}-{v.digits(c.rng, 3)}",
    "ORG": lambda c: c.fake.company(),
    "PROSE": lambda c: c.en.paragraph(nb_sentences=c.rng.randint(1, 4)),
    "JOB": lambda c: c.en.job().lower(),
    "CATCH": lambda c: c.en.catch_phrase(),
    "BS": lambda c: c.en.bs(),
    "AGE": lambda c: f"{c.rng.randint(18, 99)} years old",
    "DECADE": lambda c: c.rng.choice(("60s", "70s", "80s", "90s", "1990s", "2000s", "seventies", "eighties")),
    "DOMAIN": lambda c: c.en.domain_name(),
    "URL_TEXT": lambda c: c.en.url(),
}


class _Fallback:
    """A locale's faker that borrows en_US's provider where the locale has none (not every locale has phones)."""

    def __init__(self, fake, fallback):
        self._fake, self._fallback = fake, fallback

    def __getattr__(self, name: str):
        try:
            return getattr(self._fake, name)
        except AttributeError:
            return getattr(self._fallback, name)


def render(template: str, ctx: Ctx) -> tuple[str, list[dict]]:
    """Fill the template's slots; the spans of labelled slots point into the returned text."""
    parts, spans, cursor, length = [], [], 0, 0
    for m in _SLOT.finditer(template):
        literal = _literal(template[cursor : m.start()], ctx)
        value = FILL[m.group(1)](ctx)
        parts += [literal, value]
        length += len(literal)
        label = SLOT_LABEL.get(m.group(1), m.group(1))
        if label in LABELS:
            spans.append({"start": length, "end": length + len(value), "entity_type": label, "value": value})
        length += len(value)
        cursor = m.end()
    parts.append(_literal(template[cursor:], ctx))
    return "".join(parts), spans


def _literal(text: str, ctx: Ctx) -> str:
    """Calls read as speech-to-text writes them: lower case, most punctuation gone."""
    if not ctx.speech:
        return text
    text = text.lower()
    return re.sub(r"[,.?!:;#|]", "", text) if ctx.rng.random() < 0.7 else text


def example(
    rng: random.Random, fakes: list, templates: dict[str, tuple[str, ...]], en=None, scripts: list | None = None
) -> dict:
    """One turn: one to three sentences from weighted sections, sharing a locale and a channel."""
    speech = rng.random() < 0.45
    ctx = Ctx(rng, rng.choice(fakes), speech, en, scripts)
    sections = list(SECTION_WEIGHTS)
    chosen = rng.choices(sections, weights=[SECTION_WEIGHTS[s] for s in sections], k=rng.choice((1, 1, 2, 2, 3)))
    text, spans = "", []
    if speech and rng.random() < 0.4:
        text = rng.choice(FILLERS) + " "
    for i, section in enumerate(chosen):
        sentence, found = render(rng.choice(templates[section]), ctx)
        joint = "" if i == 0 else (rng.choice((" ", " and ", ", ")) if speech else rng.choice((" ", " ", "\n")))
        offset = len(text) + len(joint)
        text += joint + sentence
        spans += [{**s, "start": s["start"] + offset, "end": s["end"] + offset} for s in found]
    if not speech and rng.random() < 0.08:
        text = text.lower()
        spans = [{**s, "value": text[s["start"] : s["end"]]} for s in spans]
    return {"channel": "call" if speech else "chat", "text": text, "spans": spans}


def pinned_hash_seed(module: str, argv: list[str] | None) -> None:
    """Run this command again with PYTHONHASHSEED=0 unless it already is: some faker locales (it_IT's towns) pick from
    sets, whose order follows Python's per-process string hashing, so without a fixed hash seed the same `--seed`
    gives different towns in a few hundred turns."""
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.execve(
            sys.executable,
            [sys.executable, "-m", module, *(sys.argv[1:] if argv is None else argv)],
            {**os.environ, "PYTHONHASHSEED": "0"},
        )


def generate(n: int, seed: int, locales: tuple[str, ...] = v.LOCALES) -> Iterator[dict]:
    """`n` examples, deterministic for a seed (and the locales, all of pii_values.LOCALES by default) in a process
    whose PYTHONHASHSEED is fixed (see pinned_hash_seed)."""
    from faker import Faker

    rng = random.Random(seed)
    fallback = Faker("en_US")
    fallback.seed_instance(seed * 1000 - 1)
    fakes = []
    for i, locale in enumerate(locales):
        fake = Faker(locale)
        fake.seed_instance(seed * 1000 + i)
        fakes.append(_Fallback(fake, fallback))
    scripts = []
    for i, locale in enumerate(v.SCRIPT_LOCALES):
        fake = Faker(locale)
        fake.seed_instance(seed * 1000 + 500 + i)
        scripts.append(fake)
    for i in range(n):
        yield {"id": f"gen-{seed}-{i:06d}", **example(rng, fakes, SECTIONS, fallback, scripts)}


def skeleton(template: str) -> str:
    """A template with its slots blanked and case/space/punctuation normalised, for comparisons."""
    t = re.sub(r"\{\{?\s*\w+\s*\}?\}", "<X>", template.lower())
    return re.sub(r"[^\w<>]+", " ", t).strip()


def check_distinct(examples: list[dict]) -> dict[str, int]:
    """Exact-text and template-skeleton overlap with the evaluation set and the held-out turns (must all be 0)."""
    synth = json.loads((SYNTH / "synth_dataset_v2.json").read_text())
    heldout = [json.loads(line) for line in HELDOUT.read_text().splitlines() if line.strip()]
    texts = {e["text"].strip().lower() for e in examples}
    ours = {skeleton(t) for section in SECTIONS.values() for t in section}
    held_skeletons = set()
    for turn in heldout:
        t = turn["text"]
        for span in sorted(turn["spans"], key=lambda s: -s["start"]):
            t = t[: span["start"]] + "{X}" + t[span["end"] :]
        held_skeletons.add(skeleton(t))
    synth_templates = {skeleton(t) for t in (SYNTH / "templates.txt").read_text().splitlines() if t.strip()}
    return {
        "equal_to_synth_text": sum(r["full_text"].strip().lower() in texts for r in synth),
        "equal_to_heldout_turn": sum(t["text"].strip().lower() in texts for t in heldout),
        "template_equal_to_synth_template": len(ours & synth_templates),
        "template_equal_to_heldout_turn": len(ours & held_skeletons),
    }


def write(examples: list[dict], out: Path) -> str:
    out.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples).encode("utf-8")
    out.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def main(argv: list[str] | None = None) -> int:
    pinned_hash_seed("serving.training.pii_data", argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n", type=int, default=24000)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--check", action="store_true", help="verify distinctness from the evaluation sets")
    args = parser.parse_args(argv)
    examples = list(generate(args.n, args.seed))
    digest = write(examples, args.out)
    spans = [s["entity_type"] for e in examples for s in e["spans"]]
    report: dict[str, object] = {
        "out": str(args.out),
        "examples": len(examples),
        "spans": len(spans),
        "sha256": digest,
        "per_type": {label: spans.count(label) for label in LABELS},
    }
    distinct = check_distinct(examples) if args.check else {}
    if args.check:
        report["distinct"] = distinct
    print(json.dumps(report, indent=1))
    return 1 if any(distinct.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
