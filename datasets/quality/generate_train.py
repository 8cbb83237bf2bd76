"""Write train.jsonl: templated score-quality conversations, labelled by construction (seeded, deterministic).

    python datasets/quality/generate_train.py [--n 300] [--seed 13]
    python datasets/quality/generate_train.py --wide [--n 400] [--seed 17]    # train_wide.jsonl, phrasings_wide.py
    python datasets/quality/generate_train.py --steps [--n 300] [--seed 19]   # train_steps.jsonl, phrasings_steps.py

Each conversation is put together from an agent behaviour chosen per criterion (for example verification by order
number, by name and date of birth, by account PIN, or none); the label of each criterion is what the record's tenant
glossary (rubrics.json) says about that behaviour, so the same behaviour is `met` for one tenant and `not_met` for
another. About a third of the conversations are also written under a second tenant (same turns, that tenant's labels).
The evidence of a `met` label is the one agent sentence that carries the behaviour. Nothing here is read from the
held-out split; validate.py checks that no conversation appears in both.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
AGENTS = ["Dana", "Marcus", "Priya", "Tom", "Leah", "Aisha", "Pavel", "Grace", "Lars", "Omar", "Ines", "Ben", "Chloe",
          "Rosa", "Kofi", "Nadia", "Jonas", "Sam", "Mei", "Tariq", "Elena", "Hugo", "Zara", "Finn", "Lucia", "Raj"]
BRAND = {"shopright": "ShopRight", "northbank": "NorthBank", "skyway": "SkyWay", "connectwave": "ConnectWave"}

# Which behaviour each tenant's glossary counts as `met` (the rest are `not_met`, including the other tenants' kinds).
MET = {
    "shopright": {"verification": {"order_number"}, "empathy": {"acknowledge", "both"},
                  "upsell": {"warranty", "accessory", "higher_tier"}, "closing": {"anything_else"}},
    "northbank": {"verification": {"name_dob", "otp"}, "empathy": {"apology", "both"},
                  "upsell": {"premium_account", "credit_card", "loan"}, "closing": {"recap"}},
    "skyway": {"verification": {"ref_surname"}, "empathy": {"both"},
               "upsell": {"seat_upgrade", "extra_bag", "lounge", "insurance"}, "closing": {"reference"}},
    "connectwave": {"verification": {"pin", "security_q"}, "empathy": {"apology", "both"},
                    "upsell": {"data_plan", "broadband_tier", "extra_line"}, "closing": {"reference"}},
}

GREET = [
    "Hi, my name is {a} and I'm with {b} support.", "Hello, you're speaking with {a} at {b}.",
    "Good morning, this is {a} from {b}.", "Thanks for contacting {b}, {a} here.", "Hi there, I'm {a}.",
    "Good afternoon, you're through to {a} at {b}.", "Welcome to {b} chat, my name is {a}.",
]
GREET_NONAME = ["Hi there!", "Hello and thanks for getting in touch.", "Good morning.", "Hey, thanks for the message."]
VERIFY = {
    "order_number": ["Could you confirm the order number, please?", "What's the order number on your confirmation?",
                     "Can I take the order number first?"],
    "name_dob": ["Can you give me your full name and date of birth, please?",
                 "Before we go on, could you confirm your full name and date of birth?"],
    "otp": ["I've sent a one-time passcode to your registered phone; could you read it back to me?",
            "Please tell me the six-digit passcode we just texted to your phone on file."],
    "ref_surname": ["Could you give me the booking reference and the passenger's surname?",
                    "What are the six-character booking reference and the lead passenger's surname?"],
    "ref_only": ["What's your booking reference?", "Could you send me the booking reference?"],
    "pin": ["For security, could you tell me your account PIN?", "Please confirm your four-digit account PIN."],
    "security_q": ["Could you answer your account security question for me?",
                   "Please give me the answer to your security question."],
    "email_only": ["What's the email address on the account?", "Could you confirm your email address?"],
}
VERIFY_REPLY = {"order_number": "It's {n}.", "name_dob": "{c}, {d}.", "otp": "{p}", "ref_surname": "{r}, {s}.",
                "ref_only": "{r}", "pin": "{q}", "security_q": "Maple Avenue.", "email_only": "{e}"}
EMPATHY = {
    "acknowledge": ["I can see how frustrating this is.", "I understand how annoying that must be.",
                    "I can imagine how stressful that is.", "That sounds really inconvenient, I get it."],
    "apology": ["I'm sorry about that.", "I apologise for this.", "I'm really sorry.", "Sorry for the trouble."],
    "both": ["I'm sorry, I can see how much this disrupts your plans.",
             "I understand how frustrating this has been, and I apologise.",
             "I know this has ruined your day, and I'm very sorry."],
}
UPSELL = {
    "warranty": "A two-year protection plan for it is {x} dollars if you'd like to add one.",
    "accessory": "Many customers also pick up the matching carrying case for {x} dollars.",
    "higher_tier": "The Pro version has double the storage for {x} dollars more, if you'd like to switch.",
    "premium_account": "Our Premier account would waive that fee, if you'd like to upgrade.",
    "credit_card": "You'd also qualify for our Rewards credit card, if that's of interest.",
    "loan": "If it helps, I can give you a quote on a personal loan too.",
    "seat_upgrade": "For {x} euros I can also move you to an extra-legroom seat.",
    "extra_bag": "You can add a second checked bag now for {x} euros.",
    "lounge": "Lounge access at the airport is {x} euros if you'd like it.",
    "insurance": "Travel insurance is {x} euros and covers cancellations, if you want it.",
    "data_plan": "Our 50 GB plan is only {x} dollars more a month, if you'd like more data.",
    "broadband_tier": "Our faster Fibre 500 tier is {x} dollars more a month.",
    "extra_line": "You can add an extra line for a family member for {x} dollars a month.",
}
CLOSING = {
    "anything_else": ["Is there anything else I can help you with?", "Anything else I can do for you today?",
                      "Was there anything else you needed?"],
    "recap": ["To recap, {step}, and that will happen {when}.", "So, {step}, and you can expect it {when}."],
    "reference": ["Your reference number is {ref}.", "I've logged this under case number {ref}."],
    "goodbye": ["Have a great day!", "Take care.", "Thanks for contacting us."],
}
# Per domain: (customer opening, concrete resolution, vague non-resolution, recap step, when).
SCENARIOS = {
    "shopright": [
        ("The {p} I ordered arrived damaged.", "I've arranged a replacement {p}, and it ships today.",
         "These things happen with couriers sometimes.", "a replacement {p} ships today", "within three working days"),
        ("I returned a {p} two weeks ago and still have no refund.", "I've pushed the refund through now.",
         "Refunds take as long as they take, I'm afraid.", "the refund is released", "within five working days"),
        ("I got the wrong {p}, not the one I ordered.", "I'll send the right {p} today and email you a free return label.",
         "I can't really do much about warehouse mistakes.", "the correct {p} goes out today", "by Thursday"),
        ("Where is my {p}? It was due yesterday.", "I've upgraded it to express, so it arrives tomorrow.",
         "It should turn up at some point.", "the {p} arrives by express", "tomorrow"),
        ("Can I cancel the {p} I ordered this morning?", "I've cancelled it, and the payment is released.",
         "Cancellations are handled by another team.", "the order is cancelled and the payment released",
         "within two days"),
    ],
    "northbank": [
        ("My card was declined at the shop today.", "I've removed the fraud block, so your card works again now.",
         "Declines can happen for lots of reasons.", "the block is lifted", "straight away"),
        ("There's a payment I don't recognise on my account.", "I've raised a chargeback and ordered you a new card.",
         "You could ask the merchant about it.", "the chargeback is raised and a new card is sent",
         "within five working days"),
        ("I was charged a fee I don't understand.", "I've refunded the fee to your account.",
         "Fees are set out in the terms and conditions.", "the fee is refunded", "by tomorrow"),
        ("My transfer hasn't arrived in the other account.", "I've traced the transfer and it will land today.",
         "Transfers usually arrive eventually.", "the transfer lands", "by 6 pm today"),
        ("I need to change the address on my account.", "I've updated your address on the account.",
         "Address changes can be a bit complicated.", "your new address is on the account",
         "from your next statement"),
    ],
    "skyway": [
        ("My flight tomorrow was cancelled.", "I've rebooked you on the next flight at no cost.",
         "Cancellations are out of our hands.", "you're rebooked on the next flight", "tomorrow at 14:20"),
        ("My suitcase didn't arrive.", "We'll courier the bag to your address tomorrow.",
         "Bags usually turn up in the end.", "the bag is couriered to you", "tomorrow by 4 pm"),
        ("My flight was delayed five hours and I want compensation.", "I've approved 250 euros compensation.",
         "Delays are part of flying, unfortunately.", "250 euros compensation is paid", "within ten days"),
        ("I want to change my return date.", "I've moved your return flight to the date you asked for.",
         "Changes depend on the fare rules.", "your return flight is moved", "and a new ticket is emailed now"),
        ("I need a refund for a flight I can't take.", "I've refunded the taxes and issued a voucher for the fare.",
         "Those tickets are generally non-refundable.", "the taxes are refunded and the voucher issued",
         "within seven working days"),
    ],
    "connectwave": [
        ("My broadband keeps dropping every evening.", "I've reset the line and booked an engineer for Thursday.",
         "Broadband can be patchy in some areas.", "an engineer visits", "on Thursday morning"),
        ("My bill is higher than usual this month.", "I've credited the overcharge back to your account.",
         "Bills go up and down a bit.", "the overcharge is credited", "on your next bill"),
        ("My mobile data stopped working abroad.", "I've switched roaming back on, so data works again now.",
         "Roaming can be unreliable.", "roaming is back on", "right now"),
        ("I want to keep my number and leave.", "I've sent your port-out code by text.",
         "Leaving takes a while to process.", "your port-out code is sent", "within the hour"),
        ("My new SIM hasn't activated.", "I've activated the SIM from our side, so it works in ten minutes.",
         "SIMs sometimes take time.", "the SIM is active", "within ten minutes"),
    ],
}
PRODUCTS = ["lamp", "blender", "headphones", "laptop", "jacket", "kettle", "phone case", "desk chair", "trainers",
            "smartwatch", "vacuum cleaner", "coffee machine"]
CUSTOMERS = ["Helen Marsh", "Samuel Reyes", "Ruth Adeyemi", "Ken Ito", "Maria Lopez", "Owen Price", "Fatima Ali",
             "Joe Kowalski", "Anna Berg", "Luis Moreno"]
FILLER_CUSTOMER = ["Ok, thanks.", "That's great.", "Alright.", "Thank you so much.", "Fine, I guess.", "Perfect."]
VERIFY_KINDS = list(VERIFY)
UPSELL_KINDS = list(UPSELL)


@dataclass(frozen=True)
class Tables:
    """The phrase tables one run draws from. A value that is a list is drawn from; a plain string is used as is (the
    base tables' upsells and resolutions, so the base run draws exactly as it always has)."""

    greet: list
    greet_noname: list
    verify: dict
    empathy: dict
    upsell: dict
    closing: dict
    scenarios: dict
    confirm: list


BASE = Tables(GREET, GREET_NONAME, VERIFY, EMPATHY, UPSELL, CLOSING, SCENARIOS,
              ["Thanks.", "Thank you, that's confirmed.", "Got it."])


def wide_tables() -> Tables:
    """phrasings_wide.py's tables; its scenarios come on top of the base ones."""
    sys.path.insert(0, str(HERE))
    import phrasings_wide as w

    scenarios = {t: SCENARIOS[t] + w.SCENARIOS[t] for t in SCENARIOS}
    return Tables(w.GREET, w.GREET_NONAME, w.VERIFY, w.EMPATHY, w.UPSELL, w.CLOSING, scenarios, w.CONFIRM)


def steps_tables() -> Tables:
    """phrasings_wide.py's behaviours with phrasings_steps.py's scenarios only (resolutions told as next steps, facts
    and booked actions; vague ones drawn from several)."""
    sys.path.insert(0, str(HERE))
    import phrasings_steps as s

    return dataclasses.replace(wide_tables(), scenarios=s.SCENARIOS)


def _pick(rng: random.Random, value):
    return value if isinstance(value, str) else rng.choice(value)


def _choose(rng: random.Random, tenant: str, criterion: str, kinds: list[str]) -> str | None:
    """A behaviour for one criterion: about half the time one the tenant counts as met, else another or none."""
    met = sorted(MET[tenant][criterion])
    r = rng.random()
    if r < 0.5:
        return rng.choice(met)
    if r < 0.8:
        return rng.choice([k for k in kinds if k not in met])
    return None


def conversation(rng: random.Random, tenant: str, tables: Tables = BASE) -> tuple[list[dict], dict]:
    """Turns and {criterion: (behaviour kind, sentence)}."""
    a, b = rng.choice(AGENTS), BRAND[tenant]
    opening, concrete, vague, step, when = rng.choice(tables.scenarios[tenant])
    concrete, vague = _pick(rng, concrete), _pick(rng, vague)
    p = rng.choice(PRODUCTS)
    fill = {"p": p}
    opening, concrete, vague, step = (s.format(**fill) for s in (opening, concrete, vague, step))
    beh: dict = {}
    g = rng.random()
    beh["greeting"] = ("name", rng.choice(tables.greet).format(a=a, b=b)) if g < 0.55 else (
        ("noname", rng.choice(tables.greet_noname).format(b=b)) if g < 0.8 else (None, ""))
    v = _choose(rng, tenant, "verification", VERIFY_KINDS)
    beh["verification"] = (v, rng.choice(tables.verify[v])) if v else (None, "")
    e = _choose(rng, tenant, "empathy", list(EMPATHY))
    beh["empathy"] = (e, rng.choice(tables.empathy[e])) if e else (None, "")
    r = rng.random()
    beh["resolution"] = ("concrete", concrete) if r < 0.6 else ("vague", vague)
    u = _choose(rng, tenant, "upsell", UPSELL_KINDS)
    prices = [5, 9, 12, 15, 19, 25, 29, 35]
    beh["upsell"] = (u, _pick(rng, tables.upsell[u]).format(x=rng.choice(prices))) if u else (None, "")
    c = _choose(rng, tenant, "closing", ["anything_else", "recap", "reference", "goodbye"])
    ref = f"{b[:2].upper()}-{rng.randint(100000, 999999)}"
    beh["closing"] = (c, rng.choice(tables.closing[c]).format(step=step, when=when, ref=ref)) if c else (None, "")

    cust = rng.choice(CUSTOMERS)
    turns = [{"speaker": "customer", "text": opening + rng.choice(["", " Can you help?", " This is the second time."])}]
    first = [s for s in (beh["greeting"][1],) if s]
    order = rng.random() < 0.5  # empathy before or after verification
    if order and beh["empathy"][1]:
        first.append(beh["empathy"][1])
    if beh["verification"][1]:
        first.append(beh["verification"][1])
        turns.append({"speaker": "agent", "text": " ".join(first)})
        turns.append({"speaker": "customer", "text": VERIFY_REPLY[v].format(
            n=rng.randint(10000, 99999), c=cust, d=f"{rng.randint(1, 28)} May {rng.randint(1950, 2002)}",
            p=rng.randint(100000, 999999), r="".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(6)),
            s=cust.split()[1], q=rng.randint(1000, 9999), e=f"{cust.split()[0].lower()}@example.com")})
        first = [rng.choice(tables.confirm)]
    if not order and beh["empathy"][1]:
        first.append(beh["empathy"][1])
    first.append(beh["resolution"][1])
    upsell_late = rng.random() < 0.5
    if beh["upsell"][1] and not upsell_late:
        first.append(beh["upsell"][1])
    turns.append({"speaker": "agent", "text": " ".join(first)})
    turns.append({"speaker": "customer", "text": rng.choice(FILLER_CUSTOMER)})
    last = []
    if beh["upsell"][1] and upsell_late:
        last.append(beh["upsell"][1])
    if beh["closing"][1]:
        last.append(beh["closing"][1])
    if last:
        turns.append({"speaker": "agent", "text": " ".join(last)})
    return turns, beh


