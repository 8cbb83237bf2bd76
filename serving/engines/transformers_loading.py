"""Loading a causal LM for the transformers engine: local files only, an optional LoRA adapter merged in, EOS ids."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from serving.errors import ModelNotReady


def load_model(path: Path, dtype: str, num_threads: int | None, adapter: Path | None = None) -> tuple[Any, Any]:
    os.environ["HF_HUB_OFFLINE"] = "1"
    if not (path / "config.json").is_file():
        raise ModelNotReady(f"no model at {path} (expected config.json; prepare it with `switchboard models prepare`)")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if num_threads:
        torch.set_num_threads(num_threads)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=getattr(torch, dtype))
    except (OSError, ValueError) as exc:
        raise ModelNotReady(f"cannot load the model at {path}: {exc}") from exc
    if adapter is not None:
        model = merge_adapter(model, adapter)
    model.eval()
    with torch.inference_mode():  # touch every (memory-mapped) weight now rather than during the first request
        for parameter in model.parameters():
            parameter.sum()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model


def merge_adapter(model: Any, adapter: Path) -> Any:
    """Base + one LoRA adapter, merged into the weights (one adapter per deployment: no per-request LoRA cost)."""
    if not (adapter / "adapter_config.json").is_file():
        raise ModelNotReady(f"no LoRA adapter at {adapter} (expected adapter_config.json)")
    from peft import PeftModel
    from safetensors import SafetensorError

    try:
        return PeftModel.from_pretrained(model, adapter, local_files_only=True).merge_and_unload()
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as exc:  # a corrupt or mismatched file
        raise ModelNotReady(f"cannot load the adapter at {adapter}: {exc}") from exc


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    configured = getattr(model.generation_config, "eos_token_id", None)
    ids = set(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids
