"""score-quality training and evaluation records rendered exactly as served: the tenant's compiled instruction
(glossary and rubric), the composer's prompt, the engine's JSON instruction, the rubric's output schema with the
conversation's quotes, and the answer cut into the pieces the constrained decoder feeds the model (pure).

The constrained decoder (serving/engines/transformers_guided.py `GuidedDecoder`) tokenizes the fixed text between two
decisions in one piece and each chosen option on its own; the training answer is tokenized the same way, so the
adapter learns the token sequences it is scored on at serving time.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from serving.engines import structured
from serving.engines.base import with_json_instruction
from serving.profiles.compiler import approximate_counter, compile_profile
from serving.profiles.model import TenantProfileSpec
from serving.tasks.prompts import Messages, compose
from serving.tasks.quality import evidence_quotes, output_schema
from serving.vocabulary.catalog import Task
from serving.vocabulary.conversation import Speaker, Turn

RUBRICS = Path(__file__).resolve().parents[2] / "datasets" / "quality" / "rubrics.json"
_NO_KEY = "0" * 64
# Loss weight of the verdict tokens: the verdict is the decision the gate scores; the skeleton around it is fixed by
# the decoder and the evidence is a copy, together ten times as many tokens.
VERDICT_WEIGHT = 4.0  # the specs here are never used to authenticate; the model needs a syntactically valid one


@dataclass(frozen=True)
class QualityItem:
    """One record as the model sees it: prompt messages, the output schema, the gold answer and its pieces."""

    record_id: str
    conversation: str
    tenant: str
    turns: tuple[Turn, ...]
    request: tuple[dict[str, str], ...]  # what the router sends the engine (the composer's messages)
    schema: dict
    gold: tuple[tuple[str, str, str], ...]  # (criterion, verdict, evidence) in rubric order

    @property
    def messages(self) -> Messages:
        """What the model reads: the request with the engine's JSON instruction in the system turn."""
        return with_json_instruction([dict(m) for m in self.request], self.schema)

    def answer(self) -> str:
        return structured.dump({"criteria": [{"criterion": c, "verdict": v, "evidence": e} for c, v, e in self.gold]})


def tenant_specs(path: Path = RUBRICS) -> dict[str, TenantProfileSpec]:
    """The data set's tenants as TenantProfile specs (their rubric and glossary, score-quality enabled)."""
    tenants = json.loads(Path(path).read_text())["tenants"]
    return {
        name: TenantProfileSpec.model_validate(
            {
                "tenantId": name,
                "displayName": t["display_name"],
                "apiKey": {"sha256": _NO_KEY},
                "tasks": [Task.SCORE_QUALITY.value],
                "rubric": t["rubric"],
                "glossary": t["glossary"],
            }
        )
        for name, t in tenants.items()
    }


def request_messages(spec: TenantProfileSpec, turns: list[Turn]) -> Messages:
    """The chat messages the router sends for a score-quality request of this tenant."""
    compiled = compile_profile(spec.tenant_id, spec, approximate_counter)
    return compose(
        Task.SCORE_QUALITY, compiled.instructions[Task.SCORE_QUALITY].text, turns, [c.id for c in spec.rubric]
    )


TWEETSUMM = Path("../shared/data/tweetsumm")
EVIDENCE_HASH = "sha256:"  # evidence given by the SHA-256 of the agent sentence, where the text may not be copied


def resolve_record(record: dict, tweetsumm: Path = TWEETSUMM) -> dict:
    """A labelled record with its text in place: a `turns_ref` (TweetSumm split, dialogue, turn indices) becomes the
    turns, read from the shared data folder, and an evidence `sha256:<hex>` becomes the agent sentence with that
    hash (TweetSumm's tweet text may be used here but not redistributed, so the data set stores neither)."""
    ref = record.get("turns_ref")
    if ref is None:
        return record
    turns = _tweetsumm_turns(tweetsumm, ref["split"], ref["dialog_id"], ref["turn_indices"])
    by_hash = {_sha256(q): q for q in evidence_quotes(list(_turns(turns)))}
    labels = [{**lab, "evidence": _evidence(lab["evidence"], by_hash, record["id"])} for lab in record["labels"]]
    return {**record, "turns": turns, "labels": labels}


