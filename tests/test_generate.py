import pytest
import torch

from eval.datasets import Example, examples_from_sharegpt
from eval.generate import (
    complete_or_reuse,
    cpu_bf16_flags,
    decode_complete,
    encode_prompt,
    generate_ids,
    get_template,
    load_model,
    pick_dtype,
    stop_token_ids,
)

ROWS = [{"id": "a", "system": "你是面试官。", "conversations": [
    {"from": "human", "value": "您好，我来面试后端。"}, {"from": "gpt", "value": "Redis 的持久化机制有哪些？"},
    {"from": "human", "value": "有 RDB 和 AOF 两种。RDB 做快照，AOF 追加写命令。"}, {"from": "gpt", "value": "AOF 怎么刷盘？"}]}]


def test_examples_are_one_per_interviewer_turn():
    examples = examples_from_sharegpt(ROWS)
    assert [e.id for e in examples] == ["a#1", "a#3"]
    assert examples[1].messages[-1] == {"role": "user", "content": ROWS[0]["conversations"][2]["value"]}
    assert examples[1].label == "AOF 怎么刷盘？"


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_batched_generation_equals_one_at_a_time(tiny_qwen3, dtype):
    tokenizer, model = load_model(str(tiny_qwen3), dtype=dtype)
    template = get_template(tokenizer, "qwen3_nothink")
    examples = examples_from_sharegpt(ROWS * 3)
    examples += [Example("b", "你是面试官。", [{"role": "user", "content": "你好" * n}], "") for n in range(1, 6)]
    prompts = [encode_prompt(tokenizer, template, e) for e in examples]
    assert len({len(p) for p in prompts}) > 3  # different lengths, so left padding is exercised
    stops = stop_token_ids(tokenizer, template)
    batched = generate_ids(model, tokenizer, prompts, max_new_tokens=12, batch_size=4, stop_ids=stops)
    single = generate_ids(model, tokenizer, prompts, max_new_tokens=12, batch_size=1, stop_ids=stops)
    assert batched == single
    assert max(len(ids) for ids in batched) > 1  # something was generated, not only a stop token


@pytest.mark.slow
def test_the_same_weights_on_the_same_prompts_are_completed_once(tiny_qwen3, tmp_path, monkeypatch):
    """make eval and make bfcl reuse completions; a different budget or --no-cache generates again."""
    monkeypatch.setattr("eval.generate.CACHE_DIR", tmp_path)
    tokenizer, _ = load_model(str(tiny_qwen3), weights=False)
    template = get_template(tokenizer, "qwen3_nothink")
    prompts = [encode_prompt(tokenizer, template, e) for e in examples_from_sharegpt(ROWS)]
    settings = dict(dtype=torch.float32, batch_size=2, stop_ids=stop_token_ids(tokenizer, template))

    def complete(name: str, budget: int, use_cache: bool = True):
        seconds, reused = {}, []
        texts = complete_or_reuse(str(tiny_qwen3), None, tokenizer, prompts, max_new_tokens=budget, name=name,
                                  seconds=seconds, reused=reused, use_cache=use_cache, **settings)
        return texts, seconds, reused

    first, seconds, reused = complete("base", 6)
    assert len(first) == len(prompts) and set(seconds) == {"base"} and reused == []
    assert complete("base", 6) == (first, {}, ["base"])
    assert set(complete("base", 7)[1]) == {"base"}  # another budget: generated
    assert set(complete("base", 6, use_cache=False)[1]) == {"base"}  # --no-cache: generated


