"""How the interviewer model sees an interview: the one renderer shared by the training rows
(scripts/prepare_interview.py), make eval, make simulate and make chat, so the model is always asked in
the form it was trained on.

Two formats; a recipe's format follows from its dataset's name (`format_of_dataset`):

whole   (interview_train / interview_val): the system prompt (seed 000's persona + the plan), then the
        interview so far as alternating chat turns. Every interviewer turn is trained at once; a dialogue
        is ~1,000-1,500 tokens, so this is for the GPU recipes (cutoff_len >= 2048).
window  (interview_window_train / interview_window_val): one row per interviewer turn. The system prompt
        carries the persona, the plan and the state: the job, each topic with its status (done / current,
        with the turns asked on it so far / not yet) and the round being written (n/10, the last one
        marked). The user message holds the last WINDOW_MESSAGES turns as "面试官：…" / "候选人：…" lines,
        ending with the candidate's latest answer. A row is ~450 SmolLM2 tokens, so a 2-core CPU trains on
        every round of an interview, the closing included, and the model knows where it is in the interview
        without reading all of it.

The state is computed from the transcript's text alone (a topic counts as asked once an interviewer turn
names it), so the same function describes a training dialogue and a live interview the model is writing.
"""

from __future__ import annotations

import re

from scripts.prompts import INTERVIEWER_SYSTEM_PROMPT, MAX_INTERVIEWER_ROUNDS

FORMATS = ("whole", "window")
WINDOW_MESSAGES = 2  # the current question and the answer to it (each extra turn costs ~100 tokens a row)
MAX_WINDOW_TURN_CHARS = 300  # a turn in the window is cut here (the longest bank answer is ~150 characters)
SPEAKER = {"candidate": "候选人", "interviewer": "面试官"}
STATUS = {"done": "已结束", "current": "进行中", "todo": "未开始"}
SPACE = re.compile(r"\s+")
JOB, PLAN = "岗位：", "本场话题："  # the plan's lines in a system prompt (plan_lines writes, plan_of_whole_system reads)
ROUND = "当前轮次："  # the window's round line (round_line writes, round_of_system reads)
ROUND_NUMBER = re.compile(r"第\s*(\d+)\s*轮")


def format_of_dataset(name: str) -> str:
    """"window" for an interview_window_* dataset, "whole" for every other interview dataset."""
    return "window" if name.startswith("interview_window") else "whole"


def _plain(text: str) -> str:
    return SPACE.sub("", text).lower()


def topic_status(topics: list[str], interviewer_turns: list[str]) -> list[tuple[str, str]]:
    """[(topic, done | current | todo)]: a topic is asked once an interviewer turn names it; the one named
    last is current, the other asked ones are done."""
    last_named: dict[str, int] = {}
    for k, turn in enumerate(interviewer_turns):
        text = _plain(turn)
        for topic in topics:
            if _plain(topic) and _plain(topic) in text:
                last_named[topic] = k
    current = max(last_named, key=lambda t: (last_named[t], topics.index(t))) if last_named else None
    return [(t, "current" if t == current else "done" if t in last_named else "todo") for t in topics]


def turns_on_current(topics: list[str], interviewer_turns: list[str]) -> int:
    """Interviewer turns on the current topic so far: since the turn that made it current, that one
    included (0 before any topic is named). A topic is left after a few turns, so the count is what tells
    the model that the current one is spent."""
    count, current = 0, None
    for k in range(len(interviewer_turns)):
        now = _current(topics, interviewer_turns[:k + 1])
        count = count + 1 if now == current else 1
        current = now
    return count if current else 0


def decision_turns(messages: list[dict], topics: list[str] | None) -> list[int]:
    """Indices of the interviewer turns that decide rather than follow up: the opening (the first
    interviewer turn: start, with the plan's first topic), the closing (the dialogue's last turn) and every
    turn that leaves the current topic for another (after "不了解" or a spent topic). The follow-ups inside
    a topic are not decisions."""
    out, asked = [], []
    for k, message in enumerate(messages):
        if message["role"] != "interviewer":
            continue
        before = _current(topics or [], asked)
        asked.append(message["content"])
        if len(asked) == 1 or k == len(messages) - 1 or (before is not None and _current(topics or [], asked) != before):
            out.append(k)
    return out


