"""Runs task jobs on the engines, in batches, and shapes the results as response dicts (blocking; no Ray)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

from serving.errors import ModelNotReady
from serving.tasks.jobs import IntentJob, QualityJob, RedactJob

J = TypeVar("J")


def grouped(jobs: Sequence[J], key: Callable[[J], Hashable], run: Callable[[list[J]], list[Any]]) -> list[Any]:
    """Run `run` once per group of jobs that share a key; return results in the jobs' order."""
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i, job in enumerate(jobs):
        groups[key(job)].append(i)
    results: list[Any] = [None] * len(jobs)
    for indexes in groups.values():
        for i, result in zip(indexes, run([jobs[i] for i in indexes]), strict=True):
            results[i] = result
    return results


class TaskRunner:
    """Owns the engines of the tasks one process serves."""

    def __init__(
        self, redactor: Any = None, classifier: Any = None, quality: Any = None, quality_refused: str | None = None
    ):
        self.redactor = redactor
        self.classifier = classifier
        self.quality = quality  # the score-quality head (serving.quality.QualityHead), where this process hosts it
        self.quality_refused = quality_refused  # why no head serves here (the quality gate's reason), if none does

    def score_quality(self, job: QualityJob) -> dict:
        """{"criteria": [{criterion, verdict, evidence, probability}], "tokens_in"} from the trained head."""
        if self.quality is None:
            raise ModelNotReady(
                f"score-quality has no head that passed the quality gate: {self.quality_refused or 'none loaded'}"
            )
        return self.quality.answer(list(job.turns), job.criteria, job.glossary, job.absent)

    def redact_many(self, jobs: Sequence[RedactJob]) -> list[dict]:
        return grouped(jobs, lambda j: (j.entities, j.mode, j.score_threshold, j.salt, j.strict), self._redact_group)

    def classify_many(self, jobs: Sequence[IntentJob]) -> list[dict]:
        return grouped(jobs, lambda j: (j.taxonomy.model_dump_json(), j.top_k), self._classify_group)

    def _redact_group(self, jobs: list[RedactJob]) -> list[dict]:
        first = jobs[0]
        strict = {"strict": True} if first.strict else {}  # a redactor without the option still serves the rest
        results = self.redactor.redact_batch(
            [t for j in jobs for t in j.utterances()],
            list(first.entities),
            first.mode,
            first.score_threshold,
            first.salt,
            **strict,
        )
        return split_back(jobs, [redaction_dict(r) for r in results], "results")

    def _classify_group(self, jobs: list[IntentJob]) -> list[dict]:
        """Every utterance of the group's jobs in one encoder pass, then each job's answers in its own order."""
        first = jobs[0]
        texts = [t for j in jobs for t in j.utterances()]
        predictions = self.classifier.classify_batch(texts, first.taxonomy, top_k=first.top_k)
        tokens = self.classifier.count_tokens(texts)
        answers = [{**prediction_dict(p), "tokens_in": n} for p, n in zip(predictions, tokens, strict=True)]
        return split_back(jobs, answers, "predictions")


def split_back(jobs: Sequence[Any], answers: list[dict], key: str) -> list[dict]:
    """Per job, in order: its one answer (a `text` job) or {key: its answers} (a `texts` job)."""
    flat = iter(answers)
    results = []
    for job in jobs:
        mine = [next(flat) for _ in job.utterances()]
        results.append({key: mine} if job.texts else mine[0])
    return results


def redaction_dict(result: Any) -> dict:
    return {
        "text": result.text,
        "entities": [
            {
                "type": e.entity_type,
                "start": e.start,
                "end": e.end,
                "score": round(float(e.score), 4),
                "replacement": e.replacement,
            }
            for e in result.entities
        ],
    }


def prediction_dict(prediction: Any) -> dict:
    return {
        "label": prediction.label,
        "score": round(float(prediction.score), 4),
        "top_k": [{"label": label, "score": round(float(score), 4)} for label, score in prediction.top_k],
    }
