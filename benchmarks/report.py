"""Renders results/REPORT.md and its PNG plots (report_plots.py) from the JSON the benchmarks wrote (and the suite's
status file).

    python benchmarks/report.py [--results results]

Every number in the report is read from results/*.json of the last run; a benchmark without a result (failed or not
run) is listed as such, never left out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import RESULTS  # noqa: E402
from report_plots import (  # noqa: E402
    plot_adherence,
    plot_cost,
    plot_intent,
    plot_overhead,
    plot_prompts,
    plot_redaction,
    plot_throughput,
)

ORDER = ("prompt_economy", "redaction", "intent", "adherence", "throughput", "throughput_score", "router_overhead",
         "cost_model")
TITLES = {"prompt_economy": "Prompt economy", "redaction": "Redaction (Presidio synthetic set)",
          "intent": "Intent accuracy (BANKING77, northbank)", "adherence": "Adherence scoring (ABCD, score-quality)",
          "throughput": "Throughput and latency per task", "throughput_score": "Throughput of score-quality",
          "router_overhead": "Router overhead", "cost_model": "Cost per million conversations"}


def load(results: Path, name: str) -> dict | None:
    path = results / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def pct(v) -> str:
    return "n/a" if v is None else f"{v * 100:.1f} %"


def num(v, digits: int = 2) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def money(v) -> str:
    return "n/a" if v is None else f"${v:,.0f}"


# --- sections --------------------------------------------------------------------------------------------------------


def sec_prompt_economy(d: dict) -> tuple[list[str], list[list[str]]]:
    lines = [f"Tenant `{d['tenant']}`; tokenizer SmolLM2-135M-Instruct for both sides; the generic system prompt alone is "
             f"{d['generic_system_tokens']} tokens. redact and classify-intent read no prompt (no generative model): "
             "their compiled side is the input alone.", "",
             "| task | typical input | compiled instruction | compiled prompt | generic prompt | ratio |", "|---|---|---|---|---|---|"]
    for task, r in d["tasks"].items():
        lines.append(f"| {task} | {r['typical_input_tokens']} | {r['compiled_instruction_tokens']} | "
                     f"{r['compiled_prompt_tokens']} | {r['generic_prompt_tokens']} | {r['ratio_generic_over_compiled']}x |")
    gen = [t for t, r in d["tasks"].items() if r["model_reads_instruction"]]
    summary = [["prompt tokens, generative tasks (compiled vs generic)",
                ", ".join(f"{t} {d['tasks'][t]['compiled_prompt_tokens']} vs {d['tasks'][t]['generic_prompt_tokens']} "
                          f"({d['tasks'][t]['ratio_generic_over_compiled']}x)" for t in gen), "generic prompt, same input"]]
    return lines, summary


def sec_redaction(d: dict) -> tuple[list[str], list[list[str]]]:
    lines = [f"{d['records']} texts; threshold {d['threshold']}; matching and type mapping in the script's docstring.", "",
             "| system | F2 | precision | recall | F1 | leak rate | texts/s |", "|---|---|---|---|---|---|---|"]
    for name, r in d["runs"].items():
        o = r["overall"]
        lines.append(f"| {name} | {o['f2']:.3f} | {o['precision']:.3f} | {o['recall']:.3f} | {o['f1']:.3f} | "
                     f"{r['leak_rate']:.3f} | {r['texts_per_s']} |")
    lines += ["", "| entity type | ours P / R / F2 | baseline P / R / F2 |", "|---|---|---|"]
    types = sorted(set().union(*(r["per_type"] for r in d["runs"].values())))
    for t in types:
        cells = [d["runs"][n]["per_type"].get(t) for n in ("ours", "baseline")]
        lines.append(f"| {t} | " + " | ".join(f"{c['precision']:.2f} / {c['recall']:.2f} / {c['f2']:.2f}" if c else "-"
                                              for c in cells) + " |")
    ours, base = d["runs"]["ours"], d["runs"]["baseline"]
    summary = [["redaction F2 (P / R), leak rate, texts/s",
                f"{ours['overall']['f2']:.3f} ({ours['overall']['precision']:.3f} / {ours['overall']['recall']:.3f}), "
                f"leak {ours['leak_rate']:.3f}, {ours['texts_per_s']} texts/s",
                f"default Presidio {base['overall']['f2']:.3f} ({base['overall']['precision']:.3f} / "
                f"{base['overall']['recall']:.3f}), leak {base['leak_rate']:.3f}, {base['texts_per_s']} texts/s"]]
    return lines, summary


def sec_intent(d: dict) -> tuple[list[str], list[list[str]]]:
    t = d["timing"]
    lines = [f"{d['n_test']} test utterances, {d['n_train']} training rows"
             + (f" (first {d['train_per_label']} per label)" if d.get("train_per_label") else "") + ".", "",
             "| configuration | accuracy | macro-F1 |", "|---|---|---|"]
    for name, r in d["results"].items():
        lines.append(f"| {name} | {pct(r['accuracy'])} | {pct(r['macro_f1'])} |")
    api = d.get("api")
    if api:
        lines.append(f"| northbank profile as served through the HTTP API ({api['accuracy_n']} utterances; the profile "
                     f"threshold applies: {api.get('none_answers')} `none` answers, counted wrong) | "
                     f"{pct(api.get('accuracy'))} | {pct(api.get('macro_f1'))} |")
    lines += ["", f"Latency per utterance, in process (MiniLM, batch 1): p50 {t['latency_ms_p50']:.1f} ms, p95 "
                  f"{t['latency_ms_p95']:.1f} ms (n={t['latency_n']}); {t['throughput_per_s']:.0f} utterances/s at batch "
                  f"{t['throughput_batch']}."]
    if api:
        lat = api["latency"]
        lines.append(f"Through the HTTP API (auth, redaction of the input, classification), one at a time: p50 "
                     f"{lat['p50_ms']} ms, p95 {lat['p95_ms']} ms, p99 {lat['p99_ms']} ms (n={lat['n']}); "
                     f"{api['throughput_per_s']} utterances/s with {api['concurrency']} in flight.")
    r = d["results"]
    profile = next(v for k, v in r.items() if k.startswith("northbank profile"))
    head = next(v for k, v in r.items() if k.startswith("trained head"))
    svm = next(v for k, v in r.items() if "TF-IDF" in k)
    nn = next(v for k, v in r.items() if "1-NN" in k)
    zero = r.get("zero-shot (descriptions only)", {})
    few = ", ".join(f"k={k} {pct(r.get(f'few-shot k={k} (medoids)', {}).get('accuracy'))}" for k in (1, 3, 5))
    summary = [
        ["intent accuracy (macro-F1), northbank profile, 5 examples/label",
         f"{pct(profile['accuracy'])} ({pct(profile['macro_f1'])}); as served over HTTP "
         f"{pct(api.get('accuracy')) if api else 'n/a'}",
         f"TF-IDF+LinearSVC {pct(svm['accuracy'])}; 1-NN MiniLM {pct(nn['accuracy'])}"],
        ["intent zero-shot / few-shot (medoids) / trained head",
         f"zero-shot {pct(zero.get('accuracy'))}; {few}; head {pct(head['accuracy'])}", ""],
    ]
    if api:
        summary.append(["classify-intent latency over HTTP, one at a time", f"p50 {api['latency']['p50_ms']} ms, "
                        f"p95 {api['latency']['p95_ms']} ms", f"in process p50 {t['latency_ms_p50']:.1f} ms"])
    return lines, summary


def sec_adherence(d: dict) -> tuple[list[str], list[list[str]]]:
    lines = [f"**A small set**: {d['set_size']} conversations built from the three ABCD sample dialogues (3 as they are + "
             f"{d['set_size'] - 3} deterministic ablations), {len(d['criteria'])} criteria; {d['scored']} scored in this "
             "run. Labels come from the conversations' logged agent actions (and one text rule); how, exactly, is in "
             "`benchmarks/adherence.py`'s docstring. A criterion is predicted met when score-quality's verdict is "
             "`met`. Treat every number here as an anecdote, not an estimate.", "",
             f"Requests: {d['scored']}, failed {pct(d['failed_share'])} (statuses {d['statuses']}), {d['seconds']} s in all.",
             "", "| criterion | description | positives / scored | predicted met | precision | recall | F1 | F1 of always `met` |",
             "|---|---|---|---|---|---|---|---|"]
    for c, r in d["per_criterion"].items():
        lines.append(f"| {c} | {d['criteria'][c]} | {r['positives_in_set']} / {d['scored']} | {r.get('predicted_met', 'n/a')} | "
                     f"{num(r['precision'])} | {num(r['recall'])} | {num(r['f1'])} | {num(r.get('always_met_f1'))} |")
    errors = {}
    for item in d["items"]:
        if item.get("status") != 200:
            msg = item.get("error", {})
            msg = msg.get("message", str(msg)) if isinstance(msg, dict) else str(msg)
            errors[msg[:160]] = errors.get(msg[:160], 0) + 1
    if errors:
        lines += ["", "Failures:"] + [f"- {n} x `{m}`" for m, n in errors.items()]
    f1s = [r["f1"] for r in d["per_criterion"].values() if r["f1"] is not None]
    base = [r["always_met_f1"] for r in d["per_criterion"].values() if r.get("always_met_f1") is not None]
    summary = [["adherence (score-quality, ABCD, small set)",
                f"{d['scored']} conversations: {pct(d['failed_share'])} of requests failed; mean F1 over criteria "
                f"{num(sum(f1s) / len(f1s)) if f1s else 'n/a (nothing scored)'}",
                f"answering `met` every time: mean F1 {num(sum(base) / len(base)) if base else 'n/a'}"]]
    return lines, summary


def sec_throughput(d: dict) -> tuple[list[str], list[list[str]]]:
    lines = [f"Engine `{d.get('engine')}`; generative max_tokens {d.get('max_tokens')} (score-quality: "
             f"{d.get('score_max_tokens') or 'the platform default'}); load average before "
             f"{[round(x, 2) for x in d['machine'].get('loadavg_before', [])]}, after "
             f"{[round(x, 2) for x in d['machine'].get('loadavg_after', [])]}.", "",
             "| task | concurrency | requests | answers/s | ok req/s | p50 ms | p95 ms | p99 ms | tokens out/s | statuses |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    summary = []
    for task, levels in d["tasks"].items():
        for r in levels:
            lines.append(f"| {task} | {r['concurrency']} | {r['requests']} | {r['rps']} | {r.get('ok_rps', 'n/a')} | "
                         f"{r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['tokens_out_per_s']} | {r['statuses']} |")
        first, last = levels[0], levels[-1]
        summary.append([f"{task} through the platform, concurrency {first['concurrency']} / {last['concurrency']}",
                        f"{first.get('ok_rps', first['rps'])} req/s (p50 {first['p50_ms']:.0f} ms) / "
                        f"{last.get('ok_rps', last['rps'])} req/s (p95 {last['p95_ms']:.0f} ms)" + _not_ok(last), ""])
    if any("429" in r["statuses"] for levels in d["tasks"].values() for r in levels):
        lines += ["", "429 answers are the router's admission control (the suite raises the sample tenants' limits; "
                      "a platform given with `--url` keeps its own); `ok req/s` counts the served answers only."]
    return lines, summary


def _not_ok(level: dict) -> str:
    """'; 22 % rejected (429), 3 % failed (502)' from a level's statuses."""
    total = sum(level["statuses"].values())
    parts = [f"{n / total * 100:.0f} % {'rejected' if code == '429' else 'failed'} ({code})"
             for code, n in level["statuses"].items() if str(code) != "200"]
    return ("; " + ", ".join(parts)) if parts else ""


