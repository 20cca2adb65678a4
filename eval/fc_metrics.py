"""Function-calling metrics over a predictions file, from the shared tool-call core (eval/toolcall.py).

    python -m eval.fc_metrics --predictions FILE.jsonl [--against OTHER.jsonl]

Each line: "predict" (model text), "label" (reference calls, JSON string; a row that needs no call has
"[]" or its text reply) and "tools" (the row's tools, JSON string). Prints one JSON object: n, n_no_call,
and the means of
  - parse_rate, name_acc, arg_f1, schema_hit_rate, exec_rate: over the rows with reference calls;
  - exact_match: over every row (a no-call row is exact when no call is parsed);
  - irrelevance_acc: over the rows that need no call, right when no call is parsed;
  - combined_reward: the GRPO reward with its default weights (eval.toolcall.REWARD_WEIGHTS), every row.
A metric over no row is null.

--against OTHER.jsonl: another model's predictions on the same rows (same labels and tools, same order:
two runs' `make eval` predictions_tuned.jsonl, say); the object then also has "against": for each metric,
FILE minus OTHER x100 with its paired 95% bootstrap interval (eval/stats.py) and whether it excludes 0.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from eval import stats
from eval.toolcall import combined, score
from scripts.common import read_jsonl_objects

METRICS = {  # report name -> per-row key of toolcall.score
    "parse_rate": "parse", "name_acc": "name", "arg_f1": "arg_f1",
    "schema_hit_rate": "schema_hit", "exec_rate": "exec", "exact_match": "exact", "irrelevance_acc": "no_call",
}


def per_row_values(rows: list[dict]) -> dict[str, list[float | None]]:
    """{metric (the seven and combined_reward): [its value for each row, None where it does not apply]}:
    what aggregate averages and make eval bootstraps."""
    scores = [score(row.get("predict"), row.get("label"), row.get("tools")) for row in rows]
    values = {name: [s[key] for s in scores] for name, key in METRICS.items()}
    values["combined_reward"] = [combined(s) for s in scores]
    return values


def aggregate(rows: list[dict]) -> dict[str, float | None]:
    values = per_row_values(rows)
    out: dict[str, float | None] = {"n": len(rows), "n_no_call": sum(v is not None for v in values["irrelevance_acc"])}
    for name, column in values.items():
        applicable = [v for v in column if v is not None]
        out[name] = round(sum(applicable) / len(applicable), 4) if applicable else None
    return out


def paired_difference(rows: list[dict], other: list[dict]) -> dict[str, dict]:
    """{metric: rows minus other, x100, with its paired bootstrap interval} on the same examples."""
    statistic, other_statistic = (stats.mean_statistic(per_row_values(r), scale=100) for r in (rows, other))
    return {metric: difference.as_dict()
            for metric, difference in stats.paired_differences(statistic, other_statistic, len(rows)).items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", type=Path, required=True)
    parser.add_argument("--against", type=Path, help="another model's predictions on the same rows: paired differences")
    args = parser.parse_args(argv)
    fields = ("predict", "label", "tools")
    rows = read_jsonl_objects(args.predictions, fields)
    result: dict = aggregate(rows)
    if args.against:
        other = read_jsonl_objects(args.against, fields)
        same = len(other) == len(rows) and all((a["label"], a["tools"]) == (b["label"], b["tools"])
                                               for a, b in zip(rows, other))
        if not same:
            raise SystemExit(f"error: {args.against} does not hold the rows of {args.predictions} "
                             "(the same labels and tools in the same order): a paired difference needs them")
        result["against"] = paired_difference(rows, other)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
