"""Held-out evaluation of a task model (base, or base + LoRA adapter) against the trivial baselines a sceptic picks:
summarize and reply by ROUGE-L (rouge-score, stemming, F-measure averaged over each dialogue's references)."""

from __future__ import annotations

import statistics
from pathlib import Path

from serving.tasks.catalog import Task
from serving.tasks.conversation import Speaker, Turn
from serving.tasks.prompts import compose
from serving.training.data import read_jsonl, tenant_instruction, turns_of


def rouge_l(prediction: str, references: list[str]) -> float:
    """ROUGE-L F-measure (x100) averaged over the references."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return 100 * statistics.mean(scorer.score(r, prediction)["rougeL"].fmeasure for r in references)


def lead2(turns: list[Turn]) -> str:
    """First customer turn and first agent turn: the trivial summary baseline."""
    first = {}
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
        ids = ids[:64] + ids[-(max_prompt - 64):]
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                             max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.eos_token_id)
    return tokenizer.decode(out[0, len(ids):], skip_special_tokens=True).strip()


def eval_summarize(valid: Path, model=None, tokenizer=None, limit: int | None = None, max_new_tokens: int = 80,
                   progress: bool = True) -> dict:
    """ROUGE-L and mean length (words) of the model's summaries and of lead-2 and the references."""
    from tqdm import tqdm

    dialogs = read_jsonl(valid)[:limit]
    model_scores, lead_scores, model_len, ref_len = [], [], [], []
    for i, d in enumerate(tqdm(dialogs, desc="eval summarize", disable=not progress)):
        turns, refs = turns_of(d), [s for s in d["summaries"] if s.strip()]
        lead_scores.append(rouge_l(lead2(turns), refs))
        ref_len.append(statistics.mean(len(r.split()) for r in refs))
        if model is not None:
            text = greedy(model, tokenizer, compose(Task.SUMMARIZE, tenant_instruction(Task.SUMMARIZE, i), turns), max_new_tokens)
            model_scores.append(rouge_l(text, refs))
            model_len.append(len(text.split()))
    out = {"dialogues": len(dialogs), "lead2_rougeL": round(statistics.mean(lead_scores), 2),
           "reference_words": round(statistics.mean(ref_len), 1)}
    if model is not None:
        out.update(rougeL=round(statistics.mean(model_scores), 2), words=round(statistics.mean(model_len), 1))
    return out


def eval_reply(valid: Path, model, tokenizer, limit: int | None = None, max_new_tokens: int = 64,
               progress: bool = True) -> dict:
    """ROUGE-L of the model's next agent turn against the real one (the second agent turn of each valid dialogue)."""
    from tqdm import tqdm

    scores = []
    for i, d in enumerate(tqdm(read_jsonl(valid)[:limit], desc="eval reply", disable=not progress)):
        turns = turns_of(d)
        agent_at = [k for k, t in enumerate(turns) if t.speaker is Speaker.AGENT and k > 0]
        if len(agent_at) < 2:
            continue
        k = agent_at[1]
        text = greedy(model, tokenizer, compose(Task.REPLY, tenant_instruction(Task.REPLY, i), turns[:k]), max_new_tokens)
        scores.append(rouge_l(text, [turns[k].text]))
    return {"turns": len(scores), "rougeL": round(statistics.mean(scores), 2)}