def record_turns(record: dict) -> tuple[Turn, ...]:
    """A labelled record's turns (datasets/quality schema), empty ones left out as the router drops them."""
    return _turns(record["turns"])


def _turns(turns: list[dict]) -> tuple[Turn, ...]:
    return tuple(Turn(speaker=Speaker(t["speaker"]), text=t["text"]) for t in turns if t["text"].strip())


def _evidence(value: str, by_hash: dict[str, str], record_id: str) -> str:
    if not value.startswith(EVIDENCE_HASH):
        return value
    if value[len(EVIDENCE_HASH) :] not in by_hash:
        raise KeyError(f"{record_id}: no agent sentence has the evidence hash {value}")
    return by_hash[value[len(EVIDENCE_HASH) :]]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _tweetsumm_turns(folder: Path, split: str, dialog_id: str, indices: list[int]) -> list[dict]:
    dialogs = _tweetsumm_split(folder / f"{split}.jsonl")
    if dialog_id not in dialogs:
        raise KeyError(f"{folder / split}.jsonl: no dialogue {dialog_id}")
    return [dialogs[dialog_id][i] for i in indices]


@functools.cache
def _tweetsumm_split(path: Path) -> dict[str, list[dict]]:
    rows = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return {row["dialog_id"]: row["turns"] for row in rows}


def record_gold(record: dict) -> tuple[tuple[str, str, str], ...]:
    """A labelled record's (criterion, verdict, evidence) in rubric order."""
    return tuple((lab["id"], lab["verdict"], lab["evidence"]) for lab in record["labels"])


def render_record(record: dict, specs: dict[str, TenantProfileSpec]) -> QualityItem:
    spec = specs[record["tenant"]]
    turns = record_turns(record)
    schema = output_schema(list(spec.rubric), evidence_quotes(list(turns)))
    return QualityItem(
        record["id"],
        record["conversation"],
        record["tenant"],
        turns,
        tuple(request_messages(spec, list(turns))),
        schema,
        record_gold(record),
    )


def guided_pieces(schema: dict, answer: str) -> list[str]:
    """`answer` cut where the constrained decoder cuts it: fixed text up to a decision (with the options' shared
    start), then the chosen option's rest, and so on; the last piece is the closing text. Raises ValueError when the
    answer is not one the schema's decoder can write (e.g. a quote that is not among the schema's options)."""
    pieces: list[str] = []
    pending, pos = "", 0

    def answer_step(step: structured.Step):
        nonlocal pending, pos
        if isinstance(step, structured.Emit):
            if not answer.startswith(step.text, pos):
                raise ValueError(f"answer differs from the schema's fixed text at char {pos}")
            pending, pos = pending + step.text, pos + len(step.text)
            return None
        if not isinstance(step, structured.Pick):
            raise ValueError("only closed choices are supported in score-quality answers")
        fits = [i for i, option in enumerate(step.options) if answer.startswith(option, pos)]
        if not fits:
            raise ValueError(f"no option of the schema matches the answer at char {pos}")
        index = max(fits, key=lambda i: len(step.options[i]))
        shared = structured.common_prefix(step.options)
        pieces.append(pending + shared)
        pieces.append(step.options[index][len(shared) :])
        pending, pos = "", pos + len(step.options[index])
        return index

    text, _ = structured.run(structured.compile_schema(schema), answer_step)
    if text != answer:
        raise ValueError("answer has text after the schema's value")
    if pending:
        pieces.append(pending)
    return [p for p in pieces if p]


def piece_weights(pieces: list[str]) -> list[float]:
    """The loss weight of each piece: VERDICT_WEIGHT for the verdict options, 1 for the rest."""
    return [VERDICT_WEIGHT if i and pieces[i - 1].endswith('"verdict": "') else 1.0 for i in range(len(pieces))]
