"""Batched greedy generation for evaluation.

Prompts are encoded with LLaMA-Factory's own template code (the one training used), so the model is
evaluated on exactly the format it was trained on. Generation is batched with left padding;
prompts are sorted by length first so a batch wastes little on padding, and each row stops at the
template's stop words. Precision follows the hardware (pick_dtype): bf16 where the CPU computes it
natively (avx512_bf16 or AMX; 1.9x faster generation on the development CPU), fp32 elsewhere. A
completion cut by the token budget never ends in half a character (decode_complete).

Attention on CPU is SDPA with grouped-query heads passed as they are (GQA_ATTENTION): transformers'
own SDPA path copies every key/value head n_rep times at every decoding step whenever a padding mask
is present (SmolLM2: 3 KV heads for 9 query heads), which was most of a batched decoding step here.
EVAL_FAST_DECODE=1 (opt-in, CPU): the decoding steps (one query token) compute attention as two grouped
fp32 matmuls and a softmax instead of the CPU flash kernel, which spends half a bf16 decoding step on one
query token: the cold fc `make eval` takes ~5 minutes instead of ~11. Other arithmetic, so not the
default: a completion can change where two tokens are nearly tied (5 of the 120 tuned fc completions);
its completions are cached under their own key, and the documented numbers use the default.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from eval.datasets import Example
from scripts.common import REPO_ROOT, atomic_write_text
from scripts.hardware import cpu_bf16_flags

# Completions are cached by what determines them (eval/run_eval.py): the weights' bytes, the prompts' token
# ids, the settings, the library versions and this number, bumped whenever the generation path changes
# what it produces. A GRPO recipe's eval then reuses the base and SFT completions its SFT eval made.
GENERATION_VERSION = 2
CACHE_DIR = Path(os.environ.get("EVAL_CACHE_DIR") or REPO_ROOT / "runs" / ".eval_cache")


def pick_dtype(requested: str = "auto", cpuinfo: str | None = None) -> tuple[torch.dtype, str]:
    """(dtype, why) for inference: bf16 where the hardware computes it natively, else fp32."""
    if requested in ("fp32", "float32"):
        return torch.float32, "fp32 (asked for)"
    if requested in ("bf16", "bfloat16"):
        return torch.bfloat16, "bf16 (asked for)"
    if requested != "auto":
        raise SystemExit(f"error: dtype {requested!r}: use auto, bf16 or fp32")
    if torch.cuda.is_available():
        return ((torch.bfloat16, "bf16 (the GPU supports it)") if torch.cuda.is_bf16_supported()
                else (torch.float32, "fp32 (the GPU has no bf16)"))
    flags = cpu_bf16_flags(cpuinfo)
    if flags:
        return torch.bfloat16, f"bf16 (the CPU has {', '.join(flags)})"
    return torch.float32, "fp32 (the CPU has no avx512_bf16 or AMX: bf16 would be emulated)"


GQA_ATTENTION = "sdpa_gqa"


def sdpa_gqa_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None,
                       is_causal=None, **kwargs):
    """transformers' SDPA attention, but the key/value heads go to the kernel unrepeated (enable_gqa)."""
    if attention_mask is not None and attention_mask.ndim == 4:
        attention_mask = attention_mask[:, :, :, : key.shape[-2]]
    if is_causal is None:
        is_causal = query.shape[2] > 1 and attention_mask is None and getattr(module, "is_causal", True)
    out = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=attention_mask, dropout_p=dropout, scale=scaling, is_causal=is_causal,
        enable_gqa=query.shape[1] != key.shape[1])
    return out.transpose(1, 2).contiguous(), None


FAST_DECODE_ENV = "EVAL_FAST_DECODE"


def fast_decode() -> bool:
    return os.environ.get(FAST_DECODE_ENV, "") not in ("", "0") and not torch.cuda.is_available()


