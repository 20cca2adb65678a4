"""Function-calling metrics over a predictions file, from the shared tool-call core (eval/toolcall.py).

    python -m eval.fc_metrics --predictions FILE.jsonl

Each line: "predict" (model text), "label" (reference calls, JSON string) and "tools" (the row's
tools, JSON string). Prints one JSON object: n and the means of parse_rate, name_acc, arg_f1,
schema_hit_rate, exec_rate and exact_match, and combined_reward (the GRPO reward with its
default weights, eval.toolcall.REWARD_WEIGHTS).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from eval.toolcall import combined, score
from scripts.common import read_jsonl_objects

METRICS = {  # report name -> per-row key of toolcall.score
    "parse_rate": "parse", "name_acc": "name", "arg_f1": "arg_f1",
    "schema_hit_rate": "schema_hit", "exec_rate": "exec", "exact_match": "exact",
}


def per_row_values(rows: list[dict]) -> dict[str, list[float]]:
    """{metric (the six and combined_reward): [its value for each row]}: what aggregate averages and
    make eval bootstraps."""
    scores = [score(row.get("predict"), row.get("label"), row.get("tools")) for row in rows]
    values = {name: [s[key] for s in scores] for name, key in METRICS.items()}
    values["combined_reward"] = [combined(s) for s in scores]
    return values


def aggregate(rows: list[dict]) -> dict[str, float]:
    values = per_row_values(rows)
    out: dict[str, float] = {"n": len(rows)}
    for name, column in values.items():
        out[name] = round(sum(column) / len(rows), 4) if rows else 0.0
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", type=Path, required=True)
    args = parser.parse_args(argv)
    print(json.dumps(aggregate(read_jsonl_objects(args.predictions, ("predict", "label", "tools")))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
