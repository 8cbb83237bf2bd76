"""Per-request latency and tokens/s of the base model against base + LoRA adapter (merged), transformers engine, CPU.

Usage: python benchmarks/adapter_latency.py [--adapter adapters/summarize] [--task summarize] [--requests 8]
       [--max-tokens 48] [--threads 1] [--out results/adapter_latency.json]

Concurrency 1: one request at a time, the serving composer's prompt for the first N TweetSumm valid dialogues (reply:
the conversation before the second agent turn, as the held-out figure), greedy.
Base and adapter requests alternate (base, adapter, adapter, base, ...) so that load from other jobs on a shared
machine falls on both alike. The adapter is merged into the weights at load time, so the same number of
multiply-adds runs per token; what can differ is the output length (the adapter writes shorter summaries), so the
script prints p50/p95 request latency, time per output token and tokens/s for each, and the ratio of the p50s.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _bench import MODEL_DIR, machine, print_provenance, quantiles_ms, sha256, write_result

VALID = REPO.parent / "shared" / "data" / "tweetsumm" / "valid.jsonl"


def requests(task: str, n: int, max_tokens: int):
    from serving.engines import GenerationRequest, SamplingParams
    from serving.vocabulary.catalog import Task
    from serving.tasks.prompts import compose
    from serving.training.data import read_jsonl, tenant_instruction, turns_of

    t = Task(task)
    return [GenerationRequest(messages=compose(t, tenant_instruction(t, i), _conversation(t, d)),
                              sampling=SamplingParams(max_tokens=max_tokens)) for i, d in enumerate(read_jsonl(VALID)[:n])]


def _conversation(task, dialog: dict):
    """summarize reads the whole dialogue; reply the turns before the held-out agent turn (the second agent turn, as
    `evaluate.eval_reply` measures it; the first agent turn where there is one only)."""
    from serving.vocabulary.catalog import Task
    from serving.training.evaluate import reply_turns

    turns, agent_at = reply_turns(dialog)
    if task is not Task.REPLY or not agent_at:
        return turns
    return turns[:agent_at[min(1, len(agent_at) - 1)]]


def summary(rows: list[tuple[float, int]]) -> dict:
    seconds = [s for s, _ in rows]
    tokens = sum(t for _, t in rows)
    return {"requests": len(rows), **quantiles_ms(seconds), "tokens_out": tokens,
            "ms_per_token": round(1000 * sum(seconds) / max(tokens, 1), 1),
            "tokens_per_s": round(tokens / sum(seconds), 2), "mean_tokens": round(tokens / len(rows), 1)}


async def measure(adapter: Path, task: str, n: int, max_tokens: int, threads: int) -> dict:
    from serving.engines import create_engine

    engines = {"base": create_engine("transformers", MODEL_DIR, num_threads=threads, max_batch_size=1),
               "base + adapter (merged)": create_engine("transformers", MODEL_DIR, num_threads=threads,
                                                        max_batch_size=1, adapter=adapter)}
    rows: dict[str, list[tuple[float, int]]] = {name: [] for name in engines}
    try:
        for engine in engines.values():
            await engine.warm_up()
        names = list(engines)
        for i, request in enumerate(requests(task, n, max_tokens)):
            for name in names if i % 2 == 0 else names[::-1]:
                started = time.perf_counter()
                result = await engines[name].generate(request)
                rows[name].append((time.perf_counter() - started, result.tokens_out))
    finally:
        for engine in engines.values():
            await engine.close()
    return {name: summary(r) for name, r in rows.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", type=Path, default=REPO / "adapters" / "summarize")
    parser.add_argument("--task", choices=["summarize", "reply"], default="summarize")
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "adapter_latency.json")
    args = parser.parse_args(argv)
    weights = args.adapter / "adapter_model.safetensors"
    print_provenance("adapter latency, transformers engine, concurrency 1",
                     {str(VALID): sha256(VALID), str(weights): sha256(weights)}, machine())
    print(f"Measured on a shared 2-core CPU while other jobs run ({args.threads} thread): compare the two rows with "
          "each other, not with other runs.")
    rows = asyncio.run(measure(args.adapter, args.task, args.requests, args.max_tokens, args.threads))
    for name, r in rows.items():
        print(f"{name:26s} p50 {r['p50_ms']:8.0f} ms  p95 {r['p95_ms']:8.0f} ms  {r['ms_per_token']:6.1f} ms/token  "
              f"{r['tokens_per_s']:6.2f} tokens/s  ({r['requests']} requests, {r['mean_tokens']} tokens each)")
    base, tuned = rows["base"], rows["base + adapter (merged)"]
    ratio = tuned["p50_ms"] / base["p50_ms"]
    per_token = tuned["ms_per_token"] / base["ms_per_token"]
    print(f"adapter / base: p50 latency x{ratio:.2f}, time per output token x{per_token:.2f} "
          f"(target: p50 within 10 % of the base's)")
    write_result(args.out, {"task": args.task, "adapter": str(args.adapter), "max_tokens": args.max_tokens,
                            "rows": rows, "p50_ratio": round(ratio, 3), "per_token_ratio": round(per_token, 3)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
