"""The interviewer policy scorer: every check both ways, the shipped dialogues, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from eval.interview_policy import declares_unknown, passes, questions, rates, turn_checks, verdict
from tests.conftest import REPO

CLOSE = "好，本次面试到此结束。\n综合评分：72/100。\n点评：Redis 基础扎实，索引只停留在表面。"
OPEN = "你好，欢迎参加后端开发工程师的技术面试。我们先从Redis 的持久化开始：Redis 的持久化有哪几种方式？"
GOOD = "Redis 有 RDB 和 AOF 两种持久化方式，RDB 是定时快照，AOF 记录每条写命令。"


def transcript(*turns: str, first: str = "candidate") -> dict:
    roles = ("candidate", "interviewer") if first == "candidate" else ("interviewer", "candidate")
    return {"id": "t", "messages": [{"role": roles[i % 2], "content": text} for i, text in enumerate(turns)]}


def interview(*middle: str, closing: str = CLOSE) -> dict:
    return transcript("面试官好。", OPEN, *middle, closing)


@pytest.mark.parametrize("closing, score", [
    (CLOSE, 72),
    ("综合评分:  85 / 100\n点评: 不错", 85),  # half-width colons, spaces
    ("综合评分：0/100。点评：完全没有准备。", 0),
    ("综合评分：100/100。点评：无可挑剔。", 100),
    ("综合评分：101/100。点评：超纲。", None),  # out of range
    ("综合评分：72/100。", None),  # no review
    ("综合评分：72/100。点评：  ", None),  # empty review
    ("综合评分：72/100。点评：", None),
    ("综合评分：80/100\n点评 基础扎实，原理讲得清楚。", 80),  # 点评 without its colon
    ("点评：很好。综合评分：72/100。", None),  # review before the score
    ("综合评分：七十/100。点评：好。", None),  # not an integer
    ("今天就到这里，谢谢。", None),
])
def test_closed_with_score(closing, score):
    v = verdict(interview(GOOD, closing=closing))
    assert v["closed_with_score"] is (score is not None) and v["score"] == score


def test_premature_closing_needs_two_answers_before_the_closing():
    assert verdict(transcript("面试官好。", CLOSE))["premature_closing"] is True  # closes in round 1
    assert verdict(interview(GOOD))["premature_closing"] is True  # one question, then the closing
    assert verdict(interview(GOOD, "很好，那么AOF 重写是怎么做的？", GOOD))["premature_closing"] is False
    assert verdict(interview(GOOD, closing="谢谢。"))["premature_closing"] is None  # no closing: not applicable


def test_the_score_must_be_in_the_last_interviewer_turn():
    v = verdict(transcript("面试官好。", CLOSE, "谢谢。", "还有问题吗？请再说说 Redis 的线程模型？"))
    assert v["closed_with_score"] is False and v["score"] is None


def test_within_10_rounds_counts_the_closing():
    def rounds(n: int) -> list[str]:
        return [text for i in range(n) for text in (GOOD, f"你提到了RDB，继续追问第{i}个问题：RDB 的第{i}个细节是什么？")]

    ten = interview(*rounds(8), GOOD)
    assert verdict(ten)["interviewer_turns"] == 10 and verdict(ten)["within_10_rounds"] is True
    eleven = interview(*rounds(9), GOOD)
    assert verdict(eleven)["interviewer_turns"] == 11 and verdict(eleven)["within_10_rounds"] is False


def test_repeated_question_verbatim_or_contained_and_generic_prompts_are_not_questions():
    # the case: after a correct answer, the opening question again, twice in a row
    again = interview("Redis 是内存数据库，支持 RDB 和 AOF 持久化。", OPEN, "Redis 是内存数据库。", OPEN)
    assert verdict(again)["repeated_question"] is True
    contained = interview(GOOD, "嗯。Redis 的持久化有哪几种方式？", GOOD)
    assert verdict(contained)["repeated_question"] is True
    probes = interview("就是快照吧。", "你说到了快照，但不够完整。能具体展开讲讲吗？", "还有 AOF。",
                       "你说到了AOF，但不够完整。能具体展开讲讲吗？", GOOD)
    assert verdict(probes)["repeated_question"] is False
    fine = interview(GOOD, "很好，既然说到AOF，那么AOF 重写是怎么做的？", GOOD)
    assert verdict(fine)["repeated_question"] is False


def test_questions_of_a_turn():
    assert questions("那我们换个方向，说说虚拟内存。什么是虚拟内存？为什么需要它？") == {"什么是虚拟内存？为什么需要它？"}
    assert questions(OPEN) == {"我们先从Redis的持久化开始：Redis的持久化有哪几种方式？", "Redis的持久化有哪几种方式？"}
    assert questions("能具体展开讲讲吗？") == set() and questions("还有呢？请再具体一点。") == set()


@pytest.mark.parametrize("answer, unknown", [
    ("这个我不太了解。", True), ("不好意思，这块我没怎么接触过。", True), ("不会，这个没研究过。", True),
    ("这个……我不清楚。", True), ("不知道", True), ("没用过。", True),
    ("有 JDK 代理和 CGLIB 两种，区别我说不太清楚。", False),  # partial: it says something
    ("AOF 不会丢数据，因为每条写命令都会追加到文件里再返回。", False),
    ("不会" * 30, False),  # too long to be a declaration
    (GOOD, False), ("", False),
])
def test_declares_unknown(answer, unknown):
    assert declares_unknown(answer) is unknown


def test_moves_on_after_unknown():
    assert verdict(interview(GOOD, "很好，那么AOF 重写是怎么做的？", GOOD))["moves_on_after_unknown"] is None
    changes = interview("不知道。", "没关系，我们换个话题。聊聊索引：B+ 树索引为什么适合数据库？", GOOD)
    assert verdict(changes)["moves_on_after_unknown"] is True
    closes = interview("不知道。")
    assert verdict(closes)["moves_on_after_unknown"] is True
    asks_again = interview("不知道。", "再想想，Redis 的持久化有哪几种方式？", GOOD)
    assert verdict(asks_again)["moves_on_after_unknown"] is False
    probes = interview("这个我不清楚。", "能具体展开讲讲吗？", GOOD)
    assert verdict(probes)["moves_on_after_unknown"] is False
    one_bad = interview("不知道。", "没关系，我们换个话题。聊聊索引：B+ 树索引为什么适合数据库？", "不了解。",
                        "你再想想，B+ 树索引为什么适合数据库？", GOOD)
    assert verdict(one_bad)["moves_on_after_unknown"] is False


@pytest.mark.parametrize("turn, bad", [
    ("先聊聊Redis 的原理，Redis 的 Redis 的 Redis 的 Redis 的", True),  # the loop
    ("我们先从缓存回收开始：缓存回\ufffd", True),  # the broken character
    ("深分页 limit 1000000, 10 为什么慢？怎么优化？", False),
    ("嗯……那个……你再想想……", False),
    ("好好好好好好", True),
    ("很好，既然说到AOF，那么AOF 重写是怎么做的？", False),
])
def test_degenerate(turn, bad):
    assert verdict(interview(GOOD, turn, GOOD))["degenerate"] is bad


def test_score_consistent_only_judges_candidates_who_mostly_did_not_know():
    low = "好，本次面试到此结束。\n综合评分：35/100。\n点评：基础不足。"
    high = "好，本次面试到此结束。\n综合评分：90/100。\n点评：优秀。"
    mostly_unknown = ("不知道。", "没关系，我们换个话题。聊聊索引：B+ 树索引为什么适合数据库？", "不了解。",
                      "那我们换个方向，说说 TCP。三次握手为什么是三次？", GOOD)
    assert verdict(interview(*mostly_unknown, closing=low))["score_consistent"] is True
    assert verdict(interview(*mostly_unknown, closing=high))["score_consistent"] is False
    assert verdict(interview(GOOD, closing=high))["score_consistent"] is None
    assert verdict(interview("不知道。", closing="谢谢。"))["score_consistent"] is None


def test_follow_up_grounded_measures_reuse_of_the_candidates_words():
    grounded = interview(GOOD, "你提到了定时快照，那么RDB 快照期间的写入怎么处理？", GOOD)
    assert verdict(grounded)["follow_up_grounded"] == 1.0
    generic = interview(GOOD, "好的。下一个话题：TCP 三次握手为什么是三次？", GOOD)
    assert verdict(generic)["follow_up_grounded"] == 0.0
    assert verdict(interview("不知道。"))["follow_up_grounded"] is None


@pytest.mark.parametrize("bad", [None, [], "text", {"id": 1}, {"messages": "x"},
                                 {"messages": [{"role": "system", "content": "x"}]},
                                 {"messages": [{"role": "candidate", "content": 3}]}])
def test_a_transcript_out_of_the_schema_fails_every_check_without_raising(bad):
    v = verdict(bad)
    assert v["valid"] is False and not passes(v)
    assert v["closed_with_score"] is False and v["repeated_question"] is True and v["degenerate"] is True


def test_huge_and_adversarial_turns_are_judged_quickly():
    start = time.perf_counter()
    v = verdict(interview("好" * 1_000_000, "a" * 1_000_000 + "？" * 50_000, "不知道" * 100_000))
    assert time.perf_counter() - start < 10 and v["valid"] is True


def test_every_shipped_training_dialogue_passes_every_check():
    rows = [json.loads(line) for line in (REPO / "data/raw/interview_dialogues.jsonl").read_text(encoding="utf-8")
            .splitlines()]
    failing = [(v["id"], v) for v in map(verdict, rows) if not passes(v)]
    assert len(rows) >= 500 and not failing, failing[:3]
    summary = rates([verdict(r) for r in rows])
    assert summary["closed_with_score"] == 1.0 and summary["moves_on_after_unknown"] == 1.0


def test_cli_prints_rates_and_writes_verdicts_in_input_order(tmp_path):
    rows = [dict(interview(GOOD), id="a"), dict(interview("不知道。", OPEN, GOOD), id="b"),
            {"id": "c", "messages": "oops"}]
    src = tmp_path / "t.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "eval.interview_policy", "--transcripts", str(src),
                             "--verdicts", str(tmp_path / "v.jsonl")], cwd=REPO, capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["n"] == 3 and summary["closed_with_score"] == pytest.approx(2 / 3, abs=1e-4)
    assert summary["moves_on_after_unknown"] == 0.0  # b asks its question again, c is out of the schema, a: n/a
    assert "1 transcript(s) not in the schema" in result.stderr
    verdicts = [json.loads(line) for line in (tmp_path / "v.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [v["id"] for v in verdicts] == ["a", "b", "c"]
    assert verdicts[1]["repeated_question"] is True and verdicts[1]["moves_on_after_unknown"] is False

    missing = subprocess.run([sys.executable, "-m", "eval.interview_policy", "--transcripts", str(tmp_path / "no")],
                             cwd=REPO, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert missing.returncode == 1 and missing.stderr.startswith("error: ") and "Traceback" not in missing.stderr


SO_FAR = [("candidate", "面试官好。"), ("interviewer", OPEN)]


@pytest.mark.parametrize("answer, reply, expected", [
    # after "不了解": leaving the question for a new one, or closing, moves on; asking again does not
    ("不了解。", "没关系，我们换个话题。聊聊索引：B+ 树为什么适合做索引？", {"moved_on": True, "repeated": False}),
    ("不了解。", CLOSE, {"moved_on": True, "closing": True, "score": 72}),
    ("不了解。", "再想想，Redis 的持久化有哪几种方式？", {"moved_on": False, "repeated": True}),
    # after an answer: a follow-up on the candidate's words is grounded and asks something new
    (GOOD, "你提到了AOF 记录每条写命令，那 AOF 重写是怎么做的？",
     {"moved_on": None, "grounded": True, "asks": True, "repeated": False, "closing": False}),
    (GOOD, "能具体展开讲讲吗？", {"grounded": False, "asks": False}),  # a generic prompt asks nothing
    (GOOD, "先聊聊Redis 的 Redis 的 Redis 的 Redis 的原理？", {"degenerate": True}),
    (GOOD, CLOSE, {"closing": True, "grounded": None}),  # a closing is no follow-up
])
def test_turn_checks_judge_one_turn_as_verdict_judges_the_transcript(answer, reply, expected):
    checks = turn_checks(SO_FAR + [("candidate", answer)], reply)
    assert {k: checks[k] for k in expected} == expected
    whole = verdict(transcript(*(text for _, text in SO_FAR), answer, reply))
    assert whole["repeated_question"] == checks["repeated"]
    assert whole["degenerate"] == checks["degenerate"]
    if checks["moved_on"] is not None:
        assert whole["moves_on_after_unknown"] == checks["moved_on"]


@pytest.mark.parametrize("reply", [None, 3, "", "\ufffd" * 50_000, "？" * 10_000])
def test_turn_checks_never_raise(reply):
    checks = turn_checks(SO_FAR + [("candidate", "不知道")], reply)
    assert checks["closing"] is False and checks["score"] is None
