"""Training examples rendered with the serving prompt composer (tenant lead, glossary, turns), so that what the
adapter learns to read is exactly what the router sends it."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from serving.tasks.prompts import Messages, compose
from serving.vocabulary.catalog import Task
from serving.vocabulary.conversation import Speaker, Turn

# Tenant names and glossaries the examples are rendered under, so that the model sees varied instructions in context
# (the tenant-specific wording is the router's; the targets are the human references, which follow no tenant style).
_TENANTS = (
    ("ShopRight", ()),
    ("Northbank", (("RMA", "return merchandise authorisation"),)),
    ("Acme Telecom", (("DM", "a private direct message"), ("ETA", "estimated time of arrival"))),
    ("", ()),
)


@dataclass(frozen=True)
class Example:
    """One supervised example: chat messages of the prompt and the answer the model should write."""

    messages: tuple[dict[str, str], ...]
    answer: str
    # Where the answer is tokenized in pieces (score-quality: as the constrained decoder feeds it), the pieces.
    pieces: tuple[str, ...] = ()
    weights: tuple[float, ...] = ()  # loss weight per piece (default 1): score-quality weighs its verdicts up


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def turns_of(dialog: dict) -> list[Turn]:
    return [Turn(speaker=Speaker(t["speaker"]), text=t["text"]) for t in dialog["turns"] if t["text"].strip()]


def tenant_instruction(task: Task, index: int) -> str:
    """The compiled instruction of one of the training tenants (same shape as serving.profiles.compiler's)."""
    name, glossary = _TENANTS[index % len(_TENANTS)]
    lead = {Task.SUMMARIZE: "Summarize for {name}.", Task.REPLY: "Write the next agent reply for {name}."}[task]
    lines = [lead.format(name=name or "the support team")]
    if glossary:
        lines.append("Terms: " + "; ".join(f"{t} = {d}" for t, d in glossary))
    return "\n".join(lines)


def summarize_examples(dialogs: list[dict]) -> list[Example]:
    """One example per (dialogue, reference summary)."""
    out: list[Example] = []
    for i, dialog in enumerate(dialogs):
        messages = compose(Task.SUMMARIZE, tenant_instruction(Task.SUMMARIZE, i), turns_of(dialog))
        out.extend(Example(tuple(messages), s.strip()) for s in dialog["summaries"] if s.strip())
    return out


def reply_examples(dialogs: list[dict], per_dialog: int = 2, seed: int = 0) -> list[Example]:
    """Agent turns given the conversation so far (up to `per_dialog` agent turns per dialogue, seeded)."""
    rng = random.Random(seed)
    out = []
    for i, dialog in enumerate(dialogs):
        turns = turns_of(dialog)
        agent_at = [k for k, t in enumerate(turns) if t.speaker is Speaker.AGENT and k > 0]
        for k in sorted(rng.sample(agent_at, min(per_dialog, len(agent_at)))):
            messages = compose(Task.REPLY, tenant_instruction(Task.REPLY, i), turns[:k])
            out.append(Example(tuple(messages), turns[k].text))
    return out


def quality_examples(records: list[dict]) -> list[Example]:
    """One example per (conversation, tenant) record: the served prompt and the labelled JSON answer."""
    from serving.training.quality import guided_pieces, piece_weights, render_record, tenant_specs

    specs = tenant_specs()
    out = []
    for record in records:
        item = render_record(record, specs)
        answer = item.answer()
        pieces = guided_pieces(item.schema, answer)
        out.append(Example(tuple(item.messages), answer, tuple(pieces), tuple(piece_weights(pieces))))
    return out


def render_examples(task: Task, path: Path, seed: int = 0) -> list[Example]:
    dialogs = read_jsonl(path)
    if task is Task.SUMMARIZE:
        return summarize_examples(dialogs)
    if task is Task.REPLY:
        return reply_examples(dialogs, seed=seed)
    if task is Task.SCORE_QUALITY:
        return quality_examples(dialogs)
    raise ValueError(f"no training data rendering for {task.value} yet")


def encode(
    tokenizer, example: Example | Messages, answer: str | None = None, max_prompt: int = 512, max_answer: int = 160
) -> tuple[list[int], list[int], list[float]]:
    """Token ids, labels (-100 on the prompt, so the loss is on the answer only) and per-token loss weights. Long
    prompts keep their start and end (the system instruction and the latest turns)."""
    messages = list(example.messages) if isinstance(example, Example) else example
    answer = example.answer if isinstance(example, Example) else (answer or "")
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if len(p_ids) > max_prompt:
        p_ids = p_ids[:64] + p_ids[-(max_prompt - 64) :]
    pieces = example.pieces if isinstance(example, Example) and example.pieces else (answer,)
    weights = example.weights if isinstance(example, Example) and example.weights else (1.0,) * len(pieces)
    a_ids: list[int] = []
    a_w: list[float] = []
    for piece, weight in zip(pieces, weights, strict=True):
        ids = tokenizer(piece, add_special_tokens=False)["input_ids"]
        a_ids, a_w = a_ids + ids, a_w + [weight] * len(ids)
    a_ids = a_ids[:max_answer] + [tokenizer.convert_tokens_to_ids("<|im_end|>")]
    a_w = a_w[:max_answer] + [1.0]
    return p_ids + a_ids, [-100] * len(p_ids) + a_ids, [0.0] * len(p_ids) + a_w
