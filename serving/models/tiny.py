"""A tiny random Llama (about 200k parameters) with a locally trained tokenizer, for plumbing tests (about 2 s)."""

from __future__ import annotations

import os
from pathlib import Path

TINY_NAME = "tiny-random-llama"
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_CORPUS = [
    "Hello, thank you for calling. How can I help you today?",
    "I would like a refund for my order, it arrived damaged.",
    "Could you confirm the delivery address and the order number?",
    "Your card ending in 4321 has been blocked for your safety.",
    "I am sorry for the wait. Let me check that for you.",
    "The agent offered an upgrade to the premium plan.",
    "Summarize the conversation in two sentences.",
    "Score the call against the rubric and quote the evidence.",
    'Answer with JSON: {"intent": "refund", "score": 0.9, "met": true}',
    "Is there anything else I can help you with? Have a nice day!",
]


def build_tiny_llama(dest: str | os.PathLike, *, seed: int = 0, vocab_size: int = 512, layers: int = 4) -> Path:
    """Write a random LlamaForCausalLM and its tokenizer (ChatML template) into `dest`; returns `dest`."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    dest = Path(dest)
    tokenizer = _train_tokenizer(vocab_size)
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in _SPECIALS}
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = config.pad_token_id
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return dest


def _train_tokenizer(vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=_SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    raw.train_from_iterator(_CORPUS * 20, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHATML,
        model_max_length=512,
    )