def test_gqa_attention_computes_what_transformers_sdpa_computes(tiny_qwen3):
    """The CPU attention passes KV heads unrepeated (enable_gqa): same logits as transformers' SDPA on a
    left-padded batch, up to float rounding; and it is the implementation load_model picks on CPU."""
    from eval.generate import GQA_ATTENTION

    _, reference = load_model(str(tiny_qwen3), attention="sdpa")
    _, model = load_model(str(tiny_qwen3))
    assert model.config._attn_implementation == GQA_ATTENTION != reference.config._attn_implementation
    torch.manual_seed(0)
    input_ids = torch.randint(5, 200, (3, 9))
    mask = torch.ones_like(input_ids)
    mask[0, :4] = 0  # left padding
    mask[1, :1] = 0
    with torch.inference_mode():
        expected = reference(input_ids=input_ids, attention_mask=mask).logits
        got = model(input_ids=input_ids, attention_mask=mask).logits
    real = mask.bool()
    assert torch.allclose(got[real], expected[real], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("mask_kind", ["bool", "additive", "none"])
def test_fast_decode_attention_computes_what_sdpa_computes(mask_kind):
    """EVAL_FAST_DECODE's decoding step (one query token, 9 query heads on 3 KV heads, left padding) gives
    SDPA's output up to float rounding; a longer query goes to SDPA itself."""
    from eval.generate import matmul_decode_attention, sdpa_gqa_attention

    torch.manual_seed(0)
    query, key, value = torch.randn(2, 9, 1, 16), torch.randn(2, 3, 7, 16), torch.randn(2, 3, 7, 16)
    allowed = torch.ones(2, 1, 1, 7, dtype=torch.bool)
    allowed[0, :, :, :3] = False  # row 0 is left-padded
    mask = {"bool": allowed, "additive": torch.zeros(2, 1, 1, 7).masked_fill(~allowed, float("-inf")),
            "none": None}[mask_kind]
    expected, _ = sdpa_gqa_attention(None, query, key, value, mask)
    got, _ = matmul_decode_attention(None, query, key, value, mask)
    assert got.shape == expected.shape == (2, 1, 9, 16) and torch.allclose(got, expected, atol=1e-5)
    longer = torch.randn(2, 9, 4, 16)
    assert torch.equal(matmul_decode_attention(None, longer, key, value, None)[0],
                       sdpa_gqa_attention(None, longer, key, value, None)[0])


def test_fast_decode_is_opt_in_and_cached_under_its_own_key(tiny_qwen3, monkeypatch):
    from transformers import AttentionInterface

    from eval.generate import completions_key, inference_attention, matmul_decode_attention, sdpa_gqa_attention

    prompts = [[5, 6, 7]]
    default = completions_key(str(tiny_qwen3), None, prompts, max_new_tokens=4)
    monkeypatch.setenv("EVAL_FAST_DECODE", "0")
    assert completions_key(str(tiny_qwen3), None, prompts, max_new_tokens=4) == default
    monkeypatch.setenv("EVAL_FAST_DECODE", "1")
    assert completions_key(str(tiny_qwen3), None, prompts, max_new_tokens=4) != default
    tokenizer, model = load_model(str(tiny_qwen3))
    assert AttentionInterface()[model.config._attn_implementation] is matmul_decode_attention
    assert len(generate_ids(model, tokenizer, prompts, max_new_tokens=4, batch_size=1, stop_ids=[])[0]) == 4
    monkeypatch.delenv("EVAL_FAST_DECODE")
    inference_attention()  # the registry is global: models loaded by other tests get the default back
    assert AttentionInterface()[model.config._attn_implementation] is sdpa_gqa_attention


def test_eval_without_adapter_fails_before_loading_any_model(tmp_path):
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "eval.run_eval", "--recipe",
                             "configs/interview_smollm2_lora_sft_cpu.yaml", "--adapter", str(tmp_path / "none")],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode != 0
    assert f"no LoRA adapter in {tmp_path / 'none'}" in result.stderr and "make sft RECIPE=" in result.stderr
    assert "base" not in result.stderr  # no generation progress bar: it stopped before generating
    assert time.perf_counter() - start < 60


AVX512_BF16_CPU = "processor : 0\nflags : fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
PLAIN_AVX512_CPU = "processor : 0\nflags : fpu sse2 avx2 avx512f avx512_vnni avx512_vbmi2\n"
AMX_CPU = "flags : avx512f amx_bf16 amx_tile\n"


def test_precision_follows_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cpu_bf16_flags(AVX512_BF16_CPU) == ["avx512_bf16"] and cpu_bf16_flags(AMX_CPU) == ["amx_bf16"]
    assert pick_dtype("auto", AVX512_BF16_CPU)[0] == torch.bfloat16
    assert pick_dtype("auto", AMX_CPU)[0] == torch.bfloat16
    dtype, why = pick_dtype("auto", PLAIN_AVX512_CPU)
    assert dtype == torch.float32 and "no avx512_bf16 or AMX" in why
    assert pick_dtype("fp32", AVX512_BF16_CPU)[0] == torch.float32   # the fp32 path stays
    assert pick_dtype("bf16", PLAIN_AVX512_CPU)[0] == torch.bfloat16
    with pytest.raises(SystemExit):
        pick_dtype("fp16")


def test_training_precision_override_for_cpu_recipes_only():
    from scripts.hardware import training_precision

    assert training_precision({"use_cpu": True}, "auto", AVX512_BF16_CPU)[0] == "bf16=true"
    assert training_precision({"use_cpu": True}, "auto", PLAIN_AVX512_CPU)[0] == ""
    assert training_precision({"use_cpu": True}, "fp32", AVX512_BF16_CPU)[0] == "bf16=false"
    assert training_precision({"bf16": True}, "auto", PLAIN_AVX512_CPU) == ("", "as the recipe says (a GPU recipe)")


def test_a_cut_multibyte_character_is_dropped_not_replaced(tiny_qwen3):
    from tokenizers import pre_tokenizers

    tokenizer, _ = load_model(str(tiny_qwen3), weights=False)
    # "缓" is three UTF-8 bytes; as three single-byte tokens, a budget of 1 or 2 ends inside it
    byte_symbols = pre_tokenizers.ByteLevel(add_prefix_space=False).pre_tokenize_str("缓")[0][0]
    ids = tokenizer.encode("好的", add_special_tokens=False) + tokenizer.convert_tokens_to_ids(list(byte_symbols))
    assert tokenizer.decode(ids[:-1]).endswith("\ufffd")          # what plain decoding gives
    assert decode_complete(tokenizer, ids[:-1]) == "好的"          # the partial character is dropped
    assert decode_complete(tokenizer, ids[:-2]) == "好的"
    assert decode_complete(tokenizer, ids) == "好的缓"              # complete text is untouched


