"""Held-out evaluation of a task model (base, or base + LoRA adapter) against the trivial baselines a sceptic picks:
summarize and reply by ROUGE-L (rouge-score, stemming, F-measure averaged over each dialogue's references), reply
also by the perplexity of the real agent turn."""

from __future__ import annotations

import statistics
from pathlib import Path

from serving.tasks.prompts import compose
from serving.training.data import read_jsonl, tenant_instruction, turns_of
from serving.vocabulary.catalog import Task
from serving.vocabulary.conversation import Speaker, Turn


def rouge_l(prediction: str, references: list[str]) -> float:
    """ROUGE-L F-measure (x100) averaged over the references."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return 100 * statistics.mean(scorer.score(r, prediction)["rougeL"].fmeasure for r in references)


def lead2(turns: list[Turn]) -> str:
    """First customer turn and first agent turn: the trivial summary baseline."""
    first: dict[Speaker, str] = {}
    for t in turns:
        first.setdefault(t.speaker, t.text)
    return " ".join(first[s] for s in (Speaker.CUSTOMER, Speaker.AGENT) if s in first)


def load(base: Path, adapter: Path | None, threads: int = 1):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(base, local_files_only=True, dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    return model.eval(), tokenizer


def greedy(model, tokenizer, messages: list[dict], max_new_tokens: int, max_prompt: int = 448) -> str:
    import torch

    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if len(ids) > max_prompt:  # the same cut as in training: the instruction and the latest turns
        ids = ids[:64] + ids[-(max_prompt - 64) :]
    with torch.no_grad():
        out = model.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.eos_token_id,
        )
    return tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True).strip()


def eval_summarize(
    valid: Path, model=None, tokenizer=None, limit: int | None = None, max_new_tokens: int = 80, progress: bool = True
) -> dict:
    """ROUGE-L and mean length (words) of the model's summaries and of lead-2 and the references."""
    from tqdm import tqdm

    dialogs = read_jsonl(valid)[:limit]
    model_scores, lead_scores, model_len, ref_len = [], [], [], []
    for i, d in enumerate(tqdm(dialogs, desc="eval summarize", disable=not progress)):
        turns, refs = turns_of(d), [s for s in d["summaries"] if s.strip()]
        lead_scores.append(rouge_l(lead2(turns), refs))
        ref_len.append(statistics.mean(len(r.split()) for r in refs))
        if model is not None:
            text = greedy(
                model, tokenizer, compose(Task.SUMMARIZE, tenant_instruction(Task.SUMMARIZE, i), turns), max_new_tokens
            )
            model_scores.append(rouge_l(text, refs))
            model_len.append(len(text.split()))
    out = {
        "dialogues": len(dialogs),
        "lead2_rougeL": round(statistics.mean(lead_scores), 2),
        "reference_words": round(statistics.mean(ref_len), 1),
    }
    if model is not None:
        out.update(rougeL=round(statistics.mean(model_scores), 2), words=round(statistics.mean(model_len), 1))
    return out


# The sceptic's baselines for reply, computed on the same held-out turns: a fixed polite template (what a canned
# macro sends; written by hand before any reply figure was seen) and echoing the conversation's previous agent turn.
CANNED_REPLY = (
    "Hi there! We're sorry to hear that. Please send us a DM with more details and we'll look into this for you."
)


def reply_turns(dialog: dict) -> tuple[list[Turn], list[int]]:
    """A dialogue's turns and the positions of its agent turns that follow at least one turn (what reply predicts)."""
    turns = turns_of(dialog)
    return turns, [k for k, t in enumerate(turns) if t.speaker is Speaker.AGENT and k > 0]


def previous_agent_turn(turns: list[Turn], k: int) -> str:
    """The last agent turn before position k ("" when there is none): the echo baseline."""
    return next((t.text for t in reversed(turns[:k]) if t.speaker is Speaker.AGENT), "")


def reference_nll(
    model, tokenizer, messages: list[dict], answer: str, max_prompt: int = 448, max_answer: int = 96
) -> tuple[float, int]:
    """Summed next-token NLL (nats) of `answer` (and its end-of-turn token) after the prompt, and its token count,
    tokenized and cut exactly as in training (`data.encode`)."""
    import torch

    from serving.training.data import encode

    ids, labels, _ = encode(tokenizer, messages, answer, max_prompt=max_prompt, max_answer=max_answer)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, :-1].float()
    target = torch.tensor(labels[1:])
    mask = target != -100
    nll = torch.nn.functional.cross_entropy(logits[mask], target[mask], reduction="sum")
    return float(nll), int(mask.sum())


def eval_reply(
    valid: Path, model, tokenizer, limit: int | None = None, max_new_tokens: int = 64, progress: bool = True
) -> dict:
    """reply on held-out dialogues (the first `limit` of `valid`), two figures:
    - ROUGE-L F (stemming) of the model's greedy next agent turn against the real one, on the second agent turn of
      each dialogue that has two (the turn fixed in datasets/reply/README.md), with the canned-template and
      echo-the-previous-agent-turn baselines on the same turns;
    - token-level perplexity of the real agent turn given the conversation so far, over every agent turn after the
      first turn of those dialogues (teacher forcing; total NLL / total tokens, the end-of-turn token included)."""
    import math

    from tqdm import tqdm

    scores, canned, echo, words, ref_words = [], [], [], [], []
    nll, tokens, nll_turns = 0.0, 0, 0
    for i, d in enumerate(tqdm(read_jsonl(valid)[:limit], desc="eval reply", disable=not progress)):
        turns, agent_at = reply_turns(d)
        instruction = tenant_instruction(Task.REPLY, i)
        for k in agent_at:
            total, count = reference_nll(model, tokenizer, compose(Task.REPLY, instruction, turns[:k]), turns[k].text)
            nll, tokens, nll_turns = nll + total, tokens + count, nll_turns + 1
        if len(agent_at) < 2:
            continue
        k = agent_at[1]
        reference = [turns[k].text]
        text = greedy(model, tokenizer, compose(Task.REPLY, instruction, turns[:k]), max_new_tokens)
        scores.append(rouge_l(text, reference))
        canned.append(rouge_l(CANNED_REPLY, reference))
        echo.append(rouge_l(previous_agent_turn(turns, k), reference))
        words.append(len(text.split()))
        ref_words.append(len(turns[k].text.split()))
    if not scores:
        raise ValueError(f"{valid}: no dialogue with two agent turns to evaluate reply on")
    return {
        "turns": len(scores),
        "rougeL": round(statistics.mean(scores), 2),
        "canned_rougeL": round(statistics.mean(canned), 2),
        "echo_rougeL": round(statistics.mean(echo), 2),
        "words": round(statistics.mean(words), 1),
        "reference_words": round(statistics.mean(ref_words), 1),
        "nll_turns": nll_turns,
        "nll_tokens": tokens,
        "mean_nll": round(nll / tokens, 4),
        "perplexity": round(math.exp(nll / tokens), 2),
    }
