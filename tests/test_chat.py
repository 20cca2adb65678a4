"""make chat: the interview loop driven by scripted stdin on a tiny random Qwen3 (mechanics, not quality)."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eval.interview_session import plan_move
from scripts import chat

REPO = Path(__file__).resolve().parent.parent
GOOD = "Redis 有 RDB 和 AOF 两种持久化方式，RDB 是定时快照，fork 子进程写文件；AOF 记录每条写命令，可配置 fsync 策略。"


def run_chat(model: Path, tmp_path: Path, stdin: str, *extra: str, name: str = "t.json") -> tuple[dict, str]:
    transcript = tmp_path / name
    command = [sys.executable, "-m", "scripts.chat", "--model", str(model), "--template", "qwen3_nothink",
               "--max-new-tokens", "6", "--topics", "Redis 持久化,索引,TCP 连接管理,GIL",
               "--transcript", str(transcript), *extra]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    result = subprocess.run(command, input=stdin, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(transcript.read_text(encoding="utf-8")), result.stdout


def interviewer_turns(session: dict) -> list[dict]:
    return [t for t in session["turns"] if t["role"] == "interviewer"]


def test_unknown_changes_topic_and_quit_ends_with_transcript(tiny_qwen3, tmp_path):
    session, stdout = run_chat(tiny_qwen3, tmp_path, f"{GOOD}\n\n这个我不了解。\n/quit\n这行不会被读到\n",
                               "--rules", "--greedy")
    asked = interviewer_turns(session)
    assert asked[0]["move"] == "OPENING" and asked[0]["content"].startswith("你好，欢迎参加后端开发工程师的技术面试。我们先从Redis 持久化开始：")
    candidate = [t for t in session["turns"] if t["role"] == "candidate"]
    assert [t["content"] for t in candidate[1:]] == [GOOD, "这个我不了解。"]  # the empty line was not an answer
    assert candidate[1]["decision"]["move"] == "FOLLOW_UP" and candidate[1]["decision"]["follow_up_depth"] == 0
    assert candidate[2]["decision"]["move"] == "NEXT_TOPIC" and candidate[2]["decision"]["follow_up_depth"] == 1
    assert asked[2]["content"].startswith("没关系，我们换个话题。聊聊索引：")
    assert session["ended_by"] == "quit" and session["score"] is None and len(asked) == 3
    assert session["decider"] == "rules" and session["model"]["adapter"] is None
    assert "面试结束：quit" in stdout


def test_ten_rounds_at_most_then_score_and_review(tiny_qwen3, tmp_path):
    session, _ = run_chat(tiny_qwen3, tmp_path, f"{GOOD}\n" * 14, "--rules", "--greedy")
    asked = interviewer_turns(session)
    assert len(asked) == 10 and session["ended_by"] == "rounds"
    # the rules steer: three follow-ups on a good answer, then END wraps the topic up
    moves = [t["move"] for t in asked]
    assert moves == ["OPENING", "FOLLOW_UP", "FOLLOW_UP", "FOLLOW_UP", "END", "FOLLOW_UP", "FOLLOW_UP", "FOLLOW_UP",
                     "END", "CLOSE"]
    assert asked[4]["content"].startswith("好，Redis 持久化就聊到这里。接下来是索引：")
    match = re.match(r"好，本次面试到此结束。\n综合评分：(\d+)/100。\n点评：", asked[-1]["content"])
    assert match and int(match.group(1)) == session["score"] and 10 <= session["score"] <= 99
    assert session["review"] == asked[-1]["content"].split("点评：", 1)[1].strip()


def test_ctrl_d_ends_cleanly_and_sampling_is_seeded(tiny_qwen3, tmp_path):
    first, _ = run_chat(tiny_qwen3, tmp_path, f"{GOOD}\n", "--rules", name="a.json")
    second, _ = run_chat(tiny_qwen3, tmp_path, f"{GOOD}\n", "--rules", name="b.json")
    assert first["ended_by"] == "eof" and len(interviewer_turns(first)) == 2
    assert first["turns"] == second["turns"] and first["sampling"]["greedy"] is False
    third, _ = run_chat(tiny_qwen3, tmp_path, f"{GOOD}\n", "--rules", "--seed", "1", name="c.json")
    assert third["turns"][1]["content"] != first["turns"][1]["content"]  # the seed is what made them equal


def test_closing_when_topics_run_out(tiny_qwen3, tmp_path):
    session, _ = run_chat(tiny_qwen3, tmp_path, "不知道。\n不会。\n", "--rules", "--greedy", "--topics", "GIL,装饰器")
    asked = interviewer_turns(session)
    assert [t["move"] for t in asked] == ["OPENING", "NEXT_TOPIC", "CLOSE"] and session["ended_by"] == "closing"


def test_plan_move_rules_that_hold_over_the_decider():
    assert plan_move("FOLLOW_UP", "这个我不清楚", 0) == "NEXT_TOPIC"
    assert plan_move("END", "没接触过", 3) == "NEXT_TOPIC"
    assert plan_move("FOLLOW_UP", GOOD, 3) == "END"
    assert plan_move("FOLLOW_UP", GOOD, 2) == "FOLLOW_UP"
    assert plan_move("END", GOOD, 1) == "END"


def test_newest_interview_adapter_is_found(tmp_path, monkeypatch):
    (tmp_path / "configs").mkdir()
    for name, dataset in (("a", "interview_train"), ("b", "interview_train"), ("c", "fc_train")):
        (tmp_path / f"configs/{name}.yaml").write_text(
            f"stage: sft\ndataset: {dataset}\nmodel_name_or_path: m\ntemplate: t\noutput_dir: runs/{name}/sft\n")
    stamp = time.time()
    for offset, path in ((0, "runs/a/sft"), (20, "runs/b/sft"), (10, "runs/b/sft/checkpoint-5"), (30, "runs/c/sft")):
        (tmp_path / path).mkdir(parents=True)
        weights = tmp_path / path / "adapter_model.safetensors"
        weights.write_bytes(b"x")
        os.utime(weights, (stamp + offset, stamp + offset))
    monkeypatch.setattr(chat, "REPO_ROOT", tmp_path)
    found = chat.trained_interviewers()
    assert [adapter.relative_to(tmp_path).as_posix() for _, _, adapter in found] == [
        "runs/a/sft", "runs/b/sft/checkpoint-5", "runs/b/sft"]  # the fc adapter is no interviewer
    args = argparse.Namespace(model=None, template=None, recipe=None, adapter=None, no_adapter=False, format=None)
    assert chat.resolve_model(args) == ("m", tmp_path / "runs/b/sft", "t", "whole")
    (tmp_path / "configs/b.yaml").write_text(  # a window-format recipe is asked in the window format
        "stage: sft\ndataset: interview_window_train\nmodel_name_or_path: m\ntemplate: t\noutput_dir: runs/b/sft\n")
    assert chat.resolve_model(args)[3] == "window"


def test_no_trained_interviewer_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "configs").mkdir()
    monkeypatch.setattr(chat, "REPO_ROOT", tmp_path)
    with pytest.raises(SystemExit, match="no trained interviewer found"):
        chat.main([])
