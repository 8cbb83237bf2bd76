"""A LoRA adapter on every engine that can run one here: the engine serves base + adapter, not the base alone.

Nothing is faked: a random LoRA (peft, `init_lora_weights=False`, so it changes the model's output) is built on the
tiny random Llama for the transformers engine, and on SmolLM2 for vLLM (skipped where vLLM is not importable; the
main venv cannot hold it: `.venv-vllm/bin/python -m pytest tests/contract -k vllm`). The fake engine has no weights
and no adapter case.
"""

from __future__ import annotations

import importlib.util

import pytest

from serving.engines import GenerationRequest, SamplingParams, create_engine
from serving.errors import ModelNotReady
from serving.models import (
    DEFAULT_MODEL,
    ModelStore,
    build_tiny_llama,
    default_cache_dir,
)

HAVE_VLLM = importlib.util.find_spec("vllm") is not None
HAVE_PEFT = importlib.util.find_spec("peft") is not None
pytestmark = pytest.mark.skipif(not HAVE_PEFT, reason="peft is not installed")


def _random_lora(base, dest, rank: int = 8):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base, local_files_only=True)
    config = LoraConfig(r=rank, lora_alpha=4 * rank, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    peft_model.save_pretrained(dest)
    return dest


def _request() -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": "Where is my parcel? It is late."}],
                             sampling=SamplingParams(max_tokens=8))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-lora")
    base = build_tiny_llama(root / "model")
    return base, _random_lora(base, root / "adapter")


async def test_transformers_serves_base_plus_adapter(tiny):
    base, adapter = tiny
    plain = create_engine("transformers", base)
    tuned = create_engine("transformers", base, adapter=adapter)
    try:
        a, b = await plain.generate(_request()), await tuned.generate(_request())
        assert b.tokens_out >= 1 and b.tokens_in == a.tokens_in
        assert b.text != a.text, "the adapter changes what the model writes"
        assert tuned.adapter == str(adapter)
    finally:
        await plain.close()
        await tuned.close()


def test_transformers_refuses_a_folder_without_an_adapter(tiny, tmp_path):
    base, _ = tiny
    with pytest.raises(ModelNotReady, match="no LoRA adapter"):
        create_engine("transformers", base, adapter=tmp_path)


@pytest.mark.skipif(not HAVE_VLLM, reason="vllm is not importable here: .venv-vllm/bin/python -m pytest tests/contract")
async def test_vllm_serves_base_plus_adapter_as_a_lora_request(tmp_path):
    smol = ModelStore(default_cache_dir()).prepare(DEFAULT_MODEL, progress=False)
    adapter = _random_lora(smol, tmp_path / "adapter")
    plain = create_engine("vllm", smol, max_model_len=1024, kv_cache_gib=0.5)
    try:
        base_text = (await plain.generate(_request())).text
    finally:
        await plain.close()
    tuned = create_engine("vllm", smol, max_model_len=1024, kv_cache_gib=0.5, adapter=adapter)
    try:
        assert (await tuned.generate(_request())).text != base_text
    finally:
        await tuned.close()


async def test_a_broken_adapter_on_the_transformers_engine_leaves_the_last_accepted_one_serving(tiny, tmp_path):
    """Real load failure (a corrupt safetensors file behind figures that pass the gate): the deployment's start-up
    falls back to the last accepted adapter, which writes what that adapter writes, and says why."""
    import json
    import shutil

    from serving.deployments.generate import start_engine

    base, good = tiny
    (good / "metrics.json").write_text(json.dumps({"metric": "rougeL", "adapter": 30.0, "base": 18.5}))
    broken = tmp_path / "broken"
    shutil.copytree(good, broken)
    (broken / "adapter_model.safetensors").write_bytes(b"not a safetensors file")
    engine, choice = start_engine("transformers", base, {"adapter": str(broken), "fallback_adapter": str(good)})
    reference = create_engine("transformers", base, adapter=good)
    try:
        assert (choice.serving, choice.accepted) == (str(good), False)
        assert f"adapter {broken} could not be loaded" in choice.reason
        assert (await engine.generate(_request())).text == (await reference.generate(_request())).text
    finally:
        await engine.close()
        await reference.close()
