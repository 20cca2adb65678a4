"""Batched greedy generation for evaluation.

Prompts are encoded with LLaMA-Factory's own template code (the one training used), so the model is
evaluated on exactly the format it was trained on. Generation is batched with left padding;
prompts are sorted by length first so a batch wastes little on padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm


@dataclass
class Example:
    id: str
    system: str
    messages: list[dict]  # [{"role": "user"|"assistant"|"function"|"observation", "content"}...], ends with the user turn
    label: str
    tools: str = ""  # the row's tools (JSON string) for function calling; the template writes them into the system


def load_model(model_path: str, weights: bool = True):
    """(tokenizer, model in eval mode); weights=False loads only the tokenizer (model is None)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=False)
    if not weights:
        return tokenizer, None
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32, trust_remote_code=False)
    model.eval()
    return tokenizer, model


def require_adapter(adapter_path: Path, hint: str = "train first: make sft") -> Path:
    if not (Path(adapter_path) / "adapter_config.json").is_file():
        raise SystemExit(f"error: no LoRA adapter in {adapter_path} ({hint})")
    return Path(adapter_path)


def attach_adapter(model, adapter_path: Path):
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(require_adapter(adapter_path))).eval()


def get_template(tokenizer, template_name: str):
    """LLaMA-Factory's template object; it also fixes the tokenizer (eos = the template's stop word)."""
    from llamafactory.data.template import get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments

    return get_template_and_fix_tokenizer(tokenizer, DataArguments(template=template_name))


def encode_prompt(tokenizer, template, example: Example) -> list[int]:
    messages = example.messages + [{"role": "assistant", "content": ""}]
    prompt_ids, _ = template.encode_oneturn(tokenizer, messages, example.system, example.tools or None)
    return prompt_ids


def stop_token_ids(tokenizer, template) -> list[int]:
    ids = {tokenizer.eos_token_id}
    for word in getattr(template, "stop_words", []) or []:
        token_id = tokenizer.convert_tokens_to_ids(word)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
            ids.add(token_id)
    return sorted(i for i in ids if i is not None)


def generate(model, tokenizer, prompts: list[list[int]], *, max_new_tokens: int, batch_size: int,
             stop_ids: list[int], desc: str = "generate") -> list[str]:
    """Greedy completions for token-id prompts, decoded, in the order given."""
    ids = generate_ids(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size,
                       stop_ids=stop_ids, desc=desc)
    return [tokenizer.decode(row, skip_special_tokens=True).strip() for row in ids]


@torch.inference_mode()
def generate_ids(model, tokenizer, prompts: list[list[int]], *, max_new_tokens: int, batch_size: int,
                 stop_ids: list[int], desc: str = "generate") -> list[list[int]]:
    """Greedy new-token ids for each prompt (up to and including a stop token), in the order given."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    outputs: list[list[int]] = [[] for _ in prompts]
    for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch"):
        batch = order[start:start + batch_size]
        width = max(len(prompts[i]) for i in batch)
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):
            ids = prompts[i]
            input_ids[row, width - len(ids):] = torch.tensor(ids)
            attention[row, width - len(ids):] = 1
        generated = model.generate(
            input_ids=input_ids, attention_mask=attention, max_new_tokens=max_new_tokens,
            do_sample=False, num_beams=1, eos_token_id=stop_ids, pad_token_id=pad_id,
        )
        for row, i in enumerate(batch):
            new = generated[row, width:].tolist()
            cut = next((k + 1 for k, token in enumerate(new) if token in stop_ids), len(new))
            outputs[i] = new[:cut]  # what follows the stop token is padding
    return outputs
