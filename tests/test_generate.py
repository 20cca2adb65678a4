import pytest

from eval.generate import Example, encode_prompt, generate_ids, get_template, load_model, stop_token_ids
from eval.run_eval import examples_from_sharegpt

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
