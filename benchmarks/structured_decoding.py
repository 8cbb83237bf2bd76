"""score-quality with constrained decoding on the transformers engine (CPU): seconds per request and the verdicts.

Runs the task service's scoring path in-process (no Ray, no redaction: the ABCD sample is public and synthetic) on
the three ABCD sample conversations and two hand-written ones with known verdicts, for both sample tenants' rubrics.
Prints one line per request (latency, tokens, verdicts) and, for the hand-written ones, how many verdicts match.

    .venv/bin/python benchmarks/structured_decoding.py [--threads 2] [--tenant shopright]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import time
from pathlib import Path

import yaml

from serving.engines import create_engine
from serving.models import DEFAULT_MODEL, ModelStore, default_cache_dir
from serving.pipeline.steps import score_turns
from serving.profiles import approximate_counter, compile_profile, parse_document
from serving.replica.local_backend import LocalBackend
from serving.replica.runner import TaskRunner
from serving.vocabulary.conversation import Speaker, Turn, parse_transcript

ROOT = Path(__file__).resolve().parents[1]
ABCD = ROOT.parent / "shared" / "data" / "abcd" / "abcd_sample.json"

# Hand-written conversations with the verdicts a careful reader gives (for the shopright rubric).
LABELLED = {
    "shopright-good": (
        "Agent: Hi, this is Sam from ShopRight, how can I help?\n"
        "Customer: My order <ORDER_NUMBER_1> arrived broken.\n"
        "Agent: Sorry about that. Can you confirm the order number?\n"
        "Customer: It is <ORDER_NUMBER_1>. The lamp is cracked.\n"
        "Agent: I will send a replacement today. Would you like to add our two-year warranty?",
        {"greeting": "met", "verify-order": "met", "resolution": "met", "upsell": "met"},
    ),
    "shopright-poor": (
        "Customer: My lamp arrived broken.\n"
        "Agent: ok\n"
        "Customer: Can you help me?\n"
        "Agent: Not my department, call someone else.",
        {"greeting": "not_met", "verify-order": "not_met", "resolution": "not_met", "upsell": "not_applicable"},
    ),
}


def abcd_conversations() -> dict[str, list[Turn]]:
    dialogues = json.loads(ABCD.read_text())
    speakers = {"agent": Speaker.AGENT, "customer": Speaker.CUSTOMER}
    return {f"abcd-{d['convo_id']}": [Turn(speaker=speakers.get(s, Speaker.SYSTEM), text=t) for s, t in d["original"]
                                      if s in speakers and t.strip()] for d in dialogues}


def profile(tenant: str):
    doc = yaml.safe_load((ROOT / "manifests" / "samples" / f"{tenant}.yaml").read_text())
    return compile_profile(tenant, parse_document(doc).spec, approximate_counter)


async def main(args: argparse.Namespace) -> None:
    engine = create_engine("transformers", ModelStore(default_cache_dir()).prepare(DEFAULT_MODEL, progress=False),
                           num_threads=args.threads)
    backend = LocalBackend(TaskRunner(), engine)
    await engine.warm_up()
    print(f"abcd sample sha256 {hashlib.sha256(ABCD.read_bytes()).hexdigest()[:16]}")
    cases = [(name, turns, None) for name, turns in abcd_conversations().items()]
    cases += [(name, parse_transcript(text), expected) for name, (text, expected) in LABELLED.items()]
    latencies, right, total = [], 0, 0
    for tenant in args.tenant:
        for name, turns, expected in cases:
            if expected is not None and tenant != "shopright":
                continue
            started = time.perf_counter()
            response = await score_turns(profile(tenant), turns, 0, backend)
            latencies.append(time.perf_counter() - started)
            verdicts = {c.criterion: c.verdict for c in response.criteria}
            quoted = sum(bool(c.evidence) for c in response.criteria)
            print(f"{tenant:9} {name:15} {len(turns):3} turns {latencies[-1]:5.1f} s  in {response.usage.tokens_in:4} "
                  f"out {response.usage.tokens_out:3}  overall {response.overall}  quoted {quoted}/{len(verdicts)}  "
                  f"{verdicts}")
            if expected:
                right += sum(verdicts[k] == v for k, v in expected.items())
                total += len(expected)
    print(f"latency: median {statistics.median(latencies):.1f} s, max {max(latencies):.1f} s over {len(latencies)} "
          f"requests; labelled verdicts right: {right}/{total}")
    await engine.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tenant", action="append", choices=["shopright", "northbank"])
    parsed = parser.parse_args()
    parsed.tenant = parsed.tenant or ["shopright", "northbank"]
    asyncio.run(main(parsed))
