"""The GRPO rewards: every case of the metric definitions, both completion shapes, and no input raises."""

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eval.toolcall import score
from reward.fc import (
    combined_reward,
    completion_text,
    exec_reward,
    json_parse_reward,
    schema_hit_reward,
    semantic_reward,
)

TOOLS = json.dumps([
    {"name": "schedule_interview", "description": "", "parameters": {"type": "object", "properties": {
        "candidate": {"type": "string"}, "day": {"type": "integer"}, "remote": {"type": "boolean"},
        "score": {"type": "number"}}, "required": ["candidate", "day"]}},
    {"name": "get_time", "description": "", "parameters": {"type": "object", "properties": {}, "required": []}},
])
ANSWER = json.dumps([{"name": "schedule_interview", "arguments": {"candidate": "张三", "day": 3}}])


def call(**arguments):
    return '<tool_call>' + json.dumps({"name": "schedule_interview", "arguments": arguments}) + '</tool_call>'


def rewards(completion, answer=ANSWER, tools=TOOLS):
    kwargs = {"tools": [tools], "answers": [answer]}
    return (json_parse_reward([completion], **kwargs)[0], schema_hit_reward([completion], **kwargs)[0],
            exec_reward([completion], **kwargs)[0], semantic_reward([completion], **kwargs)[0])


@pytest.mark.parametrize("completion, expected", [
    (call(candidate="张三", day=3), (1, 1, 1, 1)),                           # exact
    (call(candidate="张三", day=4), (1, 1, 1, 0.5)),                          # one value wrong: F1 0.5
    (call(candidate="张三", day="3"), (1, 1, 0, 0.5)),                        # wrong type: not executable
    (call(candidate="张三", day=True), (1, 1, 0, 0.5)),                       # a boolean is not an integer
    (call(candidate="张三", day=3, score=2), (1, 1, 1, 0.8)),                 # an integer is a valid number
    (call(candidate="张三"), (1, 0, 0, 2 / 3)),                               # required 'day' missing
    (call(candidate="张三", day=3, room="A"), (1, 1, 0, 0.8)),               # undeclared parameter
    ('{"name": "book_room", "arguments": {"candidate": "张三", "day": 3}}', (1, 0, 0, 0)),  # unknown tool
    ('{"name": "schedule_interview", "arguments": {"candidate": "张三", "day": 3,}}', (0, 0, 0, 0)),  # malformed
    ("I cannot help with that.", (0, 0, 0, 0)),
    ("", (0, 0, 0, 0)),
])
def test_reward_cases(completion, expected):
    assert rewards(completion) == pytest.approx(expected)


def test_no_argument_calls_score_f1_one_when_names_match():
    answer = json.dumps([{"name": "get_time", "arguments": {}}])
    assert rewards('Action: get_time\nAction Input: {}', answer) == (1, 1, 1, 1)
    assert rewards(call(candidate="张三", day=3), answer)[3] == 0


def test_parallel_calls_all_must_hit_the_schema():
    both = call(candidate="张三", day=3) + '<tool_call>{"name": "get_time", "arguments": {}}</tool_call>'
    answer = json.dumps([json.loads(ANSWER)[0], {"name": "get_time", "arguments": {}}])
    assert rewards(both, answer) == (1, 1, 1, 1)
    half = call(candidate="张三", day=3) + '<tool_call>{"name": "nope", "arguments": {}}</tool_call>'
    assert rewards(half, answer)[:3] == (1, 0, 0)


def test_string_and_conversational_completions_score_the_same():
    text = call(candidate="张三", day=3)
    conversational = [{"role": "assistant", "content": text}]
    kwargs = {"tools": [TOOLS, TOOLS], "answers": [ANSWER, ANSWER]}
    assert combined_reward([text, conversational], **kwargs) == [1.0, 1.0]
    assert completion_text([{"role": "user", "content": "x"}]) is None


