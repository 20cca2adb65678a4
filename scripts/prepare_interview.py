"""Convert raw interview data into LLaMA-Factory ShareGPT files and register them.

    python -m scripts.prepare_interview [--input FILE ...] [--output-dir data/interview]
        [--val-ratio 0.1] [--seed 42] [--name interview]

Accepts, in JSON-list or JSONL files, two kinds of record (detected per record):
  - a whole dialogue (data/schema/interview_dialogue.schema.json): every interviewer turn becomes an
    assistant turn, so the model learns to follow up, change topic and close;
  - a single generation task in seed 001's schema (data/schema/interview_task.schema.json):
    task / context / user_answer / speech_analysis -> expected_output.
Every row gets seed 000's system prompt (a dialogue's also its job and topics). Rows that fail
validation are reported with file, row index, field and reason and are left out; nothing else is
dropped. Two formats of the same dialogues (scripts/interview_format.py):
  - DIR/train.json, DIR/val.json (NAME_train / NAME_val): one row per dialogue, every interviewer turn
    trained (GPU recipes);
  - DIR/window_train.json, DIR/window_val.json (NAME_window_train / _val): one row per interviewer turn,
    the plan, the round and the last turns in the prompt (the CPU recipe: short rows, closings included);
  - DIR/window_decisions_train.json, _val (NAME_window_decisions_train / _val): the window rows whose turn
    decides (the opening, the closing, a change of topic: interview_format.decision_turns), for a recipe
    to mix in at a higher rate than their natural ~40% (LLaMA-Factory's interleave_probs).
A dialogue with a `split` field ("train" / "val") goes where it says: the generator splits by area, so
that validation asks questions training never saw; rows without one are split 90/10, seeded, per
dialogue (its window rows follow it).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from scripts.common import (
    Rejection,
    convert_records,
    exit_if_nothing_converted,
    report,
    schema_problem,
    schema_validator,
    split_arguments,
    split_train_val,
    write_split,
)
from scripts.interview_format import decision_turns, training_rows
from scripts.prompts import INTERVIEWER_SYSTEM_PROMPT, MAX_INTERVIEWER_ROUNDS

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "data" / "schema"
DEFAULT_INPUT = Path("data/raw/interview_dialogues.jsonl")
DEFAULT_OUTPUT_DIR = Path("data/interview")

DIALOGUE = "_dialogue"  # the raw dialogue, kept on a converted row until the window rows are made
DECISION = "_decision"  # a window row whose turn decides (opening, closing, change of topic)
TASK_INSTRUCTIONS = {
    "generate_follow_up": "请针对候选人的回答进行追问。",
    "generate_question": "请提出一个新的面试问题。",
    "closing": "请结束面试，给出打分和点评。",
}


DIALOGUE_VALIDATOR = schema_validator(SCHEMA_DIR / "interview_dialogue.schema.json")
TASK_VALIDATOR = schema_validator(SCHEMA_DIR / "interview_task.schema.json")


def dialogue_problem(record: dict) -> tuple[str, str] | None:
    """Rules the schema cannot say: turn order, round limit, a closing that states the score."""
    messages = record["messages"]
    if messages[0]["role"] != "candidate":
        return "messages[0].role", "the candidate speaks first (a ShareGPT conversation starts with the user)"
    for i in range(1, len(messages)):
        if messages[i]["role"] == messages[i - 1]["role"]:
            return f"messages[{i}].role", f"two '{messages[i]['role']}' turns in a row; roles must alternate"
    if messages[-1]["role"] != "interviewer":
        return f"messages[{len(messages) - 1}].role", "the interviewer speaks last (the closing turn)"
    rounds = sum(m["role"] == "interviewer" for m in messages)
    if rounds > MAX_INTERVIEWER_ROUNDS:
        return "messages", f"{rounds} interviewer turns; at most {MAX_INTERVIEWER_ROUNDS}"
    closing = messages[-1]["content"]
    if not re.search(rf"(?<!\d){record['score']}\s*/\s*100", closing):
        return f"messages[{len(messages) - 1}].content", f"the closing turn does not state the score {record['score']}/100"
    return None


def sharegpt_row(row_id: str, system: str, chat: list[dict], target: str) -> dict:
    turns = [{"from": "human" if m["role"] == "user" else "gpt", "value": m["content"]} for m in chat]
    return {"id": row_id, "system": system, "conversations": turns + [{"from": "gpt", "value": target}]}


def convert_dialogue(record: dict) -> dict:
    """The whole-format row; the dialogue itself rides along (DIALOGUE) for the window rows."""
    plan = {"job": record["job"], "topics": record.get("topics")}
    (system, chat, target), = training_rows("whole", record["messages"], **plan)
    row = {**sharegpt_row(record["id"], system, chat, target), DIALOGUE: {"messages": record["messages"], **plan}}
    if "split" in record:  # a split chosen upstream (by topic) is kept; write_split uses it and drops the key
        row["split"] = record["split"]
    return row


def window_rows(row: dict) -> list[dict]:
    """One window-format row per interviewer turn of a dialogue row, in its split, marked DECISION when the
    turn decides; other rows as they are."""
    if DIALOGUE not in row:
        return [row]
    dialogue = row[DIALOGUE]
    interviewer_at = [i for i, m in enumerate(dialogue["messages"]) if m["role"] == "interviewer"]
    deciding = set(decision_turns(dialogue["messages"], dialogue["topics"]))
    return [{**sharegpt_row(f"{row['id']}#{k}", system, chat, target), "split": row["split"],
             DECISION: interviewer_at[k] in deciding}
            for k, (system, chat, target) in enumerate(training_rows("window", **dialogue))]


def with_splits(rows: list[dict], val_ratio: float, seed: int) -> list[dict]:
    """Every row with its split: the upstream one, else a seeded val_ratio share of the others. Decided per
    dialogue, so the window rows of one dialogue never straddle train and val."""
    free = [i for i, row in enumerate(rows) if row.get("split") not in ("train", "val")]
    train, val = split_train_val(free, val_ratio, seed)
    chosen = {**{i: "train" for i in train}, **{i: "val" for i in val}}
    return [row if i not in chosen else {**row, "split": chosen[i]} for i, row in enumerate(rows)]


def render_task_prompt(record: dict) -> str:
    context = record["context"]
    lines = [f"任务：{TASK_INSTRUCTIONS[record['task']]}", f"岗位：{context['job_title']}"]
    if context.get("current_topic"):
        lines.append(f"话题：{context['current_topic']}")
    if context.get("resume"):
        lines.append(f"简历技能：{'、'.join(context['resume'])}")
    if context.get("current_question"):
        lines.append(f"当前问题：{context['current_question']}")
    if record.get("user_answer"):
        lines.append(f"候选人回答：{record['user_answer']}")
    speech = record.get("speech_analysis") or {}
    if speech:
        features = []
        if "hesitation_score" in speech:
            features.append(f"犹豫度 {speech['hesitation_score']:.2f}")
        if "filler_count" in speech:
            features.append(f"填充词 {speech['filler_count']} 个")
        lines.append(f"语音特征：{'，'.join(features)}")
    return "\n".join(lines)


def convert_task(record: dict) -> dict:  # a one-turn task: the same row in both formats
    return {
        "system": INTERVIEWER_SYSTEM_PROMPT,
        "conversations": [
            {"from": "human", "value": render_task_prompt(record)},
            {"from": "gpt", "value": record["expected_output"]},
        ],
    }


def convert_record(record: Any) -> tuple[dict | None, tuple[str, str] | None]:
    """(ShareGPT row, None) or (None, (field, reason))."""
    if not isinstance(record, dict):
        return None, ("<record>", f"expected a JSON object, got {type(record).__name__}")
    if "messages" in record:
        problem = schema_problem(DIALOGUE_VALIDATOR, record) or dialogue_problem(record)
        return (None, problem) if problem else (convert_dialogue(record), None)
    if "task" in record:
        problem = schema_problem(TASK_VALIDATOR, record)
        return (None, problem) if problem else (convert_task(record), None)
    return None, ("<record>", "neither a dialogue ('messages') nor a generation task ('task')")


def convert_files(paths: list[Path]) -> tuple[list[dict], list[Rejection], int]:
    seen_ids: dict[str, str] = {}  # id -> where it first appeared

    def convert(record: Any, where: str) -> tuple[dict | None, tuple[str, str] | None]:
        converted, problem = convert_record(record)
        if problem is None and "id" in converted:
            if converted["id"] in seen_ids:
                return None, ("id", f"duplicate id '{converted['id']}' (first at {seen_ids[converted['id']]})")
            seen_ids[converted["id"]] = where
        return converted, problem

    # rejections name file and row only, as before (the id of a duplicate is in its reason)
    return convert_records(paths, convert, id_field=None)


def main(argv: list[str] | None = None) -> int:
    parser = split_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]),
                             DEFAULT_INPUT, DEFAULT_OUTPUT_DIR, "interview")
    args = parser.parse_args(argv)
    rows, rejections, read = convert_files(args.input)
    exit_if_nothing_converted("prepare_interview", read, rows, rejections)
    rows = with_splits(rows, args.val_ratio, args.seed)
    entry = {"formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system"}}
    whole = write_split([{k: v for k, v in row.items() if k != DIALOGUE} for row in rows], args, entry)
    windows = [r for row in rows for r in window_rows(row)]
    window = write_split([{k: v for k, v in r.items() if k != DECISION} for r in windows], args, entry,
                         variant="window")
    decisions = write_split([{k: v for k, v in r.items() if k != DECISION} for r in windows if r.get(DECISION)],
                            args, entry, variant="window_decisions")
    report("prepare_interview", read, len(rows), rejections, f" (whole dialogues: {whole}; one row per "
           f"interviewer turn: {window}; the turns that decide: {decisions})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
