"""Convert follow-up decision rows (seed 001's schema) into LLaMA-Factory ShareGPT files and register them.

    python -m scripts.prepare_followup [--input data/raw/followup_decisions.jsonl] [--output-dir data/followup]
        [--val-ratio 0.1] [--seed 42] [--name followup] [--no-reason]

Rows are validated with data/schema/followup_decision.schema.json: a missing field, a feature out of
range (follow_up_depth 0-3, hesitation_score 0-1, counts >= 0) or an unknown label rejects the row,
reported with file, row, id, field and reason; the rest is converted. Each ShareGPT row asks the
model (system prompt scripts/prompts.DECISION_SYSTEM_PROMPT) for the decision on the rendered question,
answer and features; the answer is the label, then the row's reason unless --no-reason. The raw
fields (question, answer, context, label) stay in the row for the rule baseline and the encoder
classifier, which train and score on the same split. Output: DIR/train.json and DIR/val.json,
registered as NAME_train / NAME_val.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from scripts.common import (
    REPO_ROOT,
    Rejection,
    convert_records,
    exit_if_nothing_converted,
    report,
    schema_problem,
    schema_validator,
    split_arguments,
    write_split,
)
from scripts.prompts import DECISION_LABELS, DECISION_SYSTEM_PROMPT, render_decision_input

SCHEMA = REPO_ROOT / "data" / "schema" / "followup_decision.schema.json"
DEFAULT_INPUT = Path("data/raw/followup_decisions.jsonl")
DEFAULT_OUTPUT_DIR = Path("data/followup")
VALIDATOR = schema_validator(SCHEMA)


def convert_record(record: Any, with_reason: bool = True) -> tuple[dict | None, tuple[str, str] | None]:
    problem = schema_problem(VALIDATOR, record)
    if problem is not None:
        return None, problem
    answer = record["label"]
    if with_reason and record.get("reason"):
        answer = f"{record['label']}：{record['reason']}"
    row = {
        "system": DECISION_SYSTEM_PROMPT,
        "conversations": [
            {"from": "human", "value": render_decision_input(record["question"], record["answer"], record["context"])},
            {"from": "gpt", "value": answer},
        ],
        "question": record["question"], "answer": record["answer"], "context": record["context"],
        "label": record["label"],
    }
    if "id" in record:
        row = {"id": record["id"], **row}
    return row, None


def convert_files(paths: list[Path], with_reason: bool) -> tuple[list[dict], list[Rejection], int]:
    return convert_records(paths, lambda record, _where: convert_record(record, with_reason))


def main(argv: list[str] | None = None) -> int:
    parser = split_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]),
                             DEFAULT_INPUT, DEFAULT_OUTPUT_DIR, "followup")
    parser.add_argument("--no-reason", action="store_true", help="train on the label alone")
    args = parser.parse_args(argv)
    rows, rejections, read = convert_files(args.input, not args.no_reason)
    exit_if_nothing_converted("prepare_followup", read, rows, rejections)
    split = write_split(rows, args, {"formatting": "sharegpt",
                                     "columns": {"messages": "conversations", "system": "system"}})
    counts = {label: sum(r["label"] == label for r in rows) for label in DECISION_LABELS}
    report("prepare_followup", read, len(rows), rejections, f" ({split}; labels {counts})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
