"""LoRA fine-tuning loop on CPU: seeded, time-budgeted, resumable from the last checkpoint, with a progress bar."""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from serving.training.data import Example, encode


@dataclass(frozen=True)
class TrainConfig:
    base: Path
    out: Path
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    lr: float = 4e-4
    epochs: float = 1.0
    grad_accum: int = 8
    max_prompt: int = 512
    max_answer: int = 160
    seed: int = 0
    budget_minutes: float = 45.0
    checkpoint_every: int = 25
    threads: int = 1
    extra: dict = field(default_factory=dict)


def _lora_model(config: TrainConfig):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(config.base, local_files_only=True, dtype=torch.float32)
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=list(config.target_modules),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def train(config: TrainConfig, examples: list[Example]) -> dict:
    """Train until the epochs are done or the budget is spent; the adapter is saved to `config.out`."""
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file
    from tqdm import tqdm
    from transformers import AutoTokenizer

    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    tokenizer = AutoTokenizer.from_pretrained(config.base, local_files_only=True)
    order = list(range(len(examples)))
    random.Random(config.seed).shuffle(order)
    total = int(len(order) * config.epochs)
    order = (order * (int(config.epochs) + 1))[:total]
    model = _lora_model(config)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr)
    steps = total // config.grad_accum
    ckpt = config.out / "checkpoint"
    state = json.loads((ckpt / "state.json").read_text()) if (ckpt / "state.json").exists() else {}
    budget_s = config.budget_minutes * 60
    began = time.monotonic() - state.get("elapsed_s", 0.0)  # a resumed run continues the same wall budget
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, steps, (time.monotonic() - began) / budget_s)
    )
    start = 0
    if state:  # resume
        set_peft_model_state_dict(model, load_file(ckpt / "adapter_model.safetensors"))
        optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt"))
        schedule.load_state_dict(torch.load(ckpt / "schedule.pt"))
        start = state["seen"]
    deadline = began + budget_s
    model.train()
    losses: list[float] = []
    seen = start
    bar = tqdm(total=total, initial=start, desc="train", unit="ex")
    for seen in range(start, total):
        ids, labels, weights = encode(
            tokenizer, examples[order[seen]], max_prompt=config.max_prompt, max_answer=config.max_answer
        )
        loss = weighted_loss(model(input_ids=torch.tensor([ids])).logits[0], labels, weights)
        (loss / config.grad_accum).backward()
        losses.append(loss.item())
        bar.update(1)
        if (seen + 1) % config.grad_accum == 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step(), schedule.step(), optimizer.zero_grad()
            step = (seen + 1) // config.grad_accum
            bar.set_postfix(loss=f"{sum(losses[-64:]) / len(losses[-64:]):.3f}")
            if step % config.checkpoint_every == 0:
                _checkpoint(model, optimizer, schedule, ckpt, seen + 1, time.monotonic() - began)
        if time.monotonic() > deadline:
            seen += 1
            break
    else:
        seen = total
    bar.close()
    _checkpoint(model, optimizer, schedule, ckpt, seen, time.monotonic() - began)
    model.save_pretrained(config.out)
    to_fp16(config.out)
    tokenizer.save_pretrained(config.out)
    return {
        "examples_seen": seen,
        "examples_planned": total,
        "last_loss": round(sum(losses[-64:]) / max(len(losses[-64:]), 1), 4),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
    }


def lr_factor(step: int, steps: int, time_used: float) -> float:
    """Linear warm-up (a tenth of the steps, at most 10), then linear decay by whichever runs out first: the planned
    steps or the wall budget (`time_used` is its spent fraction), so a run the budget cuts short still ends cool."""
    warmup = min(10, max(1, steps // 10))
    return min(1.0, (step + 1) / warmup) * max(0.05, 1 - max(step / max(steps, 1), time_used))


def weighted_loss(logits, labels: list[int], weights: list[float]):
    """Next-token cross-entropy over the labelled positions, weighted per token (all weights 1: the usual mean)."""
    import torch

    target = torch.tensor(labels[1:])
    weight = torch.tensor(weights[1:]) * (target != -100)
    losses = torch.nn.functional.cross_entropy(logits[:-1].float(), target.clamp(min=0), reduction="none")
    return (losses * weight).sum() / weight.sum().clamp(min=1e-9)


def _checkpoint(model, optimizer, schedule, folder: Path, seen: int, elapsed_s: float) -> None:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    torch.save(optimizer.state_dict(), folder / "optimizer.pt")
    torch.save(schedule.state_dict(), folder / "schedule.pt")
    (folder / "state.json").write_text(json.dumps({"seen": seen, "elapsed_s": round(elapsed_s, 1)}))


def to_fp16(folder: Path) -> None:
    """Store the adapter's weights in float16 (half the size in the repository; merged into the float32 base at load)."""
    from safetensors.torch import load_file, save_file

    path = Path(folder) / "adapter_model.safetensors"
    save_file({k: v.half().contiguous() for k, v in load_file(path).items()}, path, metadata={"format": "pt"})