def _current(topics: list[str], interviewer_turns: list[str]) -> str | None:
    return next((t for t, s in topic_status(topics, interviewer_turns) if s == "current"), None)


def plan_lines(job: str | None, topics: list[str] | None) -> list[str]:
    lines = [f"{JOB}{job}"] if job else []
    if topics:
        lines.append(f"{PLAN}{'、'.join(topics)}")
    return lines


def plan_of_whole_system(system: str) -> tuple[str | None, list[str] | None]:
    """(job, topics) back from a whole-format system prompt (whole_system's inverse): the GRPO prompts are
    built from the whole dialogues of the training split, then rendered in the SFT recipe's format."""
    job = topics = None
    for line in system.splitlines():
        if line.startswith(JOB):
            job = line.removeprefix(JOB).strip() or None
        elif line.startswith(PLAN):
            topics = [t for t in line.removeprefix(PLAN).split("、") if t.strip()] or None
    return job, topics


def whole_system(job: str | None, topics: list[str] | None) -> str:
    return "\n".join([INTERVIEWER_SYSTEM_PROMPT, *plan_lines(job, topics)])


def window_system(job: str | None, topics: list[str] | None, interviewer_turns: list[str]) -> str:
    lines = [INTERVIEWER_SYSTEM_PROMPT, *plan_lines(job, None)]
    if topics:
        status, turns = topic_status(topics, interviewer_turns), turns_on_current(topics, interviewer_turns)
        lines.append("话题进度：" + "、".join(
            f"{t}（{STATUS[s]}，已问 {turns} 轮）" if s == "current" else f"{t}（{STATUS[s]}）" for t, s in status))
    lines.append(round_line(len(interviewer_turns) + 1))
    return "\n".join(lines)


def round_line(n: int) -> str:
    """The round being written; the last one says so (a fact of the state, not an instruction to the model
    beyond the persona's own rule)."""
    if n >= MAX_INTERVIEWER_ROUNDS:
        return f"{ROUND}第 {n} 轮（最多 {MAX_INTERVIEWER_ROUNDS} 轮，这是最后一轮）"
    return f"{ROUND}第 {n} 轮（最多 {MAX_INTERVIEWER_ROUNDS} 轮）"


def round_of_system(system: str) -> int | None:
    """The round a window-format system prompt states (round_line's inverse), or None when it states none."""
    for line in system.splitlines():
        if line.startswith(ROUND):
            found = ROUND_NUMBER.match(line.removeprefix(ROUND).strip())
            return int(found.group(1)) if found else None
    return None


def _cut(text: str) -> str:
    return text if len(text) <= MAX_WINDOW_TURN_CHARS else text[:MAX_WINDOW_TURN_CHARS] + "……"


def window_text(messages: list[dict]) -> str:
    """The last WINDOW_MESSAGES turns as speaker lines."""
    recent = messages[-WINDOW_MESSAGES:]
    return "\n".join(f"{SPEAKER[m['role']]}：{_cut(m['content'])}" for m in recent)


def interviewer_prompt(fmt: str, messages: list[dict], job: str | None = None,
                       topics: list[str] | None = None) -> tuple[str, list[dict]]:
    """(system, chat messages) that ask the model for the next interviewer turn. messages: the interview
    so far as [{"role": "candidate" | "interviewer", "content"}], ending with a candidate turn."""
    if fmt == "whole":
        chat = [{"role": "user" if m["role"] == "candidate" else "assistant", "content": m["content"]}
                for m in messages]
        return whole_system(job, topics), chat
    if fmt == "window":
        asked = [m["content"] for m in messages if m["role"] == "interviewer"]
        return window_system(job, topics, asked), [{"role": "user", "content": window_text(messages)}]
    raise ValueError(f"unknown interview format {fmt!r}: one of {', '.join(FORMATS)}")


def training_rows(fmt: str, messages: list[dict], job: str | None = None,
                  topics: list[str] | None = None) -> list[tuple[str, list[dict], str]]:
    """[(system, chat messages, target)] for a whole dialogue: one for the whole format (every interviewer
    turn is a target; target is ""), one per interviewer turn for the window format."""
    if fmt == "whole":
        system, chat = interviewer_prompt("whole", messages[:-1], job, topics)
        return [(system, chat, messages[-1]["content"])]
    return [(*interviewer_prompt("window", messages[:k], job, topics), m["content"])
            for k, m in enumerate(messages) if m["role"] == "interviewer"]
