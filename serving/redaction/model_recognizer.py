"""A Presidio recognizer backed by the trained PII detector (MiniLM + LoRA token classifier, models/pii-minilm/).

It runs inside the same AnalyzerEngine as the pattern recognizers, so one overlap resolution decides between them.
torch, transformers and peft are imported when the recognizer is built, never at import time. `prefetch(texts)`
runs the model once over a whole batch (the Redactor calls it before analysing the batch text by text); `analyze`
then reads the batch's result, or runs the model on that one text. Texts and values are never logged.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, List, Optional, Sequence

from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from serving.errors import ConfigError

DEFAULT_FOLDER = "models/pii-minilm"
CARD = "pii_model.json"  # labels, base model and window settings, written by serving.training.pii_train
# Where the catalogue lacks one of the detector's types, the nearest type that it has.
FALLBACK = {"STREET_ADDRESS": "LOCATION", "DRIVER_LICENSE": "US_DRIVER_LICENSE", "PASSPORT": "US_PASSPORT"}
_PROJECT = Path(__file__).resolve().parents[2]


def resolve_folder(ref: str) -> Path:
    """The detector's folder: `ref` as given, else relative to the project root; ConfigError if neither holds it."""
    for folder in (Path(ref).expanduser(), _PROJECT / ref):
        if (folder / CARD).is_file():
            return folder
    raise ConfigError(
        f"PII model {ref!r}: no {CARD} there (rebuild it with `make train-pii`, or set "
        f"SWITCHBOARD_MODELS__PII=none to redact with the pattern recognizers only)",
        field="models.pii",
    )


def entity_map(labels: Sequence[str], supported: Sequence[str]) -> dict[str, str]:
    """Model label -> catalogue entity type (itself, else its FALLBACK); labels with neither are dropped (pure)."""
    out = {}
    for label in labels:
        target = label if label in supported else FALLBACK.get(label)
        if target is not None and target in supported:
            out[label] = target
    return out


def decode_spans(
    text: str,
    tokens: Sequence[tuple[int, int]],
    tags: Sequence[str],
    scores: Sequence[float],
) -> list[tuple[str, int, int, float]]:
    """BIO tags of words or tokens (char offsets into `text`) -> (label, start, end, mean score) spans (pure).

    B- starts a span; I- continues the open span when its type is the previous word's or a kindred one (a street
    line and its town), else starts one; O closes it. A span takes the type with the most probability mass over
    its words. Spans are widened to whole words (no fragment
    of a word the model only partly tagged stays in clear text) and lose punctuation at their edges."""
    spans: list[dict[str, Any]] = []
    open_span, last = False, ""
    for (start, end), tag, score in zip(tokens, tags, scores):
        if end <= start:
            continue
        if tag == "O":
            open_span = False
            continue
        prefix, label = tag.split("-", 1)
        if open_span and ((prefix == "I" and _kindred(label, last)) or start == spans[-1]["end"]):
            span = spans[-1]
            span["end"], span["scores"] = end, span["scores"] + [score]
            span["mass"][label] = span["mass"].get(label, 0.0) + score
        else:
            spans.append({"start": start, "end": end, "scores": [score], "mass": {label: score}})
        open_span, last = True, label
    out = []
    for span in spans:
        start, end = _whole_words(text, span["start"], span["end"])
        if end > start:
            label = max(span["mass"], key=span["mass"].get)
            out.append((label, start, end, sum(span["scores"]) / len(span["scores"])))
    return out


_KINDRED = ({"STREET_ADDRESS", "LOCATION"},)


def _kindred(label: str, previous: str) -> bool:
    return label == previous or any(label in group and previous in group for group in _KINDRED)


_EDGE = ",.;:!?()[]\"'"


def _whole_words(text: str, start: int, end: int) -> tuple[int, int]:
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    while start < end and (text[start] in _EDGE or text[start].isspace()):
        start += 1
    while end > start and (text[end - 1] in _EDGE or text[end - 1].isspace()):
        end -= 1
    return start, end


