"""Prompt economy: tokens a model reads per request with the compiled tenant instruction, against a generic prompt.

    python benchmarks/prompt_economy.py [--tenant manifests/samples/northbank.yaml] [--out results/prompt_economy.json]

Both sides are counted with the same tokenizer, SmolLM2-135M-Instruct's (the prepared model folder), over the chat
messages rendered with the model's own chat template (`apply_chat_template`, generation prompt added), so role markers
count on both sides.

- compiled (what Switchboard sends): for summarize, score-quality and reply, `serving.tasks.prompts.compose` over the
  instruction `serving.profiles.compiler.compile_profile` builds for the tenant; redact and classify-intent run no
  generative model (Presidio + spaCy, and an embedding classifier), so the input alone is counted (no template); the size of
  their compiled instruction text (what the tenant status reports) is listed for reference.
- generic (the instruction-heavy alternative): one system prompt carrying all the tenant's knowledge — every
  instruction, the glossary, the full intent taxonomy with descriptions and every example, the full rubric with
  weights, the redaction policy — plus the output format of each task and a task line, then the same input.

Typical input: the median over real inputs of each task's token count (BANKING77 test utterances for classify-intent,
Presidio synthetic texts for redact, the ABCD sample conversations' customer/agent turns for the generative tasks);
the input whose size is the median is the one used on both sides.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import DATA, MODEL_DIR, RESULTS, ROOT, machine, print_provenance, sha256, write_result  # noqa: E402

sys.path.insert(0, str(ROOT))

TASKS = ("redact", "classify-intent", "summarize", "score-quality", "reply")
TASK_LINES = {
    "redact": "Task: redact the text below according to the redaction policy and return only the redacted text.",
    "classify-intent": "Task: classify the customer's message into exactly one intent of the taxonomy. "
                       "Answer with JSON only: {\"label\": <intent name>}.",
    "summarize": "Task: summarize the conversation below following the summary guideline.",
    "score-quality": "Task: score the agent in the conversation below against the quality rubric.",
    "reply": "Task: write the next agent reply in the conversation below following the reply guideline.",
}


def generic_system(spec) -> str:
    """Everything the tenant's profile knows, written out the way an instruction-heavy prompt carries it."""
    from serving.tasks.prompts import _SCORE_FORMAT

    name = spec.display_name or spec.tenant_id
    lines = [f"You are the customer-service AI assistant of {name}. Follow every company policy below exactly.", "",
             "## Company guidelines"]
    lines += [f"- {task.value}: {text}" for task, text in spec.instructions.items()]
    lines += ["", "## Glossary"] + [f"- {g.term}: {g.definition}" for g in spec.glossary]
    if spec.intents:
        lines += ["", "## Intent taxonomy (use exactly these labels)"]
        for intent in spec.intents.labels:
            lines.append(f"- {intent.name}: {intent.description}")
            lines += [f"  example: {example}" for example in intent.examples]
    lines += ["", "## Quality rubric"]
    lines += [f"- {c.id} (weight {c.weight:g}): {c.description}" for c in spec.rubric]
    policy = spec.redaction
    lines += ["", "## Redaction policy",
              f"Before anything else, find these personal data types and replace each value ({policy.mode.value} mode, "
              f"e.g. <PERSON>): {', '.join(policy.entities)}. Ignore detections you are less than "
              f"{policy.score_threshold:g} confident about. Never repeat a redacted value.",
              "", "## Output formats",
              "- redact: the text with every value replaced, nothing else.",
              "- classify-intent: JSON {\"label\": <intent name>}.",
              "- summarize: plain prose.", f"- score-quality: {_SCORE_FORMAT}", "- reply: the agent's next message only."]
    return "\n".join(lines)


def compiled_messages(task: str, profile, text: str, turns) -> list[dict]:
    from serving.vocabulary.catalog import Task
    from serving.tasks.prompts import compose

    t = Task(task)
    instruction = profile.instructions[t].text
    return compose(t, instruction, turns, [c.id for c in profile.spec.rubric])


def generic_messages(task: str, system: str, text: str, turns) -> list[dict]:
    from serving.vocabulary.conversation import render

    body = text if task in ("redact", "classify-intent") else f"Conversation:\n{render(turns)}"
    return [{"role": "system", "content": f"{system}\n\n{TASK_LINES[task]}"}, {"role": "user", "content": body}]


