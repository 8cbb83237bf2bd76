"""score-quality head verdicts (pure): per criterion the best-scoring agent sentence decides; `met` with that sentence
as evidence when its probability reaches the threshold, else `not_met` with no evidence. Built in rubric order from
the quotable sentences only, so the answer is always valid under `serving.tasks.quality.output_schema`."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def decide(
    criteria: Sequence[str],
    quotes: Sequence[str],
    probabilities: Sequence[Sequence[float]],
    threshold: float,
    absent: Collection[str] = (),
) -> list[dict]:
    """One {"criterion", "verdict", "evidence", "probability"} per criterion, in order. `probabilities[i][j]`: the
    head's probability that quote j satisfies criterion i. No quotes (nothing the agent said): every criterion is
    `not_met`. A criterion in `absent` is met by what the agent does not do: its row scores the violation, so it is
    `met` (no evidence) unless a quote reaches the threshold, and that quote is the evidence of its `not_met`."""
    if len(probabilities) != len(criteria):
        raise ValueError(f"{len(probabilities)} probability rows for {len(criteria)} criteria")
    out = []
    for criterion, row in zip(criteria, probabilities, strict=True):
        if len(row) != len(quotes):
            raise ValueError(f"criterion {criterion!r}: {len(row)} probabilities for {len(quotes)} quotes")
        best = max(range(len(row)), key=row.__getitem__) if row else None
        p = float(row[best]) if best is not None else 0.0
        found = best is not None and p >= threshold
        quote = quotes[best] if found and best is not None else ""
        met = not found if criterion in absent else found
        out.append(
            {
                "criterion": criterion,
                "verdict": "met" if met else "not_met",
                "evidence": quote,
                "probability": round(p, 4),
            }
        )
    return out


def as_answer(verdicts: Sequence[dict]) -> dict:
    """The verdicts as the JSON object the rubric's schema describes ({"criteria": [{criterion, verdict, evidence}]})."""
    return {"criteria": [{k: v[k] for k in ("criterion", "verdict", "evidence")} for v in verdicts]}
