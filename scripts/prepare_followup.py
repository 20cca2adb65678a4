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
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from scripts.common import REPO_ROOT, Rejection, convert_records, report, split_arguments, write_split
from scripts.prompts import DECISION_SYSTEM_PROMPT, render_decision_input

SCHEMA = REPO_ROOT / "data" / "schema" / "followup_decision.schema.json"
DEFAULT_INPUT = Path("data/raw/followup_decisions.jsonl")
DEFAULT_OUTPUT_DIR = Path("data/followup")
VALIDATOR = Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))


def field_path(error) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required":  # name the missing field itself, not its parent
        missing = error.message.split("'")[1]
        path = f"{path}.{missing}" if path else missing
    return path or "<record>"


def convert_record(record: Any, with_reason: bool = True) -> tuple[dict | None, tuple[str, str] | None]:
    error = best_match(VALIDATOR.iter_errors(record))
    if error is not None:
        return None, (field_path(error), error.message)
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
    split = write_split(rows, args, {"formatting": "sharegpt",
                                     "columns": {"messages": "conversations", "system": "system"}})
    counts = {label: sum(r["label"] == label for r in rows) for label in ("FOLLOW_UP", "NEXT_TOPIC", "END")}
    report("prepare_followup", read, len(rows), rejections, f" ({split}; labels {counts})")
    return 0 if rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