def matmul_decode_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None,
                            is_causal=None, **kwargs):
    """sdpa_gqa_attention, but a decoding step (one query token) as grouped fp32 matmuls + softmax: each
    group of n_rep query heads against its one key/value head, nothing repeated or copied."""
    if query.shape[2] != 1:
        return sdpa_gqa_attention(module, query, key, value, attention_mask, dropout, scaling, is_causal, **kwargs)
    batch, heads, _, dim = query.shape
    kv_heads, length = key.shape[1], key.shape[2]
    grouped = query.reshape(batch, kv_heads, heads // kv_heads, dim).float()
    scores = torch.matmul(grouped, key.float().transpose(-1, -2)) * (dim ** -0.5 if scaling is None else scaling)
    if attention_mask is not None:
        mask = attention_mask[:, :, :, :length]
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask.float()
    out = torch.matmul(torch.softmax(scores, dim=-1), value.float()).to(query.dtype)
    return out.reshape(batch, heads, 1, dim).transpose(1, 2).contiguous(), None


def inference_attention() -> str:
    """The attention implementation to generate with: GQA_ATTENTION on CPU (its decoding steps as matmuls
    with EVAL_FAST_DECODE=1); on CUDA, transformers' own SDPA (its kernels take enable_gqa only without a
    mask, and it picks them itself)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    if torch.cuda.is_available():
        return "sdpa"
    AttentionInterface.register(GQA_ATTENTION, matmul_decode_attention if fast_decode() else sdpa_gqa_attention)
    AttentionMaskInterface.register(GQA_ATTENTION, sdpa_mask)  # unregistered, transformers passes no mask
    return GQA_ATTENTION


def load_model(model_path: str, weights: bool = True, dtype: torch.dtype = torch.float32,
               attention: str | None = None):
    """(tokenizer, model in eval mode on the inference device); weights=False loads only the tokenizer
    (model is None). attention: default inference_attention()."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=False)
    if not weights:
        return tokenizer, None
    attention = attention or inference_attention()
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype, trust_remote_code=False,
                                                 attn_implementation=attention)
    model.to("cuda" if torch.cuda.is_available() else "cpu").eval()
    return tokenizer, model


def load_for_eval(model_path: str, adapter: Path | None, dtype: torch.dtype):
    """The model to score: the base, or base + adapter merged in fp32 (exact; the merged model generates
    as fast as the base), then cast to dtype."""
    _, model = load_model(model_path)
    if adapter is not None:
        model = attach_adapter(model, adapter).merge_and_unload()
    return model.to(dtype).eval()


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
    return [decode_complete(tokenizer, row).strip() for row in ids]


def complete_prefix(tokenizer, ids: list[int]) -> tuple[int, str]:
    """(how many of ids to keep, their text) so that the text does not end in a partial character: when the
    token budget ends inside a multi-byte UTF-8 character, its first byte-tokens decode to U+FFFD; they are
    dropped (at most 3). When dropping 3 does not help, everything is kept."""
    full = text = tokenizer.decode(ids, skip_special_tokens=True)
    end = len(ids)
    while text.endswith("\ufffd") and end > 0 and len(ids) - end < 3:
        end -= 1
        text = tokenizer.decode(ids[:end], skip_special_tokens=True)
    return (end, text) if not text.endswith("\ufffd") else (len(ids), full)


def decode_complete(tokenizer, ids: list[int]) -> str:
    """The text of ids without a trailing partial character (complete_prefix)."""
    return complete_prefix(tokenizer, ids)[1]


class NoRepeatNewNgrams:
    """A logits processor: a token that would repeat an n-gram already in the *new* tokens of its row is
    banned. transformers' no_repeat_ngram_size counts the prompt too, which would forbid quoting the
    candidate or naming the plan's topic; this only stops a turn from looping on itself."""

    def __init__(self, n: int, prompt_width: int):
        self.n, self.width = n, prompt_width

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for row in range(input_ids.shape[0]):
            new = input_ids[row, self.width:].tolist()
            if len(new) < self.n:
                continue
            prefix = new[len(new) - self.n + 1:]
            banned = {new[i + self.n - 1] for i in range(len(new) - self.n + 1) if new[i:i + self.n - 1] == prefix}
            if banned:
                scores[row, list(banned)] = -float("inf")
        return scores