def labels(tenant: str, beh: dict) -> list[dict]:
    out = []
    for crit in ("greeting", "verification", "empathy", "resolution", "upsell", "closing"):
        kind, sentence = beh[crit]
        if crit == "greeting":
            met = kind == "name"
        elif crit == "resolution":
            met = kind == "concrete"
        else:
            met = kind in MET[tenant][crit]
        out.append({"id": crit, "verdict": "met" if met else "not_met", "evidence": sentence if met else ""})
    return out


def generate(n: int, seed: int, tables: Tables = BASE, prefix: str = "tr") -> list[dict]:
    rng = random.Random(seed)
    tenants = list(BRAND)
    records = []
    for i in range(n):
        tenant = tenants[i % len(tenants)]
        turns, beh = conversation(rng, tenant, tables)
        conv = f"{prefix}-c{i:04d}"
        records.append({"id": f"{prefix}-{i:04d}-{tenant}", "conversation": conv, "tenant": tenant,
                        "source": "template", "turns": turns, "labels": labels(tenant, beh)})
        if rng.random() < 0.35:
            other = rng.choice([t for t in tenants if t != tenant])
            records.append({"id": f"{prefix}-{i:04d}-{other}", "conversation": conv, "tenant": other,
                            "source": "template", "turns": turns, "labels": labels(other, beh)})
    return records


