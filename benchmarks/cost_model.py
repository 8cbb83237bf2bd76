"""Cost per million conversations: the platform on a rented node at measured throughput vs a hosted model per token.

    python benchmarks/cost_model.py [--throughput results/throughput.json] [--prompts results/prompt_economy.json]
        [--adherence results/adherence.json] [--cpu-node-price 0.11592] [--gpu-throughput FILE] [--out results/cost_model.json]

A conversation is the typical mix: one redact + one classify-intent + one summarize + one score-quality request.

Self-hosted: the node runs the whole platform, so a conversation costs the node-seconds its four requests take at
the node's measured capacity: sum over the tasks of 1 / (best successful requests/s over the concurrency levels
measured: answers with status 200 only, so neither a 429 from the tenant's rate limit nor a failed score-quality
counts as served). Cost per million = 1e6 x node-seconds / 3600 x price per node-hour. The four tasks are measured
one after the other, so adding their node-seconds assumes they do not overlap on the node (conservative: on a
2-core node they compete for the same cores anyway). Where the throughput run has no score-quality level (quick mode), its capacity comes from the
adherence run (score-quality with a real rubric, requests/s over that batch), and the table says so. A GPU row is
priced only from a GPU throughput file (`--gpu-throughput`, e.g. the suite run with `--engine vllm` on a GPU node);
nothing here is extrapolated from the CPU run.

Hosted large model: the same four requests, each with the instruction-heavy generic prompt from the prompt-economy
benchmark (all tenant knowledge + the typical input), priced per token. Output tokens per request: redact rewrites
the input (its input tokens); classify-intent writes `{"label": <name>}`; summarize and score-quality write what our
model wrote per successful request in this run (mean tokens_out), or the platform's default max_tokens where none
succeeded. Token counts use SmolLM2's tokenizer for both sides (the hosted model's own tokenizer counts somewhat
differently); a second hosted figure applies the provider's cached-input price to the generic system prompt, which
is the same on every request. For reference, a third hosted figure feeds the hosted model Switchboard's compiled
prompts instead (for redact and classify-intent: the compiled instruction + the input), which shows how much of the
difference is prompt size rather than model size.

Every price is a parameter with the date it was read; nothing else is assumed. The default prices were not
re-checked from this machine (it has no internet access): check the cited pages before quoting a cost.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import RESULTS, machine, write_result  # noqa: E402

# --- price parameters (dated; override on the command line) ---------------------------------------------------------
# AWS EC2 on-demand, Linux, us-east-1, https://aws.amazon.com/ec2/pricing/on-demand/ (list prices as of 2025-01):
CPU_NODE = {"name": "AWS m7a.large (2 vCPU AMD EPYC, 8 GiB), on-demand us-east-1", "usd_per_hour": 0.11592,
            "as_of": "2025-01", "source": "https://aws.amazon.com/ec2/pricing/on-demand/"}
GPU_NODE = {"name": "AWS g6.xlarge (1x NVIDIA L4 24 GB, 4 vCPU, 16 GiB), on-demand us-east-1", "usd_per_hour": 0.8048,
            "as_of": "2025-01", "source": "https://aws.amazon.com/ec2/pricing/on-demand/"}
# OpenAI API pricing, https://openai.com/api/pricing/ (gpt-4o, list price as of 2025-01):
HOSTED = {"name": "OpenAI gpt-4o (2024-08-06)", "usd_per_m_input": 2.50, "usd_per_m_cached_input": 1.25,
          "usd_per_m_output": 10.00, "as_of": "2025-01", "source": "https://openai.com/api/pricing/"}
# -----------------------------------------------------------------------------------------------------------------------

MIX = ("redact", "classify-intent", "summarize", "score-quality")
DEFAULT_MAX_TOKENS = {"summarize": 160, "score-quality": 256}  # serving/pipeline/steps.py DEFAULT_MAX_TOKENS


def capacities(throughput: dict, adherence: dict | None) -> dict[str, dict]:
    out = {}
    for task in MIX:
        levels = throughput.get("tasks", {}).get(task)
        if levels:
            best = max(levels, key=lambda r: r.get("ok_rps", r["rps"]))
            ok = [r for r in levels if r.get("statuses", {}).get("200", r.get("statuses", {}).get(200, 0))]
            out[task] = {"rps": best.get("ok_rps", best["rps"]), "at_concurrency": best["concurrency"], "source": "throughput",
                         "failed_share": best.get("failed_share"), "tokens_out_mean": _tokens_out_mean(levels),
                         "any_success": bool(ok)}
        elif task == "score-quality" and adherence and adherence.get("seconds"):
            answered = [i for i in adherence["items"] if i.get("status") == 200]
            out[task] = {"rps": round(len(answered) / adherence["seconds"], 4), "source": "adherence",
                         "at_concurrency": adherence.get("concurrency"), "failed_share": adherence["failed_share"],
                         "tokens_out_mean": (sum(i["tokens_out"] for i in answered) / len(answered)) if answered else None,
                         "any_success": bool(answered)}
    return out


def _tokens_out_mean(levels: list[dict]) -> float | None:
    ok = sum(r.get("statuses", {}).get("200", r.get("statuses", {}).get(200, 0)) for r in levels)
    tokens = sum(r["tokens_out_per_s"] * r["seconds"] for r in levels if r.get("seconds"))
    return round(tokens / ok, 1) if ok and tokens else None


def self_hosted(caps: dict, node: dict) -> dict:
    missing = [t for t in MIX if t not in caps or not caps[t]["rps"]]
    if missing:
        return {"node": node, "missing": missing}
    seconds = sum(1 / caps[t]["rps"] for t in MIX)
    return {"node": node, "node_seconds_per_conversation": round(seconds, 3),
            "usd_per_million_conversations": round(1e6 * seconds / 3600 * node["usd_per_hour"], 0),
            "conversations_per_node_hour": round(3600 / seconds, 1)}


def hosted(prompts: dict, caps: dict, price: dict) -> dict:
    rows, system = {}, prompts["generic_system_tokens"]
    for task in MIX:
        p = prompts["tasks"][task]
        if task == "redact":
            out = p["typical_input_tokens"]
        elif task == "classify-intent":
            out = prompts.get("label_answer_tokens", 10)
        else:
            measured = caps.get(task, {}).get("tokens_out_mean")
            out = measured if measured else DEFAULT_MAX_TOKENS[task]
        rows[task] = {"input_tokens": p["generic_prompt_tokens"], "output_tokens": out}
    tokens_in = sum(r["input_tokens"] for r in rows.values())
    tokens_out = sum(r["output_tokens"] for r in rows.values())
    usd = (tokens_in * price["usd_per_m_input"] + tokens_out * price["usd_per_m_output"]) / 1e6
    cached = len(MIX) * system
    usd_cached = usd - cached * (price["usd_per_m_input"] - price["usd_per_m_cached_input"]) / 1e6
    # a hosted model cannot classify or redact without being told how: the compiled instruction goes with the input
    compiled_in = sum(r["compiled_prompt_tokens"] if r["model_reads_instruction"]
                      else r["compiled_instruction_tokens"] + r["typical_input_tokens"]
                      for t, r in prompts["tasks"].items() if t in MIX)
    usd_compiled = (compiled_in * price["usd_per_m_input"] + tokens_out * price["usd_per_m_output"]) / 1e6
    return {"price": price, "per_task": rows, "input_tokens_per_conversation": tokens_in,
            "output_tokens_per_conversation": tokens_out, "usd_per_million_conversations": round(usd * 1e6, 0),
            "usd_per_million_conversations_cached_prompt": round(usd_cached * 1e6, 0),
            # for reference: the same hosted model fed Switchboard's compiled prompts (how much is prompt economy)
            "compiled_input_tokens_per_conversation": compiled_in,
            "usd_per_million_conversations_compiled_prompts": round(usd_compiled * 1e6, 0)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--throughput", type=Path, default=RESULTS / "throughput.json")
    parser.add_argument("--prompts", type=Path, default=RESULTS / "prompt_economy.json")
    parser.add_argument("--adherence", type=Path, default=RESULTS / "adherence.json")
    parser.add_argument("--gpu-throughput", type=Path, default=None, help="throughput JSON measured on a GPU node")
    parser.add_argument("--cpu-node-price", type=float, default=CPU_NODE["usd_per_hour"], help="USD per node-hour")
    parser.add_argument("--gpu-node-price", type=float, default=GPU_NODE["usd_per_hour"], help="USD per node-hour")
    parser.add_argument("--hosted-input-price", type=float, default=HOSTED["usd_per_m_input"], help="USD per 1M tokens")
    parser.add_argument("--hosted-cached-input-price", type=float, default=HOSTED["usd_per_m_cached_input"])
    parser.add_argument("--hosted-output-price", type=float, default=HOSTED["usd_per_m_output"], help="USD per 1M tokens")
    parser.add_argument("--out", type=Path, default=RESULTS / "cost_model.json")
    args = parser.parse_args(argv)
    throughput = json.loads(args.throughput.read_text())
    prompts = json.loads(args.prompts.read_text())
    adherence = json.loads(args.adherence.read_text()) if args.adherence.is_file() else None
    caps = capacities(throughput, adherence)
    cpu = {**CPU_NODE, "usd_per_hour": args.cpu_node_price}
    gpu = {**GPU_NODE, "usd_per_hour": args.gpu_node_price}
    price = {**HOSTED, "usd_per_m_input": args.hosted_input_price, "usd_per_m_cached_input": args.hosted_cached_input_price,
             "usd_per_m_output": args.hosted_output_price}
    rows = {"self-hosted, CPU node": self_hosted(caps, cpu)}
    if args.gpu_throughput:
        gpu_caps = capacities(json.loads(args.gpu_throughput.read_text()), None)
        rows["self-hosted, GPU node"] = self_hosted(gpu_caps, gpu)
    else:
        rows["self-hosted, GPU node"] = {"node": gpu, "missing": ["no GPU throughput measured in this run"]}
    host = hosted(prompts, caps, price)
    print(f"capacities (requests/s at the best level, engine {throughput.get('engine')}, "
          f"summarize max_tokens {throughput.get('max_tokens')}):")
    for task, c in caps.items():
        print(f"  {task:16} {c['rps']:>8} req/s (concurrency {c['at_concurrency']}, from {c['source']}, "
              f"failed share {c['failed_share']})")
    print(f"{'option':44} {'USD per 1M conversations':>26}")
    for name, row in rows.items():
        value = row.get("usd_per_million_conversations")
        print(f"{name + ' (' + row['node']['name'].split(' (')[0] + ')':44} "
              f"{value if value is not None else 'not measured':>26}")
    print(f"{'hosted ' + price['name']:44} {host['usd_per_million_conversations']:>26}")
    print(f"{'  the same with its cached-input price':44} {host['usd_per_million_conversations_cached_prompt']:>26}")
    print(f"{'  the same with the compiled prompts':44} {host['usd_per_million_conversations_compiled_prompts']:>26}")
    write_result(args.out, {"benchmark": "cost_model", "machine": machine(), "mix": list(MIX), "capacities": caps,
                            "engine": throughput.get("engine"), "summarize_max_tokens": throughput.get("max_tokens"),
                            "self_hosted": rows, "hosted": host,
                            "inputs": {"throughput": str(args.throughput), "prompts": str(args.prompts),
                                       "adherence": str(args.adherence) if adherence else None}})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
