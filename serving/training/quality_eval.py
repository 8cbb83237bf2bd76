"""score-quality held-out evaluation: the transformers engine with constrained decoding, as served, on the labelled
set; verdict accuracy and macro-F1, per criterion, JSON validity, evidence validity and the cross-tenant pairs,
against the always-`met` baseline. The figures are pure functions of (gold, predicted) so tests can check them."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from serving.training.quality import QualityItem, render_record, tenant_specs
from serving.vocabulary.conversation import Speaker

CLASSES = ("met", "not_met")


def f1(gold: list[str], pred: list[str], label: str) -> float:
    tp = sum(g == label and p == label for g, p in zip(gold, pred, strict=True))
    fp = sum(g != label and p == label for g, p in zip(gold, pred, strict=True))
    fn = sum(g == label and p != label for g, p in zip(gold, pred, strict=True))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def verdict_figures(gold: list[str], pred: list[str]) -> dict:
    """Accuracy (%) and macro-F1 over met / not_met (a `not_applicable` or missing verdict is wrong for both)."""
    if not gold:
        return {"verdicts": 0, "accuracy": 0.0, "macro_f1": 0.0}
    correct = sum(g == p for g, p in zip(gold, pred, strict=True))
    per_class = {label: round(f1(gold, pred, label), 4) for label in CLASSES}
    return {
        "verdicts": len(gold),
        "accuracy": round(100 * correct / len(gold), 2),
        "macro_f1": round(statistics.mean(per_class.values()), 4),
        "f1": per_class,
    }


Verdicts = list[tuple[str, str, str]]  # (criterion, verdict, evidence) per rubric criterion


def figures(items: list[QualityItem], predictions: Sequence[Verdicts | None]) -> dict:
    """All held-out figures of one model. `predictions[i]` is the (criterion, verdict, evidence) list the model wrote
    for item i, or None where its output was not valid under the rubric's schema."""
    gold: list[str] = []
    pred: list[str] = []
    by_criterion: defaultdict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    met, met_valid, met_exact, met_right = 0, 0, 0, 0
    for item, written_list in zip(items, predictions, strict=True):
        agent = [" ".join(t.text.split()) for t in item.turns if t.speaker is Speaker.AGENT]
        written = {c: (v, e) for c, v, e in written_list or []}
        for criterion, verdict, evidence in item.gold:
            p_verdict, p_evidence = written.get(criterion, ("invalid", ""))
            gold.append(verdict)
            pred.append(p_verdict)
            by_criterion[criterion][0].append(verdict)
            by_criterion[criterion][1].append(p_verdict)
            if p_verdict == "met":
                met += 1
                met_valid += bool(p_evidence) and any(p_evidence in a for a in agent)
                if verdict == "met":
                    met_right += 1
                    met_exact += p_evidence == evidence
    out = verdict_figures(gold, pred)
    out.update(
        records=len(items),
        json_valid=round(100 * sum(p is not None for p in predictions) / max(len(items), 1), 2),
        predicted_met=met,
        evidence_valid=round(100 * met_valid / met, 2) if met else None,  # of the `met` verdicts written
        evidence_as_labelled=round(100 * met_exact / met_right, 2) if met_right else None,  # of the right `met`s
        per_criterion={c: verdict_figures(g, p) for c, (g, p) in by_criterion.items()},
        cross_tenant=cross_tenant(items, predictions),
    )
    return out


def cross_tenant(items: list[QualityItem], predictions: Sequence[Verdicts | None]) -> dict:
    """Conversations scored under two tenants: the verdicts whose gold differs between the tenants (the glossary
    decides them), and how many of those the model got right under each tenant."""
    by_conv: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        by_conv[item.conversation].append(i)
    flips, right, pairs, pairs_all_right = 0, 0, 0, 0
    for indexes in (v for v in by_conv.values() if len(v) == 2):
        a, b = indexes
        gold_a, gold_b = ({c: v for c, v, _ in items[i].gold} for i in (a, b))
        pred_a, pred_b = ({c: v for c, v, _ in predictions[i] or []} for i in (a, b))
        differing = [c for c in gold_a if c in gold_b and gold_a[c] != gold_b[c]]
        ok = [pred_a.get(c) == gold_a[c] and pred_b.get(c) == gold_b[c] for c in differing]
        pairs, flips, right = pairs + 1, flips + len(differing), right + sum(ok)
        pairs_all_right += all(ok)
    return {"pairs": pairs, "differing_verdicts": flips, "both_right": right, "pairs_all_right": pairs_all_right}


def always_met(items: list[QualityItem]) -> list[Verdicts | None]:
    """The trivial baseline: every criterion `met`, with no evidence."""
    return [[(c, "met", "") for c, _, _ in item.gold] for item in items]


def errors(items: list[QualityItem], predictions: Sequence[Verdicts | None]) -> list[dict]:
    """Wrong verdicts by record id and criterion (ids and labels only: no conversation text)."""
    out = []
    for item, pred in zip(items, predictions, strict=True):
        written = {c: v for c, v, _ in pred or []}
        out += [
            {"record": item.record_id, "tenant": item.tenant, "criterion": c, "gold": v, "predicted": written.get(c)}
            for c, v, _ in item.gold
            if written.get(c) != v
        ]
    return out


def load_items(path: Path, limit: int | None = None) -> list[QualityItem]:
    from serving.training.data import read_jsonl

    specs = tenant_specs()
    return [render_record(r, specs) for r in read_jsonl(path)[:limit]]


async def predict(engine, items: list[QualityItem], max_tokens: int = 256, progress: bool = True) -> tuple[list, list]:
    """What the engine writes for each item under the rubric's schema (greedy, constrained as served), parsed and
    checked as the task does (serving.tasks.quality.parse_scores); seconds per item."""
    from tqdm import tqdm

    from serving.engines import GenerationRequest, SamplingParams
    from serving.errors import TaskFailed
    from serving.profiles.model import Criterion
    from serving.tasks.quality import parse_scores
    from serving.vocabulary.conversation import render

    outputs: list[Verdicts | None] = []
    seconds: list[float] = []
    for item in tqdm(items, desc="eval score-quality", disable=not progress):
        rubric = [Criterion(id=c, description=c) for c, _, _ in item.gold]
        request = GenerationRequest(
            messages=[dict(m) for m in item.request],
            json_schema=item.schema,
            sampling=SamplingParams(max_tokens=max_tokens),
        )
        started = time.perf_counter()
        try:
            result = await engine.generate(request)
            scores = parse_scores(result.text, rubric, render(list(item.turns)))
            outputs.append([(s.criterion, s.verdict, s.evidence) for s in scores.criteria])
        except TaskFailed:
            outputs.append(None)
        seconds.append(time.perf_counter() - started)
    return outputs, seconds


def eval_quality(
    heldout: Path, base: Path, adapter: Path | None, threads: int = 1, limit: int | None = None, progress: bool = True
) -> dict:
    """Held-out figures of base (+ adapter) on the transformers engine, with the always-met baseline and the errors."""
    import asyncio

    from serving.engines import create_engine

    items = load_items(heldout, limit)

    async def main():
        engine = create_engine("transformers", base, num_threads=threads, max_batch_size=1, adapter=adapter)
        try:
            return await predict(engine, items, progress=progress)
        finally:
            await engine.close()

    predictions, seconds = asyncio.run(main())
    out = figures(items, predictions)
    out.update(
        seconds_per_record=round(statistics.mean(seconds), 2),
        errors=errors(items, predictions),
        always_met=figures(items, always_met(items)),
    )
    return out