def test_combined_is_the_weighted_sum_and_weights_apply():
    completion = call(candidate="张三", day="3")  # parse 1, schema 1, exec 0, F1 0.5
    kwargs = {"tools": [TOOLS], "answers": [ANSWER]}
    assert combined_reward([completion], **kwargs) == [pytest.approx(0.25 * (1 + 1 + 0 + 0.5))]
    weights = {"parse": 0.1, "schema_hit": 0.2, "exec": 0.3, "arg_f1": 0.4}
    assert combined_reward([completion], weights=weights, **kwargs) == [pytest.approx(0.1 + 0.2 + 0.2)]
    assert combined_reward([completion], weights={"parse": "x"}, **kwargs) == [0.0]  # bad weights: 0, no raise


def test_rewards_match_the_eval_scorer():
    """One source of truth: the rewards are eval.toolcall.score's numbers."""
    completion = call(candidate="张三", day=4, room="A")
    row = score(completion, ANSWER, TOOLS)
    assert rewards(completion) == (row["parse"], row["schema_hit"], row["exec"], row["arg_f1"])


@pytest.mark.parametrize("answer", ["[]", "Sorry, none of the tools (schedule_interview) can do this.", "抱歉，无法完成。"])
def test_a_row_that_needs_no_call_pays_for_declining_only(answer):
    assert rewards("Sorry, none of these tools can do that.", answer) == (1, 1, 1, 1)
    assert rewards("", answer) == (1, 1, 1, 1)  # an empty reply makes no call either
    assert rewards(call(candidate="张三", day=3), answer) == (0, 0, 0, 0)
    assert rewards('Action: get_time\nAction Input: {}', answer) == (0, 0, 0, 0)
    kwargs = {"tools": [TOOLS] * 2, "answers": [answer, ANSWER]}
    assert combined_reward(["I cannot.", call(candidate="张三", day=3)], **kwargs) == [1.0, 1.0]
    assert combined_reward([call(candidate="张三", day=3), "I cannot."], **kwargs) == [0.0, 0.0]


def test_missing_columns_and_short_columns_score_zero():
    completion = call(candidate="张三", day=3)
    assert json_parse_reward([completion, completion], tools=[TOOLS]) == [1.0, 1.0]  # parse needs no reference
    assert schema_hit_reward([completion, completion], tools=[TOOLS], answers=[ANSWER]) == [1.0, 0.0]
    assert semantic_reward([completion]) == [0.0]
    assert exec_reward(None) == [] and exec_reward(5) == []


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                           max_leaves=20)
hostile = st.one_of(st.none(), st.integers(), st.text(max_size=300), json_values,
                    st.lists(st.dictionaries(st.sampled_from(["role", "content", "x"]), json_values, max_size=3),
                             max_size=3),
                    json_values.map(lambda v: json.dumps(v)),
                    json_values.map(lambda v: '<tool_call>' + json.dumps({"name": "schedule_interview",
                                                                          "arguments": v}) + '</tool_call>'))


@settings(max_examples=300, deadline=None)
@given(completions=st.lists(hostile, max_size=4), tools=hostile, answers=hostile)
def test_no_input_raises_and_every_reward_is_a_finite_number_in_range(completions, tools, answers):
    kwargs = {"tools": [tools] * len(completions), "answers": [answers] * len(completions)}
    for fn in (json_parse_reward, schema_hit_reward, exec_reward, semantic_reward, combined_reward):
        values = fn(completions, **kwargs)
        assert len(values) == len(completions)
        assert all(isinstance(v, float) and math.isfinite(v) and 0.0 <= v <= 1.0 for v in values)


@settings(max_examples=100, deadline=None)
@given(tools=hostile, answers=hostile)
def test_hostile_columns_themselves_never_raise(tools, answers):
    assert len(combined_reward([call(candidate="a", day=1)], tools=tools, answers=answers)) == 1
