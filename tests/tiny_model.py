"""Build a tiny random Qwen3 with a ChatML byte-level BPE tokenizer, offline, in about a second.

It has the special tokens LLaMA-Factory's qwen3 / qwen3_nothink / qwen templates use, so the
production templates run unchanged; its weights are random, so only mechanics are tested with it.
"""

from __future__ import annotations

import json
from pathlib import Path

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>",
                  "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]


def corpus() -> list[str]:
    bank = json.loads((Path(__file__).resolve().parent.parent / "data/bank/question_bank.json").read_text("utf-8"))
    texts = []
    for area in bank["areas"]:
        for topic in area["topics"]:
            for level in topic["chain"]:
                texts += [level["q"], level["good"], level["partial"]]
    return texts + ["system user assistant 综合评分 点评 面试官 候选人 0123456789 /100"]


def build_tiny_qwen3(folder: Path) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=800, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus(), trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        additional_special_tokens=SPECIAL_TOKENS[1:2] + SPECIAL_TOKENS[3:],
                                        model_input_names=["input_ids", "attention_mask"])
    tokenizer.save_pretrained(folder)

    torch.manual_seed(0)
    config = Qwen3Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=4096,
                         tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
    Qwen3ForCausalLM(config).save_pretrained(folder)
    return folder
