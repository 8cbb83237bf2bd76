"""summarize and reply on TweetSumm valid: base + LoRA adapter against the untuned base model and lead-2, in one run.

Usage: python benchmarks/summarize_tweetsumm.py [--task summarize|reply] [--adapter adapters/summarize]
       [--limit N] [--threads 1] [--out results/summarize.json]

ROUGE-L is rouge-score's F-measure with stemming, averaged over each dialogue's references (summarize) or against
the real next agent turn (reply: the second agent turn of each valid dialogue). Prompts are the serving composer's,
decoding is greedy (summaries up to 80 new tokens, replies up to 64). Also prints mean words per summary against the
references' mean; for reply, the perplexity of the real agent turns (every agent turn after the first turn of the
evaluated dialogues) and the canned-template and echo-the-previous-agent-turn baselines.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _bench import MODEL_DIR, machine, print_provenance, sha256, write_result

from serving.training import evaluate

VALID = REPO.parent / "shared" / "data" / "tweetsumm" / "valid.jsonl"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["summarize", "reply"], default="summarize")
    parser.add_argument("--adapter", type=Path)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    adapter = args.adapter or REPO / "adapters" / args.task
    print_provenance(f"{args.task} on TweetSumm valid", {str(VALID): sha256(VALID)}, machine())
    run = evaluate.eval_summarize if args.task == "summarize" else evaluate.eval_reply
    rows = {}
    for name, folder in (("base (untuned SmolLM2-135M-Instruct)", None), ("base + LoRA adapter", adapter)):
        model, tokenizer = evaluate.load(MODEL_DIR, folder, args.threads)
        rows[name] = run(VALID, model, tokenizer, limit=args.limit, progress=False)
        print(f"{name:40s} {rows[name]}")
    if args.task == "summarize":
        print(f"{'lead-2 (first customer + first agent turn)':40s} rougeL {rows[name]['lead2_rougeL']}")
    else:  # the sceptic's baselines on the same turns (no model: the same figure in both rows)
        print(f"{'canned polite template':40s} rougeL {rows[name]['canned_rougeL']}")
        print(f"{'echo the previous agent turn':40s} rougeL {rows[name]['echo_rougeL']}")
    write_result(args.out or REPO / "results" / f"{args.task}.json", {"task": args.task, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
