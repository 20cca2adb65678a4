"""GRPO rule rewards for the interviewer: each reward both ways, on the one policy scorer, bounded and
never raising (fuzzed)."""

from __future__ import annotations

import json
import random

import pytest

from eval.interview_policy import turn_checks
from reward import interview as rw

OPEN = "你好。我们先从索引开始：B+ 树为什么适合做索引？"
GOOD = "B+ 树是多路平衡树，高度低，磁盘 IO 次数少，叶子节点用链表连起来，范围查询很快。"
CLOSE = "好，本次面试到此结束。\n综合评分：{n}/100。\n点评：索引基础扎实。"
CHANGE = "没关系，我们换个话题。聊聊事务：事务的隔离级别有哪些？"
FOLLOW = "你提到了叶子节点用链表连起来，那范围查询具体怎么走？"


def history(*answers_and_turns: str) -> str:
    texts = ["面试官好。", OPEN, *answers_and_turns]
    roles = ["candidate", "interviewer"] * len(texts)
    return json.dumps([{"role": r, "content": t} for r, t in zip(roles, texts)], ensure_ascii=False)


def rewards(completions, hist, reference):
    n = len(completions)
    return {f.__name__: f(completions, history=[hist] * n, reference=[reference] * n) for f in rw.SINGLE_REWARDS}


def test_closing_pays_for_closing_where_the_dialogue_closes_and_only_there():
    at_close = rewards([CLOSE.format(n=70), FOLLOW], history(GOOD), CLOSE.format(n=72))
    assert at_close["closing_reward"] == [1.0, 0.0]
    assert at_close["score_reward"] == [pytest.approx(1 - 2 / 50), 0.0]  # near the reference's 72; no score: 0
    too_early = rewards([CLOSE.format(n=70), FOLLOW], history(GOOD), FOLLOW)
    assert too_early["closing_reward"] == [0.0, 1.0]
    assert too_early["score_reward"] == [1.0, 1.0]  # not applicable: no advantage either way
    assert rewards([CLOSE.format(n=10)], history(GOOD), CLOSE.format(n=90))["score_reward"] == [0.0]


def test_moves_on_after_unknown_and_not_applicable_otherwise():
    after_unknown = rewards([CHANGE, "再想想，B+ 树为什么适合做索引？", CLOSE.format(n=30)], history("不了解。"), CHANGE)
    assert after_unknown["moves_on_reward"] == [1.0, 0.0, 1.0]
    assert after_unknown["no_repeat_reward"] == [1.0, 0.0, 1.0]
    assert rewards([FOLLOW, OPEN], history(GOOD), FOLLOW)["moves_on_reward"] == [1.0, 1.0]


def test_no_repeat_looks_at_every_earlier_turn_not_only_the_last():
    hist = history(GOOD, FOLLOW, "不太记得了，就是顺着链表扫吧，具体的不太记得了。")
    assert rewards([OPEN, CHANGE], hist, CHANGE)["no_repeat_reward"] == [0.0, 1.0]


def test_well_formed_and_grounded():
    out = rewards([FOLLOW, "能具体展开讲讲吗？", "索引的 索引的 索引的 索引的原理？", "好的。", CLOSE.format(n=80)],
                  history(GOOD), FOLLOW)
    assert out["well_formed_reward"] == [1.0, 0.0, 0.0, 0.0, 1.0]  # asks nothing / loops: 0; a closing: 1
    assert out["grounded_reward"] == [1.0, 0.0, 0.0, 0.0, 1.0]  # reuses the candidate's words; a closing: n/a


def test_rewards_are_views_of_turn_checks():
    """One scorer: what the reward pays is what the policy's per-turn checks say."""
    hist = history("不了解。")
    for text in (CHANGE, OPEN, CLOSE.format(n=40), "好的"):
        checks = turn_checks([(m["role"], m["content"]) for m in json.loads(hist)], text)
        got = rewards([text], hist, CHANGE)
        assert got["no_repeat_reward"] == [float(not checks["repeated"])]
        assert got["moves_on_reward"] == [float(checks["moved_on"])]
        assert got["closing_reward"] == [float(not checks["closing"])]


def test_combined_is_the_weighted_mean_and_weights_override():
    good = rw.combined_reward([CHANGE], history=[history("不了解。")], reference=[CHANGE])
    bad = rw.combined_reward(["再想想，B+ 树为什么适合做索引？"], history=[history("不了解。")], reference=[CHANGE])
    assert good == [1.0] and 0.0 < bad[0] < 1.0
    only_closing = rw.combined_reward([FOLLOW], weights={"closing": 1.0}, history=[history(GOOD)],
                                      reference=[CLOSE.format(n=70)])
    assert only_closing == [0.0]
    assert rw.combined_reward([FOLLOW], weights={"closing": "x"}, history=[history(GOOD)], reference=[FOLLOW]) == [0.0]


def test_conversational_completions_and_missing_columns():
    assert rw.closing_reward([[{"role": "assistant", "content": FOLLOW}]], history=[history(GOOD)],
                             reference=[FOLLOW]) == [1.0]
    assert rw.closing_reward([None, 5], history=[history(GOOD)] * 2, reference=[FOLLOW] * 2) == [0.0, 0.0]
    assert rw.no_repeat_reward([FOLLOW]) == [1.0]  # no history: nothing asked before
    assert rw.closing_reward(None) == [] and rw.closing_reward(3) == []


def test_fuzzed_inputs_never_raise_and_stay_in_bounds():
    rng = random.Random(0)
    pieces = ["综合评分：", "/100", "点评：", "？", "不了解", "\ufffd", "Redis 的 ", "{", "[", "\\", "9" * 30, "", "。"]
    histories = [history(GOOD), "not json", "[" * 5000 + "]" * 5000, json.dumps([{"role": "x"}]), "x" * 300_000,
                 None, 7, json.dumps([{"role": "candidate", "content": "不知道"}] * 1000)]
    for _ in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 60)))
        if rng.random() < 0.05:
            text = text * 2000
        hist, reference = rng.choice(histories), rng.choice([CLOSE.format(n=rng.randint(-5, 300)), FOLLOW, None, 3])
        for func in (*rw.SINGLE_REWARDS, rw.combined_reward):
            values = func([text], history=[hist], reference=[reference])
            assert len(values) == 1 and 0.0 <= values[0] <= 1.0