def sec_router_overhead(d: dict) -> tuple[list[str], list[list[str]]]:
    s = d["sequential"]
    lines = ["Same Ray instance and HTTP proxy; full router (auth, admission, profile, prompt, redaction off, dispatch "
             "to the generate deployment) vs one bare deployment; both FakeEngine, no simulated latency.", "",
             f"| path | p50 ms | p95 ms | p99 ms | req/s at {d['concurrency']} in flight |", "|---|---|---|---|---|"]
    for name in ("router", "bare"):
        lines.append(f"| {name} | {s[name]['p50_ms']} | {s[name]['p95_ms']} | {s[name]['p99_ms']} | "
                     f"{d['throughput_rps'][name]} |")
    lines += ["", f"Added by the router: p50 {d['added']['p50_ms']:+} ms, p99 {d['added']['p99_ms']:+} ms; throughput "
                  f"ratio router/bare {d['throughput_ratio']} (statuses {d['statuses']})."]
    summary = [["router overhead (fake engine), added p50 / p99; throughput ratio",
                f"{d['added']['p50_ms']:+} ms / {d['added']['p99_ms']:+} ms; {d['throughput_ratio']}",
                f"bare Ray Serve p50 {s['bare']['p50_ms']} ms, {d['throughput_rps']['bare']} req/s"]]
    return lines, summary


