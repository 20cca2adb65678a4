"""The one renderer of interviewer prompts: formats, topic progress, round line, the window."""

from __future__ import annotations

import pytest

from scripts.interview_format import (
    MAX_WINDOW_TURN_CHARS,
    decision_turns,
    format_of_dataset,
    interviewer_prompt,
    topic_status,
    training_rows,
    turns_on_current,
)
from scripts.prompts import INTERVIEWER_SYSTEM_PROMPT
from scripts.recipes import training_dataset

TOPICS = ["TCP 连接管理", "HTTP 与 HTTPS", "索引"]
DIALOGUE = [
    {"role": "candidate", "content": "面试官好。"},
    {"role": "interviewer", "content": "你好。我们先从TCP 连接管理开始：为什么是三次握手？"},
    {"role": "candidate", "content": "同步双方的序列号。"},
    {"role": "interviewer", "content": "好，TCP连接管理就聊到这里。接下来是HTTP 与 HTTPS：HTTPS 握手过程？"},
    {"role": "candidate", "content": "不知道。"},
    {"role": "interviewer", "content": "好，本次面试到此结束。\n综合评分：40/100。\n点评：基础不足。"},
]


def test_format_follows_the_dataset_name():
    assert format_of_dataset("interview_window_train") == "window"
    assert format_of_dataset(training_dataset({"dataset": "interview_window_train, other"})) == "window"
    assert format_of_dataset("interview_train") == "whole"


def test_topic_status_from_the_interviewers_words_whitespace_and_case_aside():
    assert topic_status(TOPICS, []) == [(t, "todo") for t in TOPICS]
    turns = [m["content"] for m in DIALOGUE if m["role"] == "interviewer"][:2]
    assert topic_status(TOPICS, turns) == [("TCP 连接管理", "done"), ("HTTP 与 HTTPS", "current"), ("索引", "todo")]


def test_window_prompt_carries_plan_round_and_the_last_question_and_answer():
    system, chat = interviewer_prompt("window", DIALOGUE[:5], "后端开发工程师", TOPICS)
    assert system.startswith(INTERVIEWER_SYSTEM_PROMPT)
    assert "岗位：后端开发工程师" in system
    assert "TCP 连接管理（已结束）、HTTP 与 HTTPS（进行中，已问 1 轮）、索引（未开始）" in system
    assert system.endswith("当前轮次：第 3 轮（最多 10 轮）")
    assert chat == [{"role": "user", "content": f"面试官：{DIALOGUE[3]['content']}\n候选人：不知道。"}]
    long = [{"role": "candidate", "content": "x" * 5000}]
    assert len(interviewer_prompt("window", long)[1][0]["content"]) == len("候选人：") + MAX_WINDOW_TURN_CHARS + 2
    tenth = [{"role": r, "content": "问？" if r == "interviewer" else "答"} for r in ["candidate", "interviewer"] * 9]
    assert interviewer_prompt("window", tenth + [{"role": "candidate", "content": "答"}])[0].endswith("这是最后一轮）")


def test_whole_prompt_is_the_chat_so_far_under_persona_and_plan():
    system, chat = interviewer_prompt("whole", DIALOGUE[:5], "后端", TOPICS)
    assert system == f"{INTERVIEWER_SYSTEM_PROMPT}\n岗位：后端\n本场话题：TCP 连接管理、HTTP 与 HTTPS、索引"
    assert [m["role"] for m in chat] == ["user", "assistant", "user", "assistant", "user"]
    with pytest.raises(ValueError, match="unknown interview format"):
        interviewer_prompt("other", DIALOGUE[:1])


def test_training_rows_one_whole_or_one_window_per_interviewer_turn():
    (system, chat, target), = training_rows("whole", DIALOGUE, "后端", TOPICS)
    assert len(chat) == 5 and target == DIALOGUE[-1]["content"]
    windows = training_rows("window", DIALOGUE, "后端", TOPICS)
    assert [target for _, _, target in windows] == [m["content"] for m in DIALOGUE if m["role"] == "interviewer"]
    assert "第 3 轮" in windows[-1][0] and windows[0][1] == [{"role": "user", "content": "候选人：面试官好。"}]


def test_turns_on_current_counts_from_the_turn_that_made_the_topic_current():
    turns = ["我们先从TCP 连接管理开始：为什么是三次握手？", "你提到了序列号，那四次挥手呢？", "还有呢？",
             "好，TCP 连接管理就聊到这里。接下来是索引：B+ 树为什么适合做索引？", "为什么不用哈希？"]
    assert [turns_on_current(TOPICS, turns[:k]) for k in range(6)] == [0, 1, 2, 3, 1, 2]
    assert turns_on_current(TOPICS, ["你好，先做个自我介绍吧？"]) == 0  # no topic named yet


def test_decision_turns_are_the_opening_the_closing_and_the_changes_of_topic():
    assert decision_turns(DIALOGUE, TOPICS) == [1, 3, 5]
    follow_up = DIALOGUE[:3] + [{"role": "interviewer", "content": "你提到了序列号，为什么要同步？"},
                                {"role": "candidate", "content": "防止旧连接。"}, DIALOGUE[5]]
    assert decision_turns(follow_up, TOPICS) == [1, 5]  # a follow-up inside the topic decides nothing
    assert decision_turns(DIALOGUE, None) == [1, 5]  # without a plan: the opening and the closing


def test_round_of_system_reads_back_what_round_line_wrote():
    from scripts.interview_format import round_line, round_of_system, whole_system, window_system

    for n in (1, 7, 10, 12):
        assert round_of_system("你是一位面试官。\n" + round_line(n)) == n
    turns = ["q1", "q2", "q3"]
    assert round_of_system(window_system("后端开发工程师", ["Redis", "MySQL 索引"], turns)) == len(turns) + 1
    assert round_of_system(whole_system("后端开发工程师", ["Redis"])) is None
    assert round_of_system("当前轮次：不知道") is None
