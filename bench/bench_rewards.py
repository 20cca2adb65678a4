"""Reward throughput: completions scored per second by reward.fc, as GRPOTrainer calls it.

    python -m bench.bench_rewards [--n 20000]

Completions are built from the function-calling val split: for each row the reference call in the
model's format, a copy with one wrong-typed value, a malformed one and plain prose, so every branch
of the scorer runs. TRL calls each reward function once per batch (--batch completions; 8 prompts x
8 generations by default), so the bench does the same, with cold caches before each measurement:
combined_reward alone, and the four single rewards one after the other (what the recipes do). Target:
>= 20,000 completions/s, i.e. well under 1% of a GRPO step. Writes bench/results/rewards.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from eval import toolcall
from reward import fc
from reward.fc import SINGLE_REWARDS, combined_reward
from scripts.common import write_json


def completions_for(row: dict) -> list[str]:
    calls = json.loads(row["conversations"][-1]["value"])
    good = "\n".join(f"Action: {c['name']}\nAction Input: {json.dumps(c['arguments'], ensure_ascii=False)}"
                     for c in calls)
    wrong = json.dumps([{"name": c["name"], "arguments": {k: str(v) for k, v in c["arguments"].items()}}
                        for c in calls], ensure_ascii=False)
    return [good, f"<tool_call>{wrong}</tool_call>", good[:-2], "I would call a tool for this."]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/fc/val.json"))
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--generations", type=int, default=8, help="completions per prompt in a batch")
    parser.add_argument("--output", type=Path, default=Path("bench/results/rewards.json"))
    args = parser.parse_args(argv)

    rows = json.loads(args.data.read_text(encoding="utf-8"))
    completions, tools, answers = [], [], []
    while len(completions) < args.n:
        for row in rows:  # a group: this row's prompt, --generations completions of it
            variants = completions_for(row)
            for k in range(args.generations):
                # every completion a distinct string (as sampled ones are), so no score is served from cache
                completions.append(f"{variants[k % len(variants)]}\n#{len(completions)}")
                tools.append(row["tools"])
                answers.append(row["conversations"][-1]["value"])
    completions, tools, answers = completions[:args.n], tools[:args.n], answers[:args.n]
    batches = [slice(i, i + args.batch) for i in range(0, args.n, args.batch)]

    def cold():
        for cache in (fc._score_strings, toolcall._tools_from_string, toolcall._reference_calls):
            cache.cache_clear()

    cold()
    start = time.perf_counter()
    combined = [r for b in batches for r in combined_reward(completions[b], tools=tools[b], answers=answers[b])]
    combined_s = time.perf_counter() - start
    cold()
    start = time.perf_counter()
    for b in batches:
        for fn in SINGLE_REWARDS:
            fn(completions[b], tools=tools[b], answers=answers[b])
    singles_s = time.perf_counter() - start

    result = {"completions": args.n, "batch": args.batch, "generations_per_prompt": args.generations, "mean_combined_reward": round(sum(combined) / len(combined), 4),
              "combined_s": round(combined_s, 3), "combined_per_s": round(args.n / combined_s),
              "four_singles_s": round(singles_s, 3), "four_singles_per_s": round(args.n / singles_s),
              "target_per_s": 20_000}
    write_json(args.output, result)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