# Each training split: (conversations, seed, its tables, record id prefix); main's defaults and a test's reproduction.
RECIPES = {
    "train": (300, 13, lambda: BASE, "tr"),
    "train_wide": (400, 17, wide_tables, "trw"),
    "train_steps": (300, 19, steps_tables, "trs"),
}


def render(split: str, n: int | None = None, seed: int | None = None) -> str:
    """The JSONL text of one split of RECIPES (its default n and seed unless given): what main writes to the file."""
    default_n, default_seed, tables, prefix = RECIPES[split]
    records = generate(n or default_n, seed or default_seed, tables(), prefix=prefix)
    return "".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tables = parser.add_mutually_exclusive_group()
    tables.add_argument("--wide", action="store_true", help="phrasings_wide.py's tables, into train_wide.jsonl")
    tables.add_argument("--steps", action="store_true", help="phrasings_steps.py's scenarios, into train_steps.jsonl")
    parser.add_argument("--n", type=int, help="conversations (default 300; 400 with --wide)")
    parser.add_argument("--seed", type=int, help="default 13; 17 with --wide, 19 with --steps")
    args = parser.parse_args()
    split = "train_steps" if args.steps else "train_wide" if args.wide else "train"
    text, out = render(split, args.n, args.seed), HERE / f"{split}.jsonl"
    out.write_text(text)
    records = text.count("\n")
    print(f"wrote {records} records ({args.n or RECIPES[split][0]} conversations) to {out}")


if __name__ == "__main__":
    main()
