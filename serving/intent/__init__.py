"""Intent classification: sentence embeddings scored against a tenant's intent taxonomy (no Ray, no web framework)."""

from serving.intent.classifier import (
    IntentClassifier,
    IntentIndex,
    IntentPrediction,
    build_index,
    classify,
    label_scores,
    taxonomy_fingerprint,
)
from serving.intent.embedder import Embedder, SentenceEmbedder, resolve_model_folder
from serving.intent.head import IntentHead, train_head

__all__ = [
    "Embedder",
    "IntentClassifier",
    "IntentHead",
    "IntentIndex",
    "IntentPrediction",
    "SentenceEmbedder",
    "build_index",
    "classify",
    "label_scores",
    "resolve_model_folder",
    "taxonomy_fingerprint",
    "train_head",
]