def test_no_repeat_new_ngrams_bans_only_repeats_of_the_new_tokens():
    import torch

    from eval.generate import NoRepeatNewNgrams

    guard = NoRepeatNewNgrams(3, prompt_width=2)
    # prompt [5, 6]; new tokens 1 2 9 1 2: the 3-gram (1, 2, 9) is in the new tokens, so 9 is banned
    ids = torch.tensor([[5, 6, 1, 2, 9, 1, 2], [5, 6, 5, 6, 7, 7, 5]])
    scores = guard(ids, torch.zeros(2, 10))
    assert scores[0, 9] == -float("inf") and (scores[0, :9] == 0).all()
    # row 2: the prompt's (5, 6) is no history of the new tokens; (7, 5) never continued before: nothing banned
    assert (scores[1] == 0).all()
    assert (guard(ids[:, :4], torch.zeros(2, 10)) == 0).all()  # fewer new tokens than n


@pytest.mark.parametrize("tail, owed", [(b"", 0), (b"abc", 0), ("基".encode()[:1], 2), ("基".encode()[:2], 1),
                                        ("基".encode(), 0), ("é".encode()[:1], 1), ("😀".encode()[:1], 3),
                                        ("😀".encode()[:3], 1), (b"a\x80", 0)])
def test_owed_continuation_bytes(tail, owed):
    from eval.generate import owed_continuation_bytes

    assert owed_continuation_bytes(tail) == owed


def test_whole_characters_allows_only_what_finishes_a_character(smollm2):
    """SmolLM2 spells a CJK character in three byte-tokens: after the first, a word token ("基�bsites", seen
    in make simulate) is banned and only continuation bytes are allowed; after a whole character the
    reverse; the end of a turn is always allowed."""
    from transformers import AutoTokenizer

    from eval.generate import WholeCharacters

    tokenizer = AutoTokenizer.from_pretrained(str(smollm2))
    guard = WholeCharacters(tokenizer)
    ji = tokenizer.encode("基", add_special_tokens=False)
    word = tokenizer.encode("bsites", add_special_tokens=False)
    assert len(ji) == 3 and len(word) == 1
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")

    def allowed_after(ids):
        scores = guard(torch.tensor([ids]), torch.zeros((1, len(tokenizer))))
        return scores[0] > -float("inf")

    half = allowed_after(tokenizer.encode("我们先从", add_special_tokens=False) + ji[:1])
    assert half[ji[1]] and not half[word[0]] and half[end]
    assert not half[ji[0]]  # a new lead byte would leave the character unfinished
    whole = allowed_after(tokenizer.encode("我们先从", add_special_tokens=False) + ji)
    assert whole[word[0]] and whole[ji[0]] and not whole[ji[1]] and whole[end]


def test_whole_characters_leaves_other_tokenizers_alone():
    from eval.generate import WholeCharacters

    class Chars:  # a tokenizer whose tokens are characters, not byte-level BPE
        all_special_ids = [0]

        def __len__(self):
            return 4

        def convert_ids_to_tokens(self, ids):
            return ["</s>", "基", "础", "a"][: len(ids)]

    guard = WholeCharacters(Chars())
    scores = torch.zeros((1, 4))
    assert torch.equal(guard(torch.tensor([[1, 2]]), scores.clone()), scores)


@pytest.mark.slow
def test_guarded_generation_never_breaks_a_character(tiny_qwen3):
    """A saboteur pushes a character's first byte, then a word token, at every step: unguarded the text
    breaks, with the guard after it every character is finished."""
    from transformers import LogitsProcessorList

    from eval.generate import WholeCharacters

    tokenizer, model = load_model(str(tiny_qwen3))
    guard = WholeCharacters(tokenizer)
    lead = guard.bytes.index("基".encode()[:1])
    word = tokenizer.encode("hello", add_special_tokens=False)[0]

    def saboteur(input_ids, scores):
        scores[:, lead if input_ids.shape[1] % 2 else word] += 1000.0
        return scores

    prompt = torch.tensor([tokenizer.encode("你好", add_special_tokens=False)])

    def text(*processors):
        out = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=16,
                             do_sample=False, logits_processor=LogitsProcessorList([saboteur, *processors]))
        return tokenizer.decode(out[0, prompt.shape[1]:], skip_special_tokens=True)

    assert "\ufffd" in text()
    guarded = text(guard)
    assert "\ufffd" not in guarded
    assert any("\u4e00" <= char <= "\u9fff" for char in guarded)  # the pushed first byte, finished as a character