def abcd_turns(path: Path):
    from serving.vocabulary.conversation import Speaker, Turn

    conversations = json.loads(path.read_text())
    return [[Turn(speaker=Speaker(s), text=t) for s, t in c["original"] if s in ("agent", "customer") and t.strip()]
            for c in conversations]


def median_item(items: list, size) -> tuple:
    sizes = [size(i) for i in items]
    target = statistics.median_low(sizes)
    return items[sizes.index(target)], target, len(items)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenant", type=Path, default=ROOT / "manifests" / "samples" / "northbank.yaml")
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR, help="folder with the tokenizer and chat template")
    parser.add_argument("--out", type=Path, default=RESULTS / "prompt_economy.json")
    args = parser.parse_args(argv)
    from transformers import AutoTokenizer

    from serving.profiles import load_documents
    from serving.profiles.compiler import compile_profile

    sources = {"banking77": DATA / "banking77" / "test.csv", "presidio": DATA / "presidio_synth" / "synth_dataset_v2.json",
               "abcd": DATA / "abcd" / "abcd_sample.json", "tenant": args.tenant,
               "tokenizer": args.model_dir / "tokenizer.json"}
    files = {str(p): sha256(p) for p in sources.values()}
    info = machine()
    print_provenance("prompt economy", files, info)
    tokenizer = AutoTokenizer.from_pretrained(str(args.model_dir))
    count = lambda text: len(tokenizer.encode(text, add_special_tokens=False))  # noqa: E731
    chat = lambda messages: len(tokenizer.apply_chat_template(  # noqa: E731
        messages, tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"])
    [doc] = load_documents(args.tenant.read_text(encoding="utf-8"), str(args.tenant))
    profile = compile_profile(doc.metadata.name, doc.spec, count)
    system = generic_system(doc.spec)

    with sources["banking77"].open(newline="", encoding="utf-8") as f:
        utterances = [row["text"] for row in csv.DictReader(f)]
    pii = [r["full_text"] for r in json.loads(sources["presidio"].read_text())]
    conversations = abcd_turns(sources["abcd"])
    from serving.vocabulary.conversation import render

    inputs = {"classify-intent": median_item(utterances, count), "redact": median_item(pii, count)}
    conversation = median_item(conversations, lambda turns: count(render(turns)))
    rows = {}
    for task in TASKS:
        if task in inputs:
            (text, input_tokens, pool), turns = inputs[task], None
        else:
            (turns, input_tokens, pool), text = conversation, None
        if task == "reply":  # the next agent turn: the conversation up to its last customer turn
            last = max(i for i, t in enumerate(turns) if t.speaker.value == "customer")
            turns = turns[: last + 1]
            input_tokens = count(render(turns))
        # redact and classify-intent: no chat model, no template; the input is all that is read
        compiled = count(text) if task in inputs else chat(compiled_messages(task, profile, text, turns))
        generic = chat(generic_messages(task, system, text, turns))
        instruction_text = profile.instructions[_task(task)].text
        rows[task] = {"typical_input_tokens": input_tokens, "input_pool": pool,
                      "compiled_instruction_tokens": count(instruction_text),
                      "compiled_prompt_tokens": compiled, "generic_prompt_tokens": generic,
                      "ratio_generic_over_compiled": round(generic / compiled, 1),
                      "model_reads_instruction": task not in inputs}
    system_tokens = count(system)
    label_tokens = statistics.median_low([count(json.dumps({"label": i.name})) for i in doc.spec.intents.labels])
    print(f"tenant {doc.metadata.name}; generic system prompt {system_tokens} tokens; tokenizer {args.model_dir.name}")
    print(f"{'task':16} {'input':>6} {'compiled instr':>15} {'compiled prompt':>16} {'generic prompt':>15} {'ratio':>7}")
    for task, r in rows.items():
        print(f"{task:16} {r['typical_input_tokens']:>6} {r['compiled_instruction_tokens']:>15} "
              f"{r['compiled_prompt_tokens']:>16} {r['generic_prompt_tokens']:>15} {r['ratio_generic_over_compiled']:>6}x")
    write_result(args.out, {"benchmark": "prompt_economy", "files_sha256": files, "machine": info,
                            "tenant": doc.metadata.name, "tokenizer": str(args.model_dir),
                            "generic_system_tokens": system_tokens, "label_answer_tokens": label_tokens,
                            "generic_system_prompt": system, "tasks": rows})
    return 0


def _task(name: str):
    from serving.vocabulary.catalog import Task

    return Task(name)


if __name__ == "__main__":
    raise SystemExit(main())
