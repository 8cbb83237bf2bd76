"""The PNG plots of results/REPORT.md (benchmarks/report.py renders the text and calls these): one function per
benchmark, each reading that benchmark's JSON and saving one figure; matplotlib is imported only when one is drawn."""

from __future__ import annotations

from pathlib import Path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _bar_figure(path: Path, size: tuple[float, float], categories: list[str], series: dict[str, list[float]],
                title: str, ylabel: str | None = None, ylim: tuple[float, float] | None = None, log: bool = False,
                **ticks) -> str:
    """One group of bars per category, one bar per series (the legend), saved as `path`; `ticks` style the x labels."""
    fig, ax = _plt().subplots(figsize=size)
    width = 0.8 / max(len(series), 1)
    for k, (label, values) in enumerate(series.items()):
        ax.bar([i + (k - (len(series) - 1) / 2) * width for i in range(len(categories))], values, width, label=label)
    ax.set_xticks(range(len(categories)), categories, **ticks)
    if log:
        ax.set_yscale("log")
    if ylabel:
        ax.set_ylabel(ylabel)
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_intent(d: dict, out: Path) -> str:
    plt = _plt()
    rows = dict(d["results"])
    if d.get("api") and d["api"].get("accuracy") is not None:
        rows["northbank as served (HTTP API)"] = d["api"]
    names = list(rows)
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(names) + 1.2))
    y = range(len(names))
    ax.barh([i + 0.2 for i in y], [rows[n]["accuracy"] * 100 for n in names], 0.4, label="accuracy")
    ax.barh([i - 0.2 for i in y], [rows[n]["macro_f1"] * 100 for n in names], 0.4, label="macro-F1")
    ax.set_yticks(list(y), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("%")
    ax.set_title(f"BANKING77, {d['n_test']} test", loc="left", fontsize=10)
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, fontsize=8, frameon=False)
    return _save(fig, out / "intent.png")


def plot_redaction(d: dict, out: Path) -> str:
    types = sorted(set().union(*(r["per_type"] for r in d["runs"].values())))
    series = {f"{name} (F2 {run['overall']['f2']:.3f})": [run["per_type"].get(t, {}).get("f2", 0) for t in types]
              for name, run in d["runs"].items()}
    return _bar_figure(out / "redaction.png", (9, 3.5), types, series, f"Redaction F2 per entity type, {d['records']} texts",
                       ylabel="F2", ylim=(0, 1.05), rotation=40, ha="right", fontsize=8)


def plot_throughput(d: dict, out: Path) -> str:
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    for task, levels in d["tasks"].items():
        c = [r["concurrency"] for r in levels]
        a.plot(c, [r.get("ok_rps", r["rps"]) for r in levels], marker="o", label=task)
        b.plot(c, [r["p95_ms"] / 1000 for r in levels], marker="o", label=task)
    levels = sorted({r["concurrency"] for rows in d["tasks"].values() for r in rows})
    for ax, label in ((a, "requests/s"), (b, "p95 latency (s)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels, [str(c) for c in levels])
        ax.set_yscale("log")
        ax.set_xlabel("concurrency")
        ax.set_ylabel(label)
    a.legend(fontsize=8)
    a.set_title("served (200) requests/s", fontsize=9)
    fig.suptitle(f"Through the HTTP API, engine {d.get('engine')}")
    return _save(fig, out / "throughput.png")


def plot_prompts(d: dict, out: Path) -> str:
    tasks = list(d["tasks"])
    series = {"compiled (Switchboard)": [d["tasks"][t]["compiled_prompt_tokens"] for t in tasks],
              "generic, all tenant knowledge": [d["tasks"][t]["generic_prompt_tokens"] for t in tasks]}
    return _bar_figure(out / "prompt_economy.png", (8, 3.5), tasks, series, f"Prompt tokens, tenant {d['tenant']}",
                       ylabel="tokens per request (SmolLM2 tokenizer)", log=True)


def plot_adherence(d: dict, out: Path) -> str:
    crit = list(d["per_criterion"])
    series = {metric: [d["per_criterion"][c][metric] or 0 for c in crit] for metric in ("precision", "recall", "f1")}
    failed = "n/a" if d["failed_share"] is None else f"{d['failed_share'] * 100:.1f} %"
    title = f"score-quality per criterion ({d['scored']} conversations, {failed} requests failed)"
    return _bar_figure(out / "adherence.png", (8, 3.5), crit, series, title, ylim=(0, 1.05), fontsize=8)


def plot_overhead(d: dict, out: Path) -> str:
    keys = ("p50_ms", "p95_ms", "p99_ms")
    series = {f"{name} ({d['throughput_rps'][name]} req/s at {d['concurrency']})": [d["sequential"][name][q] for q in keys]
              for name in ("bare", "router")}
    return _bar_figure(out / "router_overhead.png", (6, 3.2), ["p50", "p95", "p99"], series,
                       "Full router vs bare Ray Serve (FakeEngine)", ylabel="ms, one request at a time")


def plot_cost(d: dict, out: Path) -> str:
    plt = _plt()
    bars = {name: row.get("usd_per_million_conversations") for name, row in d["self_hosted"].items()}
    bars[f"hosted {d['hosted']['price']['name']}"] = d["hosted"]["usd_per_million_conversations"]
    bars["hosted, cached prompt"] = d["hosted"]["usd_per_million_conversations_cached_prompt"]
    bars["hosted, compiled prompts (reference)"] = d["hosted"].get("usd_per_million_conversations_compiled_prompts")
    bars = {k: v for k, v in bars.items() if v}
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.barh(list(bars), list(bars.values()))
    ax.set_xscale("log")
    ax.set_xlabel("USD per million conversations (log)")
    ax.invert_yaxis()
    ax.set_title("redact + classify-intent + summarize + score-quality")
    return _save(fig, out / "cost.png")


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path.name
