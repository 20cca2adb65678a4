"""Follow-up decision metrics over a predictions file.

    python -m eval.decision_metrics --predictions FILE.jsonl

Each line: "predict" (free model text) and "label" (FOLLOW_UP / NEXT_TOPIC / END). The predicted label
is the one of the three names that appears first in the text, case-insensitive; none found is
INVALID and counts as wrong. Prints one JSON object: n, accuracy, macro_f1 (over the three labels),
per_class {label: {precision, recall, f1}}, confusion_matrix {true label: {predicted label or
INVALID: count}} and invalid (count).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from scripts.common import read_jsonl_objects
from scripts.prompts import DECISION_LABELS as LABELS

INVALID = "INVALID"
LABEL_PATTERN = re.compile("|".join(LABELS), re.IGNORECASE)


def extract_label(text) -> str:
    if not isinstance(text, str):
        return INVALID
    match = LABEL_PATTERN.search(text[:100_000])
    return match.group(0).upper() if match else INVALID


def decision_scores(predicted: list[str], gold: list[str]) -> dict:
    """Metrics from predicted labels (already extracted) and gold labels."""
    columns = list(LABELS) + [INVALID]
    matrix = {t: {p: 0 for p in columns} for t in LABELS}
    for p, t in zip(predicted, gold):
        matrix[t][p if p in columns else INVALID] += 1
    per_class = {}
    for label in LABELS:
        tp = matrix[label][label]
        predicted_n = sum(matrix[t][label] for t in LABELS)
        actual_n = sum(matrix[label].values())
        precision = tp / predicted_n if predicted_n else 0.0
        recall = tp / actual_n if actual_n else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}
    n = len(gold)
    return {
        "n": n,
        "accuracy": round(sum(matrix[t][t] for t in LABELS) / n, 4) if n else 0.0,
        "macro_f1": round(sum(c["f1"] for c in per_class.values()) / len(LABELS), 4),
        "per_class": per_class,
        "confusion_matrix": matrix,
        "invalid": sum(matrix[t][INVALID] for t in LABELS),
    }


def aggregate(rows: list[dict]) -> dict:
    gold = [str(row["label"]).strip().upper() for row in rows]
    unknown = sorted({g for g in gold if g not in LABELS})
    if unknown:
        raise ValueError(f"labels must be one of {', '.join(LABELS)}; found {', '.join(unknown)}")
    return decision_scores([extract_label(row.get("predict")) for row in rows], gold)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        print(json.dumps(aggregate(read_jsonl_objects(args.predictions, ("predict", "label")))))
    except ValueError as exc:
        raise SystemExit(f"error: {args.predictions}: {exc}") from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