def owed_continuation_bytes(tail: bytes) -> int:
    """How many UTF-8 continuation bytes the text ending in `tail` still needs to finish its last character."""
    for back in range(1, min(4, len(tail)) + 1):
        byte = tail[-back]
        if byte < 0x80:
            return 0
        if byte >= 0xC0:  # the lead byte of a 2-, 3- or 4-byte character
            length = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return max(0, length - back)
    return 0


class WholeCharacters:
    """A logits processor: new text never breaks a UTF-8 character. A byte-level tokenizer spells a CJK
    character in up to three tokens, and a small model sometimes follows a character's first byte with a
    whole-word token ("基�bsites"), which decodes to U+FFFD. After an unfinished character only tokens that
    continue it are allowed; elsewhere no token that starts with a continuation byte. Special tokens (the
    end of a turn) are always allowed. A tokenizer that is not byte-level BPE is left alone."""

    def __init__(self, tokenizer):
        from transformers.models.gpt2.tokenization_gpt2 import bytes_to_unicode

        byte_of = {char: byte for byte, char in bytes_to_unicode().items()}
        special = set(tokenizer.all_special_ids)
        self.bytes: list[bytes | None] = []
        for token_id, token in enumerate(tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))):
            if token_id in special or not isinstance(token, str) or not token or any(c not in byte_of for c in token):
                self.bytes.append(None)
            else:
                self.bytes.append(bytes(byte_of[c] for c in token))
        self.byte_level = sum(b is None for b in self.bytes) <= len(special) + 8
        # allowed[k]: the tokens that may follow text owing k continuation bytes
        self.allowed = torch.zeros((4, len(self.bytes)), dtype=torch.bool)
        for token_id, token_bytes in enumerate(self.bytes):
            if token_bytes is None:
                self.allowed[:, token_id] = True
                continue
            leading = next((i for i, b in enumerate(token_bytes) if not 0x80 <= b < 0xC0), len(token_bytes))
            for owed in range(4):
                self.allowed[owed, token_id] = leading == min(owed, len(token_bytes))

    def owed(self, ids: list[int]) -> int:
        tail = b"".join(self.bytes[i] or b"" for i in ids[-4:] if 0 <= i < len(self.bytes))
        return owed_continuation_bytes(tail)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if not self.byte_level:
            return scores
        if self.allowed.device != scores.device:  # once, not a 4 x vocabulary copy every step
            self.allowed = self.allowed.to(scores.device)
        width = min(scores.shape[-1], self.allowed.shape[1])
        for row in range(input_ids.shape[0]):
            banned = ~self.allowed[self.owed(input_ids[row, -4:].tolist()), :width]
            scores[row, :width].masked_fill_(banned, -float("inf"))
        return scores


def generation_controls(prompt_width: int, no_repeat_ngram: int | None = None,
                        bad_words_ids: list[list[int]] | None = None,
                        whole_characters: WholeCharacters | None = None) -> dict:
    """model.generate keyword arguments for the optional guards: NoRepeatNewNgrams over the tokens after
    prompt_width, token sequences never generated, and no broken character (WholeCharacters)."""
    from transformers import LogitsProcessorList

    processors = [NoRepeatNewNgrams(no_repeat_ngram, prompt_width)] if no_repeat_ngram else []
    controls = {"logits_processor": LogitsProcessorList(processors + ([whole_characters] if whole_characters else []))}
    if bad_words_ids:
        controls["bad_words_ids"] = bad_words_ids
    return controls


def banned_sequences(tokenizer, words: list[str]) -> list[list[int]]:
    """bad_words_ids that keep every word out of the text: each token whose text contains one, and each
    word's own encoding when it takes several tokens (a byte-level tokenizer may spell "？" in two)."""
    single = [[i] for i in range(len(tokenizer)) if any(w in tokenizer.decode([i]) for w in words)]
    spelled = [ids for w in words if len(ids := tokenizer.encode(w, add_special_tokens=False)) > 1]
    return single + spelled


def cut_at_stop(new: list[int], stop_ids: list[int]) -> list[int]:
    """New tokens up to and including the first stop token (what follows it is padding)."""
    return new[:next((k + 1 for k, token in enumerate(new) if token in stop_ids), len(new))]