def sec_cost(d: dict) -> tuple[list[str], list[list[str]]]:
    lines = ["Mix per conversation: " + " + ".join(d["mix"]) + ". Prices are dated parameters (cited in "
             "`benchmarks/cost_model.py`, not re-checked from this offline machine).", "",
             "Measured capacities used:", "", "| task | served req/s | at concurrency | from | not-200 share | tokens out (mean) |",
             "|---|---|---|---|---|---|"]
    for task, c in d["capacities"].items():
        lines.append(f"| {task} | {c['rps']} | {c['at_concurrency']} | {c['source']} | {c['failed_share']} | "
                     f"{num(c.get('tokens_out_mean'), 1)} |")
    lines += ["", f"summarize was measured with max_tokens {d.get('summarize_max_tokens')} (the platform default is 160): "
                  "longer summaries cost proportionally more generation time on both sides."]
    lines += ["", "| option | price | USD per 1M conversations | note |", "|---|---|---|---|"]
    for name, row in d["self_hosted"].items():
        node = row["node"]
        value = row.get("usd_per_million_conversations")
        note = (f"{row['node_seconds_per_conversation']} node-s per conversation" if value is not None
                else "not priced: " + ", ".join(row.get("missing", [])))
        lines.append(f"| {name}: {node['name']} | ${node['usd_per_hour']}/h ({node['as_of']}) | {money(value)} | {note} |")
    h = d["hosted"]
    p = h["price"]
    lines.append(f"| hosted {p['name']}, generic prompts | ${p['usd_per_m_input']} in / ${p['usd_per_m_output']} out "
                 f"per 1M tokens ({p['as_of']}) | {money(h['usd_per_million_conversations'])} | "
                 f"{h['input_tokens_per_conversation']} in + {h['output_tokens_per_conversation']:.0f} out tokens |")
    lines.append(f"| the same, system prompt at the cached-input price | ${p['usd_per_m_cached_input']} cached in | "
                 f"{money(h['usd_per_million_conversations_cached_prompt'])} | |")
    if "usd_per_million_conversations_compiled_prompts" in h:
        lines.append(f"| for reference: the hosted model fed Switchboard's compiled prompts | as above | "
                     f"{money(h['usd_per_million_conversations_compiled_prompts'])} | "
                     f"{h['compiled_input_tokens_per_conversation']} in tokens |")
    lines += ["", "The two sides are not equal in quality: the self-hosted row prices what this run's small models do "
                  "(see the adherence and intent sections for what that is worth), the hosted row a large model."]
    cpu = d["self_hosted"].get("self-hosted, CPU node", {})
    summary = [["cost per 1M conversations (redact+intent+summarize+score)",
                f"CPU node {money(cpu.get('usd_per_million_conversations'))}",
                f"{p['name']} per token {money(h['usd_per_million_conversations'])} "
                f"(cached prompt {money(h['usd_per_million_conversations_cached_prompt'])})"]]
    return lines, summary


