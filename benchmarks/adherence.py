"""Adherence scoring: score-quality through the running API on a small labelled set built from ABCD, per criterion.

    python benchmarks/adherence.py --url http://127.0.0.1:8100 --profiles-dir DIR [--limit N] [--out results/adherence.json]

DIR is the profiles folder the running platform watches (SWITCHBOARD_PROFILES_DIR); the benchmark writes its own
tenant `abcd-bench` there (a fresh random key, stored as its SHA-256), waits until the platform has loaded it, and
removes it at the end. `benchmarks/suite.py` starts the platform on a temporary copy of manifests/samples.

The set (small: say so wherever a number from it is quoted). ABCD (Chen et al., 2021, asappresearch/abcd) ships
here as three full conversations (`abcd_sample.json`), each with the agent's logged actions, plus the agent
guidelines (`guidelines.json`) and the actions each subflow requires (`kb.json`). Five criteria are taken from the
guidelines; each has a deterministic label rule over the conversation:

| criterion | guideline it comes from | label `met` when |
|---|---|---|
| pull-up-account | "All chats in this flow start by asking the customer for their full name or Account ID using [Pull up Account]" | the conversation logs a `pull-up-account` action |
| validate-purchase | "confirm that their purchase is valid with [Validate Purchase]: username, email address, order ID" | it logs `validate-purchase` |
| search-faq | FAQ flows: look the answer up with [Search FAQ] before answering | it logs `search-faq` |
| escalate-to-manager | "Enter 'manager' into [Notify Internal Team]; explain that you have escalated the issue to the manager" | it logs `notify-team` |
| offer-more-help | "Remember to always end the conversations by asking if they need anything else" | an agent turn matches `anything else` |

Labels for the first four come from the action log (delexed targets, aligned turn by turn); what the model sees is
the customer and agent turns only (the action log is the agent's tool clicks, not part of a transcript). Criteria
whose action the subflow does not require are still labelled by the same rule (not performed = negative).

Ablations (the deterministic way to get negatives out of three conversations): for each conversation and each
criterion it meets, one variant without the behaviour: the criterion's action turns are removed, and so are the
agent turns matching the criterion's cue (regular expressions in CUES) and the customer turns that carry the
action's slot values (for example the order ID given for validate-purchase). Every criterion of a variant is then
labelled again by the same rules. 3 conversations + 7 ablations = 10 conversations x 5 criteria = 50 labels.

Scoring: a request is sent per conversation (tenant rubric = the five criteria, default max_tokens); a criterion is
predicted positive when the verdict is `met` (`not_met` and `not_applicable` are negative). Per criterion: precision,
recall, F1 over the conversations whose request succeeded, and the share of requests that failed (non-200; the
platform answers 502 `task_failed` when the model's output is not valid rubric JSON after its retry). Next to each
F1, the F1 of the trivial scorer that answers `met` every time (on the same scored conversations): a model that does
not beat it has learned nothing from the conversation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import sys
import time
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import DATA, RESULTS, ROOT, local_url, machine, print_provenance, sha256, write_result  # noqa: E402

TENANT = "abcd-bench"
CRITERIA = {
    "pull-up-account": "The agent starts by asking for the customer's full name or account ID to pull up the account.",
    "validate-purchase": "The agent asks for the username, email address and order ID to validate the purchase.",
    "search-faq": "The agent looks the answer up in the FAQ (says they will check) before answering a policy question.",
    "escalate-to-manager": "When the customer is not satisfied, the agent escalates to the manager and says so.",
    "offer-more-help": "Before ending, the agent asks whether the customer needs anything else.",
}
ACTIONS = {"pull-up-account": "pull-up-account", "validate-purchase": "validate-purchase", "search-faq": "search-faq",
           "escalate-to-manager": "notify-team"}
CUES = {
    "pull-up-account": r"\bname\b|account id",
    "validate-purchase": r"order id|username|e-?mail",
    "search-faq": r"let me check|one moment|look (it|that) up",
    "escalate-to-manager": r"manager|escalat",
    "offer-more-help": r"anything else",
}


def turns_of(conversation: dict) -> list[dict]:
    """Turns with speaker, text and (for actions) the action name and slot values from the aligned delexed record."""
    out = []
    for (speaker, text), delexed in zip(conversation["original"], conversation["delexed"], strict=True):
        turn = {"speaker": speaker, "text": text}
        if speaker == "action":
            targets = delexed["targets"]
            turn["action"], turn["slots"] = targets[2], [str(v) for v in targets[3]]
        out.append(turn)
    return out


def labels(turns: list[dict]) -> dict[str, bool]:
    actions = {t.get("action") for t in turns if t["speaker"] == "action"}
    out = {c: a in actions for c, a in ACTIONS.items()}
    out["offer-more-help"] = any(t["speaker"] == "agent" and re.search(CUES["offer-more-help"], t["text"], re.I)
                                 for t in turns)
    return out


def ablate(turns: list[dict], criterion: str) -> list[dict]:
    """The conversation without the behaviour: its action turns, the agent's cue turns, the customer's slot answers."""
    action = ACTIONS.get(criterion)
    slots = [s.lower() for t in turns if action and t.get("action") == action for s in t["slots"] if s]
    cue = re.compile(CUES[criterion], re.I)

    def keep(t: dict) -> bool:
        if t["speaker"] == "action":
            return t.get("action") != action
        if t["speaker"] == "agent":
            return not cue.search(t["text"])
        return not any(s in t["text"].lower() for s in slots)

    return [t for t in turns if keep(t)]


def build_set(path: Path) -> list[dict]:
    """The three conversations first, then their ablations (so `--limit 3` scores the unmodified ones)."""
    items, variants = [], []
    for conversation in json.loads(path.read_text()):
        turns = turns_of(conversation)
        base = labels(turns)
        cid = f"{conversation['convo_id']}-{conversation['scenario']['subflow']}"
        items.append({"id": cid, "ablated": None, "turns": turns, "labels": base})
        for criterion in CRITERIA:
            if base[criterion]:
                variant = ablate(turns, criterion)
                variants.append({"id": f"{cid}-without-{criterion}", "ablated": criterion, "turns": variant,
                                 "labels": labels(variant)})
    return items + variants


def profile_document(key: str) -> dict:
    from serving.profiles.model import hash_api_key

    return {"apiVersion": "switchboard.dev/v1alpha1", "kind": "TenantProfile", "metadata": {"name": TENANT},
            "spec": {"tenantId": TENANT, "displayName": "ABCD adherence benchmark",
                     "apiKey": {"sha256": hash_api_key(key)}, "tasks": ["redact", "score-quality"],
                     "instructions": {"score-quality": "Judge only what the agent said; quote the agent's words as evidence."},
                     "rubric": [{"id": c, "description": d, "weight": 1} for c, d in CRITERIA.items()],
                     "limits": {"requestsPerSecond": 50, "concurrentRequests": 32, "tokensPerMinute": 1000000}}}


async def wait_for_tenant(client: httpx.AsyncClient, key: str, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = await client.get(f"/v1/tenants/{TENANT}", headers={"Authorization": f"Bearer {key}"})
        if r.status_code == 200:
            return r.json()
        await asyncio.sleep(0.5)
    raise RuntimeError(f"the platform did not load tenant {TENANT} within {timeout_s:.0f} s (last: {r.status_code} {r.text[:200]})")


async def score_all(client: httpx.AsyncClient, key: str, items: list[dict], concurrency: int) -> None:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(item: dict) -> None:
        body = {"turns": [{"speaker": t["speaker"], "text": t["text"]} for t in item["turns"]
                          if t["speaker"] in ("agent", "customer")]}
        async with semaphore:
            started = time.perf_counter()
            r = await client.post("/v1/tasks/score-quality", json=body, headers={"Authorization": f"Bearer {key}"})
            item["latency_s"] = round(time.perf_counter() - started, 2)
        item["status"] = r.status_code
        data = r.json() if r.headers.get("content-type", "").startswith("application/json") else {"raw": r.text}
        if r.status_code == 200:
            item["verdicts"] = {c["criterion"]: c["verdict"] for c in data["criteria"]}
            item["attempts"], item["tokens_out"] = data["attempts"], data["usage"]["tokens_out"]
        else:
            item["error"] = data.get("error", data)
        print(f"  {item['id']:48} {r.status_code} {item['latency_s']:6.1f} s  {item.get('verdicts') or item['error']}",
              flush=True)

    await asyncio.gather(*(one(item) for item in items))


def per_criterion(items: list[dict]) -> dict:
    answered = [i for i in items if i.get("status") == 200]
    out = {}
    for c in CRITERIA:
        tp = sum(i["labels"][c] and i["verdicts"].get(c) == "met" for i in answered)
        fp = sum(not i["labels"][c] and i["verdicts"].get(c) == "met" for i in answered)
        fn = sum(i["labels"][c] and i["verdicts"].get(c) != "met" for i in answered)
        p = tp / (tp + fp) if tp + fp else None
        r = tp / (tp + fn) if tp + fn else None
        f1 = 2 * p * r / (p + r) if p and r else (0.0 if p is not None and r is not None else None)
        positives = sum(i["labels"][c] for i in answered)
        base_p = positives / len(answered) if answered else None
        out[c] = {"precision": p, "recall": r, "f1": f1, "tp": tp, "fp": fp, "fn": fn, "scored": len(answered),
                  "positives_in_set": sum(i["labels"][c] for i in items),
                  "predicted_met": sum(i["verdicts"].get(c) == "met" for i in answered),
                  # the trivial scorer that answers `met` every time, on the same scored conversations
                  "always_met_f1": (2 * base_p / (base_p + 1)) if base_p else (0.0 if answered else None)}
    return out


async def main_async(args: argparse.Namespace, items: list[dict]) -> dict:
    key = "sb-bench-" + secrets.token_hex(12)
    path = args.profiles_dir / f"{TENANT}.yaml"
    path.write_text("# Written by benchmarks/adherence.py for one run; removed when it ends.\n"
                    + yaml.safe_dump(profile_document(key), sort_keys=False), encoding="utf-8")
    try:
        async with httpx.AsyncClient(base_url=args.url, timeout=args.timeout) as client:
            (await client.get("/readyz")).raise_for_status()
            tenant = await wait_for_tenant(client, key)
            started = time.perf_counter()
            await score_all(client, key, items, args.concurrency)
            return {"tenant_status": tenant, "seconds": round(time.perf_counter() - started, 1)}
    finally:
        path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--profiles-dir", type=Path, required=True, help="the folder the running platform watches")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N conversations of the set")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--out", type=Path, default=RESULTS / "adherence.json")
    args = parser.parse_args(argv)
    if not local_url(args.url):
        parser.error("this benchmark only targets the local machine")
    if args.profiles_dir.resolve() == (ROOT / "manifests" / "samples").resolve():
        parser.error("give a copy of the profiles folder, not manifests/samples (the benchmark writes a tenant there)")
    source = DATA / "abcd" / "abcd_sample.json"
    files = {str(p): sha256(p) for p in (source, DATA / "abcd" / "kb.json", DATA / "abcd" / "guidelines.json")}
    info = machine()
    print_provenance("adherence (ABCD, score-quality through the API)", files, info)
    items = build_set(source)
    full_size = len(items)
    items = items[: args.limit] if args.limit else items
    print(f"set: {full_size} conversations ({len(items)} scored), {len(CRITERIA)} criteria, "
          f"{sum(sum(i['labels'].values()) for i in items)} positive labels of {len(items) * len(CRITERIA)}")
    run = asyncio.run(main_async(args, items))
    failed = [i for i in items if i.get("status") != 200]
    statuses: dict[str, int] = {}
    for i in items:
        statuses[str(i.get("status"))] = statuses.get(str(i.get("status")), 0) + 1
    rows = per_criterion(items)
    fmt = lambda v: "  n/a" if v is None else f"{v:5.2f}"  # noqa: E731
    print(f"{'criterion':20} {'P':>5} {'R':>5} {'F1':>5} {'always-met F1':>14}  positives  (over {len(items) - len(failed)} scored)")
    for c, r in rows.items():
        print(f"{c:20} {fmt(r['precision'])} {fmt(r['recall'])} {fmt(r['f1'])} {fmt(r['always_met_f1']):>14}  "
              f"{r['positives_in_set']}")
    print(f"failed requests: {len(failed)}/{len(items)} ({statuses})")
    write_result(args.out, {
        "benchmark": "adherence", "files_sha256": files, "machine": info, "url": args.url, "set_size": full_size,
        "scored": len(items), "concurrency": args.concurrency, "criteria": CRITERIA, "label_rules": {"actions": ACTIONS, "cues": CUES},
        "failed_share": round(len(failed) / max(len(items), 1), 3), "statuses": statuses, "per_criterion": rows,
        "seconds": run["seconds"], "tenant_instruction_tokens": run["tenant_status"].get("instruction_tokens"),
        "items": [{k: v for k, v in i.items() if k != "turns"} | {"turns": len(i["turns"])} for i in items]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