class ModelPiiRecognizer(EntityRecognizer):
    """Token-classification PII detector as a Presidio recognizer (CPU, batched).

    `folder` holds `pii_model.json` and the PEFT adapter; the base MiniLM comes from its installed package.
    `score_scale` multiplies the model's mean token probability, so that checksum-validated pattern results
    (score 1.0) win an overlap against the model. `dtype`: serving.redaction.model_loading.DTYPES."""

    def __init__(
        self,
        folder: str | Path,
        supported: Sequence[str],
        *,
        score_scale: float = 0.9,
        batch_size: int = 32,
        dtype: str = "auto",
        name: str = "ModelPiiRecognizer",
    ):
        self._folder = resolve_folder(str(folder))
        self._card = json.loads((self._folder / CARD).read_text())
        self._map = entity_map(self._card["labels"], supported)
        self._scale, self._batch_size, self._dtype = score_scale, batch_size, dtype
        self._cache: dict[str, list[tuple[str, int, int, float]]] = {}
        self._lock = threading.Lock()
        super().__init__(supported_entities=sorted(set(self._map.values())), name=name, supported_language="en")

    def load(self) -> None:
        """Build the base MiniLM with the adapter merged in (about 1 s); ConfigError when a part is missing."""
        from serving.redaction.model_loading import load_token_classifier

        self._tokenizer, self._model, self._tags = load_token_classifier(self._folder, self._card, self._dtype)

    def analyze(self, text: str, entities: List[str], nlp_artifacts: Optional[NlpArtifacts] = None):
        """The detector's spans of the wanted entity types, as fresh RecognizerResults."""
        with self._lock:
            found = self._cache.pop(text, None)
        if found is None:
            found = self.predict([text])[0]
        wanted = set(entities or self.supported_entities)
        meta = {"recognizer_name": self.name, "recognizer_identifier": self.id}
        return [
            RecognizerResult(
                self._map[label], start, end, round(score * self._scale, 4), recognition_metadata=dict(meta)
            )
            for label, start, end, score in found
            if label in self._map and self._map[label] in wanted
        ]

    def prefetch(self, texts: Sequence[str]) -> None:
        """Run the model over a batch now; the next analyze() of each of these texts reads its result."""
        results = self.predict(list(texts))
        with self._lock:
            self._cache = dict(zip(texts, results))

    def predict(self, texts: list[str]) -> list[list[tuple[str, int, int, float]]]:
        """(label, start, end, score) spans per text; long texts are read in overlapping windows. Only texts of
        similar length share a forward pass (length_chunks), so little of it is padding."""
        from serving.redaction.model_loading import token_predictions

        out: list[list[tuple[str, int, int, float]]] = [[] for _ in texts]
        for indexes in length_chunks([len(t) for t in texts], self._batch_size):
            chunk = [texts[k] for k in indexes]
            predictions = token_predictions(self._tokenizer, self._model, self._tags, chunk, self._card)
            for k, text, (tokens, tags, scores) in zip(indexes, chunk, predictions):
                out[k] = decode_spans(text, tokens, tags, scores)
        return out


def length_chunks(lengths: Sequence[int], most: int, spread: float = 1.25, slack: int = 20) -> list[list[int]]:
    """Indexes grouped for forward passes (pure): shortest first, at most `most` per group, and no text in a group
    longer than `spread` x its shortest + `slack` characters. On 320 Presidio-set texts in batches of 16 (bfloat16,
    1 thread, shared 2-core machine at load 6-9) this ran about 1.4x faster than one pass per 16 padded to its
    longest. In bfloat16 padding nudges the numbers: 2 of those 320 texts got a different span than read alone
    (one pass per 16: 6; float32: 0)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    chunks: list[list[int]] = []
    for i in order:
        if chunks and len(chunks[-1]) < most and lengths[i] <= spread * lengths[chunks[-1][0]] + slack:
            chunks[-1].append(i)
        else:
            chunks.append([i])
    return chunks
