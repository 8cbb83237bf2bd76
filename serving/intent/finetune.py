"""Contrastive fine-tuning of the packaged MiniLM on customer-service intents (CPU, time-budgeted, resumable).

Objective (SetFit-style pairs, in-batch negatives): each step draws `labels_per_step` distinct intents and two
different utterances of each; the loss is the symmetric cross-entropy of `scale * cos(anchor_i, positive_j)`, so each
utterance must be nearer its own intent's other utterance than the other intents' (MultipleNegativesRankingLoss).
Distinct intents per step mean no false negatives. The word embeddings stay frozen, so what changes is the six
transformer layers; those are saved as an *overlay* (fp16 safetensors, about 21 MB) applied to the packaged base
model at load time (see `embedder.SentenceEmbedder`).

Usage: python -m serving.intent.finetune --out models/intent-encoder --budget-minutes 30 [--work /tmp/intent]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path

from serving.intent.corpora import (
    HELD_OUT_DOMAINS,
    by_label,
    clinc_domain_of,
    encoder_training_rows,
)
from serving.intent.embedder import (
    DEFAULT_MODEL,
    OVERLAY_FILE,
    OVERLAY_WEIGHTS,
    resolve_model_folder,
)

TRAINABLE_PREFIX = "encoder."  # BERT's transformer layers; embeddings (and the unused pooler) stay as packaged


def domain_of(label: str) -> str:
    """`clinc:transfer` -> `banking`; every Bitext label is one domain (all customer support)."""
    corpus, _, name = label.partition(":")
    return clinc_domain_of().get(name, "?") if corpus == "clinc" else corpus


def pair_batch(groups: dict[str, list[str]], labels_per_step: int, rng: random.Random) -> tuple[list[str], list[str]]:
    """Anchors and positives: two different utterances of each of up to `labels_per_step` distinct labels, taken a
    whole domain at a time (random domains), so that the in-batch negatives include the hard, same-domain ones."""
    domains: dict[str, list[str]] = {}
    for label, texts in groups.items():
        if len(texts) >= 2:
            domains.setdefault(domain_of(label), []).append(label)
    order = sorted(domains)
    rng.shuffle(order)
    chosen: list[str] = []
    for domain in order:
        if len(chosen) >= labels_per_step:
            break
        chosen += domains[domain]
    chosen = chosen[:labels_per_step]
    pairs = [rng.sample(groups[label], 2) for label in chosen]
    return [a for a, _ in pairs], [p for _, p in pairs]


def lr_at(fraction: float, peak: float, warmup: float = 0.1) -> float:
    """Linear warm-up over the first `warmup` of the budget, then linear decay to zero (fraction of budget used)."""
    if fraction < warmup:
        return peak * max(fraction, 0.01) / warmup
    return peak * max(0.0, 1.0 - fraction) / (1.0 - warmup)


def contrastive_loss(model, anchors: list[str], positives: list[str], scale: float):
    import torch
    import torch.nn.functional as F

    features = (
        model.preprocess(anchors + positives) if hasattr(model, "preprocess") else model.tokenize(anchors + positives)
    )
    out = model(features)["sentence_embedding"]
    x = F.normalize(out, dim=-1)
    a, p = x[: len(anchors)], x[len(anchors) :]
    logits = scale * a @ p.T
    target = torch.arange(len(anchors))
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def trainable_state(model) -> dict:
    bert = model[0].auto_model
    return {k: v.detach().clone() for k, v in bert.state_dict().items() if k.startswith(TRAINABLE_PREFIX)}


def save_overlay(model, out: Path, meta: dict) -> None:
    import shutil

    import torch
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    # The base's tokenizer beside the overlay: what counts instruction tokens finds it in the embedding folder.
    shutil.copyfile(resolve_model_folder(meta["base"]) / "tokenizer.json", out / "tokenizer.json")
    tensors = {k: v.to(torch.float16).contiguous() for k, v in trainable_state(model).items()}
    save_file(tensors, str(out / OVERLAY_WEIGHTS))
    digest = hashlib.sha256((out / OVERLAY_WEIGHTS).read_bytes()).hexdigest()
    (out / OVERLAY_FILE).write_text(
        json.dumps({**meta, "weights": OVERLAY_WEIGHTS, "weights_sha256": digest}, indent=2) + "\n", encoding="utf-8"
    )


def build_model(base: str, max_seq_length: int):
    import os

    os.environ["HF_HUB_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(resolve_model_folder(base)), device="cpu")
    model.max_seq_length = max_seq_length
    for name, param in model[0].auto_model.named_parameters():
        param.requires_grad = name.startswith(TRAINABLE_PREFIX)
    return model


def train(
    data_dir: Path,
    out: Path,
    work: Path,
    *,
    budget_minutes: float,
    base: str = DEFAULT_MODEL,
    labels_per_step: int = 64,
    peak_lr: float = 3e-5,
    scale: float = 20.0,
    max_seq_length: int = 64,
    seed: int = 0,
    checkpoint_minutes: float = 5.0,
) -> dict:
    import torch

    torch.manual_seed(seed)
    rows = encoder_training_rows(data_dir)
    groups = by_label(rows)
    model = build_model(base, max_seq_length)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=peak_lr, weight_decay=0.01)
    state = _resume(work, model, optimizer)
    rng = random.Random(seed * 1_000_003 + state["step"])
    budget_s = budget_minutes * 60
    last_ckpt = time.monotonic()
    started = time.monotonic() - state["elapsed_s"]
    model.train()
    while (elapsed := time.monotonic() - started) < budget_s:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(elapsed / budget_s, peak_lr)
        anchors, positives = pair_batch(groups, labels_per_step, rng)
        loss = contrastive_loss(model, anchors, positives, scale)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        state["step"] += 1
        state["losses"].append(round(float(loss.detach()), 4))
        if state["step"] % 10 == 0:
            print(
                f"step {state['step']} loss {sum(state['losses'][-10:]) / 10:.4f} elapsed {elapsed / 60:.1f} min",
                file=sys.stderr,
                flush=True,
            )
        if time.monotonic() - last_ckpt > checkpoint_minutes * 60:
            state["elapsed_s"] = time.monotonic() - started
            _checkpoint(work, model, optimizer, state)
            last_ckpt = time.monotonic()
    state["elapsed_s"] = time.monotonic() - started
    _checkpoint(work, model, optimizer, state)
    meta = {
        "base": base,
        "base_sha256": _base_sha(base),
        "held_out_domains": list(HELD_OUT_DOMAINS),
        "training_rows": len(rows),
        "training_labels": len(groups),
        "steps": state["step"],
        "labels_per_step": labels_per_step,
        "peak_lr": peak_lr,
        "scale": scale,
        "max_seq_length": max_seq_length,
        "seed": seed,
        "minutes": round(state["elapsed_s"] / 60, 1),
        "budget_minutes": budget_minutes,
        "frozen": "embeddings, pooler",
        "batches": "whole domains (in-batch hard negatives)",
        "loss_first_10": _mean(state["losses"][:10]),
        "loss_last_10": _mean(state["losses"][-10:]),
    }
    save_overlay(model, out, meta)
    return meta


def _mean(values: list[float]) -> float:
    return round(sum(values) / max(1, len(values)), 4)


def _base_sha(base: str) -> str:
    return hashlib.sha256((resolve_model_folder(base) / "model.safetensors").read_bytes()).hexdigest()


def _checkpoint(work: Path, model, optimizer, state: dict) -> None:
    import torch

    work.mkdir(parents=True, exist_ok=True)
    tmp = work / "checkpoint.pt.tmp"
    torch.save({"model": trainable_state(model), "optimizer": optimizer.state_dict(), "state": state}, tmp)
    tmp.replace(work / "checkpoint.pt")


def _resume(work: Path, model, optimizer) -> dict:
    import torch

    path = work / "checkpoint.pt"
    if not path.is_file():
        return {"step": 0, "elapsed_s": 0.0, "losses": []}
    saved = torch.load(path, weights_only=False)
    model[0].auto_model.load_state_dict(saved["model"], strict=False)
    optimizer.load_state_dict(saved["optimizer"])
    print(f"resumed at step {saved['state']['step']}", file=sys.stderr)
    return saved["state"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.intent.finetune", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data")
    parser.add_argument("--out", type=Path, required=True, help="overlay folder to write")
    parser.add_argument("--work", type=Path, default=Path("/tmp/intent-finetune"), help="checkpoints (resumable)")
    parser.add_argument("--budget-minutes", type=float, default=30.0)
    parser.add_argument("--labels-per-step", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    meta = train(
        args.data,
        args.out,
        args.work,
        budget_minutes=args.budget_minutes,
        labels_per_step=args.labels_per_step,
        peak_lr=args.lr,
        seed=args.seed,
    )
    print(json.dumps(meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