SECTIONS = {"prompt_economy": (sec_prompt_economy, plot_prompts), "redaction": (sec_redaction, plot_redaction),
            "intent": (sec_intent, plot_intent), "adherence": (sec_adherence, plot_adherence),
            "throughput": (sec_throughput, plot_throughput), "router_overhead": (sec_router_overhead, plot_overhead),
            "cost_model": (sec_cost, plot_cost)}


def losses(results: Path) -> list[str]:
    """Where the small models lose, read off this run's numbers."""
    out = []
    intent = load(results, "intent")
    if intent:
        r = intent["results"]
        profile = next(v for k, v in r.items() if k.startswith("northbank profile"))
        svm = next(v for k, v in r.items() if "TF-IDF" in k)
        zero = r.get("zero-shot (descriptions only)")
        head = next(v for k, v in r.items() if k.startswith("trained head"))
        verdict = "loses to" if profile["accuracy"] < svm["accuracy"] else "beats"
        out.append(f"Intent: the few-shot profile (5 examples per label, no training) {verdict} a TF-IDF SVM trained on "
                   f"{intent['n_train']} rows: {pct(profile['accuracy'])} against {pct(svm['accuracy'])} (trained head "
                   f"{pct(head['accuracy'])})"
                   + (f"; zero-shot from descriptions alone reaches only {pct(zero['accuracy'])}." if zero else "."))
    red = load(results, "redaction")
    if red:
        per = red["runs"]["ours"]["per_type"]
        weak = sorted((v["f2"], t) for t, v in per.items() if v["gold"])[:3]
        ours, base = red["runs"]["ours"]["leak_rate"], red["runs"]["baseline"]["leak_rate"]
        out.append("Redaction: weakest entity types (F2) " + ", ".join(f"{t} {f:.2f}" for f, t in weak)
                   + f"; {pct(ours)} of gold PII strings still appear in the output"
                   + (f", more than default Presidio leaves ({pct(base)}): it redacts more spans "
                      f"({red['runs']['baseline']['overall']['predicted']} against "
                      f"{red['runs']['ours']['overall']['predicted']}), and a span hides a string even under a wrong type."
                      if ours > base else f" (default Presidio: {pct(base)})."))
    adh = load(results, "adherence")
    if adh:
        answered = [i for i in adh["items"] if i.get("status") == 200]
        negatives = [(i, c) for i in answered for c, label in i["labels"].items() if not label]
        wrong = sum(i["verdicts"].get(c) == "met" for i, c in negatives)
        out.append(f"score-quality on the 135M model (small ABCD set, {adh['scored']} conversations): "
                   f"{pct(adh['failed_share'])} of requests failed ({adh['statuses']}); of the criteria the agent did "
                   f"not meet, {wrong} of {len(negatives)} were scored `met`.")
    tp = load(results, "throughput")
    if tp:
        for task in ("summarize", "score-quality", "reply"):
            if task in tp["tasks"]:
                first = tp["tasks"][task][0]
                out.append(f"{task} on CPU is slow: p50 {first['p50_ms'] / 1000:.1f} s one at a time "
                           f"({first['tokens_out_per_s']} tokens/s, engine {tp.get('engine')}).")
    return out


def write_report(results: Path = RESULTS) -> Path:
    suite = json.loads((results / "suite.json").read_text()) if (results / "suite.json").is_file() else None
    steps = {s["name"]: s for s in suite["steps"]} if suite else {}
    names = [n for n in ORDER if n in steps] if suite else [n for n in ORDER if (results / f"{n}.json").is_file()]
    body, summary = [], []
    for name in names:
        step = steps.get(name, {})
        status = step.get("status", "ok" if (results / f"{name}.json").is_file() else "not run")
        body += ["", f"## {TITLES[name]}", "",
                 f"Status: **{status}**" + (f" ({step['detail']})" if step.get("detail") else "")
                 + (f"; {step['seconds']} s" if step.get("seconds") is not None else "")
                 + (f"; scope: {step['scope']}" if step.get("scope") else "") + f"; log `logs/{name}.log`."]
        data = load(results, name) if status == "ok" else None
        if name not in SECTIONS:  # throughput_score: its rows join the throughput table
            body += ["", "Its rows are in the throughput table above."]
            continue
        if data is None:
            summary.append([TITLES[name], f"**FAILED** ({step.get('detail', 'no result')})", ""])
            continue
        section, plot = SECTIONS[name]
        try:
            lines, rows = section(data)
            png = plot(data, results)
            body += [""] + lines + ["", f"![{name}]({png})"]
            body += _provenance(data)
            summary += rows
        except Exception as exc:  # a result the report cannot read is a failure too, shown as such
            summary.append([TITLES[name], f"**FAILED to report** ({type(exc).__name__}: {exc})", ""])
    head = _header(suite)
    table = ["", "## Summary", "", "| what | result | baseline / comparison in the same run |", "|---|---|---|"]
    table += [f"| {a} | {b} | {c} |" for a, b, c in summary]
    lose = ["", "## Where the small models lose", ""] + [f"- {line}" for line in losses(results)]
    path = results / "REPORT.md"
    path.write_text("\n".join(head + table + lose + body) + "\n", encoding="utf-8")
    return path


