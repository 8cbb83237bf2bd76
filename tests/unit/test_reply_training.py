"""reply training and evaluation: examples are TweetSumm train agent turns rendered as the router composes a reply
request, nothing held out is trained on, the figures' baselines and perplexity are computed right, and the shipped
adapter's card matches its data files and passes the gate. Real data files, the real compiler and composer; the one
stand-in is a model with constant logits in the perplexity test (its NLL is log(vocabulary) per token by
construction, which checks which tokens are scored), because a real model's NLL has no known value to assert."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from serving.pipeline.steps import job_for
from serving.profiles.compiler import approximate_counter, compile_profile
from serving.profiles.model import TenantProfileSpec
from serving.vocabulary.catalog import Task
from serving.vocabulary.conversation import Speaker, Turn
from serving.training.commands import DATA, DEFAULTS
from serving.training.data import _TENANTS, read_jsonl, render_examples, sha256, turns_of
from serving.training.evaluate import CANNED_REPLY, previous_agent_turn, reference_nll, reply_turns

REPO = Path(__file__).resolve().parents[2]
TRAIN, VALID = (REPO / p for p in DATA[Task.REPLY])
ADAPTER = REPO / "adapters" / "reply"
needs_data = pytest.mark.skipif(not TRAIN.is_file() or not VALID.is_file(), reason="../shared/data/tweetsumm is absent")


@pytest.fixture(scope="module")
def examples():
    return render_examples(Task.REPLY, TRAIN)


@needs_data
def test_examples_are_agent_turns_rendered_as_the_router_composes_a_reply_request(examples):
    dialogs = read_jsonl(TRAIN)
    assert len(examples) == 1757
    for index in range(3):  # the three named training tenants, glossary included
        name, glossary = _TENANTS[index]
        spec = TenantProfileSpec.model_validate({
            "tenantId": name.lower().replace(" ", "-"), "displayName": name, "apiKey": {"sha256": "0" * 64},
            "tasks": [Task.REPLY.value], "glossary": [{"term": t, "definition": d} for t, d in glossary]})
        profile = compile_profile(spec.tenant_id, spec, approximate_counter)
        example = next(e for e in examples if e.messages[0]["content"] == profile.instructions[Task.REPLY].text)
        # the conversation so far is a prefix of a train dialogue whose next turn is the agent's answer
        history = [Turn(speaker=Speaker.AGENT if m["role"] == "assistant" else Speaker.CUSTOMER, text=m["content"])
                   for m in example.messages[1:]]
        job = job_for(profile, Task.REPLY, history, None)
        assert [dict(m) for m in job.messages] == [dict(m) for m in example.messages]
        source = next(d for d in map(turns_of, dialogs) if d[:len(history)] == history and len(d) > len(history))
        assert source[len(history)] == Turn(speaker=Speaker.AGENT, text=example.answer)
        assert all(f"{t} = {d}" in example.messages[0]["content"] for t, d in glossary)


@needs_data
def test_nothing_held_out_is_trained_on(examples):
    """TweetSumm valid (the reported figure) is not the training file and shares no dialogue or agent turn with the
    examples; the Bitext rows (held out in datasets/reply) are not in the training data at all."""
    assert TRAIN.name == "train.jsonl" and VALID.name == "valid.jsonl"
    valid_agent = {t.text for d in read_jsonl(VALID) for t in turns_of(d) if t.speaker is Speaker.AGENT}
    assert {d["dialog_id"] for d in read_jsonl(TRAIN)}.isdisjoint(d["dialog_id"] for d in read_jsonl(VALID))
    assert not valid_agent & {e.answer for e in examples}
    assert not valid_agent & {m["content"] for e in examples for m in e.messages}


def test_the_echo_baseline_is_the_previous_agent_turn_and_reply_predicts_agent_turns_after_the_first():
    turns = [Turn(speaker=Speaker.AGENT, text="Hi, how can we help?"), Turn(speaker=Speaker.CUSTOMER, text="Late parcel"),
             Turn(speaker=Speaker.AGENT, text="Sorry! Order number?"), Turn(speaker=Speaker.CUSTOMER, text="123"),
             Turn(speaker=Speaker.AGENT, text="Thanks, it ships today.")]
    dialog = {"turns": [{"speaker": t.speaker.value, "text": t.text} for t in turns] + [{"speaker": "agent", "text": " "}]}
    assert reply_turns(dialog) == (turns, [2, 4])
    assert previous_agent_turn(turns, 4) == "Sorry! Order number?"
    assert previous_agent_turn(turns, 0) == ""
    assert CANNED_REPLY.startswith("Hi there!")


class _ConstantLogits:
    """Stand-in model: the same logits at every position, so each scored token costs exactly log(vocabulary)."""

    def __init__(self, vocabulary: int):
        self.vocabulary = vocabulary

    def __call__(self, input_ids):
        import torch

        class Out:
            logits = torch.zeros(1, input_ids.shape[1], self.vocabulary)
        return Out()


def test_perplexity_scores_exactly_the_reply_tokens_and_the_end_of_turn():
    from transformers import AutoTokenizer

    from serving.models import DEFAULT_MODEL, ModelStore, default_cache_dir

    base = default_cache_dir() / DEFAULT_MODEL
    if not base.is_dir():
        pytest.skip("the base model is not prepared (make models)")
    tokenizer = AutoTokenizer.from_pretrained(ModelStore(default_cache_dir()).prepare(DEFAULT_MODEL, progress=False))
    answer = "We're sorry, please DM us your order number."
    total, count = reference_nll(_ConstantLogits(len(tokenizer)), tokenizer,
                                 [{"role": "system", "content": "Write the next agent reply for ShopRight."},
                                  {"role": "user", "content": "Where is my parcel?"}], answer)
    assert count == len(tokenizer(answer, add_special_tokens=False)["input_ids"]) + 1
    assert total / count == pytest.approx(math.log(len(tokenizer)), rel=1e-5)


def test_reply_training_defaults_fit_the_budget_and_match_the_evaluation_cut():
    defaults = DEFAULTS[Task.REPLY]
    assert defaults["budget_minutes"] <= 45 and defaults["max_prompt"] == 448  # evaluate.greedy cuts at 448 too
    assert defaults["checkpoint_every"] > 0


# ---- the shipped adapter ------------------------------------------------------------------------------------------


def _card() -> tuple[dict, dict, str]:
    if not (ADAPTER / "metrics.json").is_file():
        pytest.skip("no reply adapter in adapters/reply")
    return (json.loads((ADAPTER / "training.json").read_text()), json.loads((ADAPTER / "metrics.json").read_text()),
            (ADAPTER / "README.md").read_text())


@needs_data
def test_the_card_names_the_data_files_it_was_trained_and_measured_on_with_their_sha256():
    training, metrics, card = _card()
    assert training["data"] == {str(DATA[Task.REPLY][0]): sha256(TRAIN)}
    assert metrics["heldout"] == {str(DATA[Task.REPLY][1]): sha256(VALID)}
    for digest in (sha256(TRAIN), sha256(VALID)):
        assert digest in card
    assert training["config"]["seed"] == 0 and training["config"]["threads"] == 1


def test_the_reply_adapter_is_configured_by_default_and_passes_the_gate(monkeypatch):
    """`make run` (local mode, from the repository root) gives reply its own deployment with the shipped adapter."""
    from serving.app import accepted_adapters
    from serving.models.adapters import check_adapter
    from serving.settings import Settings

    _, metrics, _ = _card()
    monkeypatch.chdir(REPO)
    configured = Settings().models.adapters["reply"]
    assert Path(configured).resolve() == ADAPTER.resolve()
    assert check_adapter(ADAPTER) is None
    assert metrics["adapter"] > metrics["base"] and metrics["metric"] == "rougeL"
    assert metrics["adapter"] > max(metrics["baselines"].values())
    assert metrics["guards"]["perplexity"]["adapter"] < metrics["guards"]["perplexity"]["base"]
    assert accepted_adapters({"reply": configured})["reply"] == str(ADAPTER.resolve())