@torch.inference_mode()
def generate_ids(model, tokenizer, prompts: list[list[int]], *, max_new_tokens: int, batch_size: int,
                 stop_ids: list[int], desc: str = "generate", static_cache: bool | None = None,
                 no_repeat_ngram: int | None = None, bad_words_ids: list[list[int]] | None = None,
                 whole_characters: WholeCharacters | None = None) -> list[list[int]]:
    """Greedy new-token ids for each prompt (up to and including a stop token), in the order given.
    static_cache: None = on CPU only (bench/ compares both). no_repeat_ngram: ban repeating an n-gram of
    the new tokens (NoRepeatNewNgrams); bad_words_ids: token sequences never generated; whole_characters:
    no broken character (WholeCharacters). None for the plain greedy path that make eval uses."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    # CPU: a preallocated KV cache is written in place; the default one is re-concatenated every step.
    # (On CUDA a static cache would make transformers compile the model, so it keeps its default.)
    static_cache = model.device.type == "cpu" if static_cache is None else static_cache
    cache = {"cache_implementation": "static"} if static_cache else {}
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
            input_ids=input_ids.to(model.device), attention_mask=attention.to(model.device), max_new_tokens=max_new_tokens,
            do_sample=False, num_beams=1, eos_token_id=stop_ids, pad_token_id=pad_id,
            **generation_controls(width, no_repeat_ngram, bad_words_ids, whole_characters), **cache,
        )
        for row, i in enumerate(batch):
            outputs[i] = cut_at_stop(generated[row, width:].cpu().tolist(), stop_ids)
    return outputs


def weights_digest(folder: Path) -> str:
    """sha256 over a model or adapter folder's weight and config files (names and bytes)."""
    digest = hashlib.sha256()
    folder = Path(folder)
    for path in sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".json") and p.is_file()):
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def completions_key(model_path: str, adapter: Path | None, prompts: list[list[int]], **settings) -> str:
    import transformers

    digest = hashlib.sha256(json.dumps({
        "version": GENERATION_VERSION, "torch": torch.__version__, "transformers": transformers.__version__,
        "model": weights_digest(Path(model_path)), "adapter": weights_digest(adapter) if adapter else None,
        **({"decode_attention": "fp32 matmul"} if fast_decode() else {}),  # absent: the default's keys stay
        **settings}, sort_keys=True, default=str).encode())
    digest.update(json.dumps(prompts).encode())
    return digest.hexdigest()[:32]


def cached_completions(key: str) -> list[str] | None:
    path = CACHE_DIR / f"{key}.json"
    try:
        texts = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return texts if isinstance(texts, list) and all(isinstance(t, str) for t in texts) else None


def store_completions(key: str, texts: list[str]) -> None:
    atomic_write_text(CACHE_DIR / f"{key}.json", json.dumps(texts, ensure_ascii=False))


def complete_or_reuse(model_path: str, adapter: Path | None, tokenizer, prompts: list[list[int]], *,
                      dtype, max_new_tokens: int, batch_size: int, stop_ids: list[int], name: str,
                      seconds: dict[str, float], reused: list[str], program: str = "eval",
                      use_cache: bool = True) -> list[str]:
    """The completions of one model: read back when the same weights, prompts and settings were completed
    before (runs/.eval_cache; the batch size only groups the work, so it is not in the key), else generated
    and stored. Records the model in reused, or its generation seconds in seconds."""
    key = completions_key(model_path, adapter, prompts, dtype=dtype, max_new_tokens=max_new_tokens,
                          stop_ids=stop_ids)
    texts = cached_completions(key) if use_cache else None
    if texts is not None and len(texts) == len(prompts):
        reused.append(name)
        print(f"{program}: {name}: the same weights already completed these prompts (runs/.eval_cache); reused",
              file=sys.stderr)
        return texts
    model = load_for_eval(model_path, adapter, dtype)
    start = time.perf_counter()
    texts = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size,
                     stop_ids=stop_ids, desc=f"{program} {name}")
    seconds[name] = round(time.perf_counter() - start, 1)
    del model
    store_completions(key, texts)
    return texts