def _header(suite: dict | None) -> list[str]:
    lines = ["# Switchboard benchmark report", ""]
    if not suite:
        return lines + ["(rendered without a suite run: no results/suite.json)"]
    m = suite["machine_start"]
    failed = [s["name"] for s in suite["steps"] if s["status"] != "ok"]
    lines += [f"Mode **{suite['mode']}**, engine `{suite['engine']}`, started {suite['started_at']}, wall time "
              f"**{suite['wall_s']} s** ({suite['wall_s'] / 60:.1f} min). "
              + (f"**Failed: {', '.join(failed)}.**" if failed else "Every benchmark finished."),
              "", f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; load average at start "
                  f"{[round(x, 2) for x in m['loadavg']]}, at end {[round(x, 2) for x in suite['loadavg_end']]} "
                  "(the machine is shared: speeds are noisy).",
              "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".",
              "Platform: " + ", ".join(f"{k} {v}" for k, v in suite["platform"].items()) + ".", "",
              "| benchmark | status | seconds | scope |", "|---|---|---|---|"]
    lines += [f"| {s['name']} | {s['status']}{' — ' + s['detail'] if s['detail'] else ''} | {s['seconds']} | {s['scope']} |"
              for s in suite["steps"]]
    return lines


def _provenance(data: dict) -> list[str]:
    files = data.get("files_sha256") or ({data["data"]: data["sha256"]} if "sha256" in data else data.get("data"))
    lines = []
    if isinstance(files, dict) and files:
        lines += ["", "Data: " + "; ".join(f"`{Path(p).name}` sha256 `{h[:16]}…`" for p, h in files.items())]
    load = data.get("machine", {}).get("loadavg") or data.get("machine", {}).get("loadavg_before")
    if load:
        lines.append(f"Load average at start {[round(x, 2) for x in load]}"
                     + (f", at end {[round(x, 2) for x in data['loadavg_end']]}" if data.get("loadavg_end") else "") + ".")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    print(f"wrote {write_report(args.results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
