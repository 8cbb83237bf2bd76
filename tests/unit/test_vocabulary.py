"""The shared vocabulary: one way to describe a validation error, and the engine-kind and priority-class enums."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from serving.engines import ENGINE_KINDS, create_engine
from serving.errors import ConfigError
from serving.vocabulary import GENERATIVE_ENGINES, EngineKind, PriorityClass, describe, first_field
from serving.vocabulary.validation import where


class _Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    speaker: str

    @field_validator("speaker")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in ("customer", "agent"):
            raise ValueError(f"unknown speaker {value!r}")
        return value


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    turns: list[_Turn]
    engine: EngineKind = EngineKind.TRANSFORMERS
    klass: PriorityClass = PriorityClass.INTERACTIVE


def _error(data: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        _Body.model_validate(data)
    return caught.value


def test_describe_names_each_field_as_written_and_says_what_is_wrong():
    exc = _error({"turns": [{"speaker": "agent"}, {"speaker": "robot", "txt": 1}]})
    assert describe(exc, "body") == "body.turns[1].speaker: unknown speaker 'robot'; body.turns[1].txt: unknown field"
    assert first_field(exc, "body") == "body.turns[1].speaker"
    assert describe(exc).startswith("turns[1].speaker: ")  # no root: the path starts at the first field


def test_describe_of_the_object_itself_and_a_custom_name():
    exc = _error([])  # not a mapping at all
    assert describe(exc).startswith("(root): ") and describe(exc, "request").startswith("request: ")
    named = describe(_error({"turns": [], "engine": "tpu"}), name=lambda loc: "ENV_" + "__".join(map(str, loc)).upper())
    assert named == "ENV_ENGINE: Input should be 'transformers', 'vllm', 'fake' or 'none'"
    assert where(("a", 0, "b")) == "a[0].b" and where((), "spec") == "spec"


def test_enums_take_their_strings_and_compare_equal_to_them():
    body = _Body.model_validate({"turns": [], "engine": "fake", "klass": "batch"})
    assert body.engine is EngineKind.FAKE and body.engine == "fake" and f"{body.engine}" == "fake"
    assert body.klass is PriorityClass.BATCH and {"batch": 1}[body.klass] == 1
    assert describe(_error({"turns": [], "klass": "urgent"})) == "klass: Input should be 'interactive' or 'batch'"


def test_every_generative_engine_kind_is_one_create_engine_builds():
    assert set(ENGINE_KINDS) == {k.value for k in GENERATIVE_ENGINES} == set(EngineKind) - {EngineKind.NONE}
    assert create_engine(EngineKind.FAKE, "fake").kind is EngineKind.FAKE
    with pytest.raises(ConfigError, match="expected one of transformers, vllm, fake"):
        create_engine(EngineKind.NONE, "fake")
