import pytest

from eval.datasets import examples_from_sharegpt
from eval.generate import Example, encode_prompt, generate_ids, get_template, load_model, stop_token_ids

ROWS = [{"id": "a", "system": "你是面试官。", "conversations": [
    {"from": "human", "value": "您好，我来面试后端。"}, {"from": "gpt", "value": "Redis 的持久化机制有哪些？"},
    {"from": "human", "value": "有 RDB 和 AOF 两种。RDB 做快照，AOF 追加写命令。"}, {"from": "gpt", "value": "AOF 怎么刷盘？"}]}]


def test_examples_are_one_per_interviewer_turn():
    examples = examples_from_sharegpt(ROWS)
    assert [e.id for e in examples] == ["a#1", "a#3"]
    assert examples[1].messages[-1] == {"role": "user", "content": ROWS[0]["conversations"][2]["value"]}
    assert examples[1].label == "AOF 怎么刷盘？"


@pytest.mark.slow
def test_batched_generation_equals_one_at_a_time(tiny_qwen3):
    tokenizer, model = load_model(str(tiny_qwen3))
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
