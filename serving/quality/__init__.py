"""score-quality by a trained head: agent sentences scored against each rubric criterion under the tenant's glossary
(MiniLM embeddings + an MLP), verdicts and verbatim evidence decided in code (no Ray, no web framework)."""

from serving.quality.decision import as_answer, decide
from serving.quality.features import Candidate, candidates, criterion_query, feature_rows
from serving.quality.head import QualityHead, gate, load_head, resolve_folder

__all__ = [
    "Candidate",
    "QualityHead",
    "as_answer",
    "candidates",
    "criterion_query",
    "decide",
    "feature_rows",
    "gate",
    "load_head",
    "resolve_folder",
]
