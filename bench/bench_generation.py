"""Batched vs one-prompt-at-a-time greedy generation on the same prompts, in one run.

    python -m bench.bench_generation [--model models/SmolLM2-135M-Instruct] [--n 16]
        [--max-new-tokens 32] [--batch-size 8]

Uses the interview val split encoded with the CPU recipe's template, the same code path as
`make eval`. Reports both wall times, the speed-up ratio and whether the outputs are identical
token for token. Writes bench/results/generation.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from eval.datasets import examples_from_sharegpt, select
from eval.generate import encode_prompt, generate_ids, get_template, load_model, stop_token_ids
from scripts.common import write_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/SmolLM2-135M-Instruct")
    parser.add_argument("--template", default="smollm2")
    parser.add_argument("--data", type=Path, default=Path("data/interview/val.json"))
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-prompt-tokens", type=int, default=448)
    parser.add_argument("--output", type=Path, default=Path("bench/results/generation.json"))
    args = parser.parse_args(argv)

    tokenizer, model = load_model(args.model)
    template = get_template(tokenizer, args.template)
    examples = examples_from_sharegpt(json.loads(args.data.read_text(encoding="utf-8")))
    prompt_ids = [encode_prompt(tokenizer, template, e) for e in examples]
    chosen, _ = select(examples, prompt_ids, args.max_prompt_tokens, args.n, seed=0)
    prompts = [prompt_ids[i] for i in chosen]
    stops = stop_token_ids(tokenizer, template)
    common = dict(max_new_tokens=args.max_new_tokens, stop_ids=stops)

    generate_ids(model, tokenizer, prompts[:1], batch_size=1, **common)  # warm-up
    timings, outputs = {}, {}
    for name, batch_size in (("single", 1), ("batched", args.batch_size)):
        start = time.perf_counter()
        outputs[name] = generate_ids(model, tokenizer, prompts, batch_size=batch_size, desc=name, **common)
        timings[name] = time.perf_counter() - start
    same = sum(a == b for a, b in zip(outputs["single"], outputs["batched"]))
    result = {
        "model": args.model, "prompts": len(prompts), "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size, "torch_threads": torch.get_num_threads(),
        "mean_prompt_tokens": round(sum(map(len, prompts)) / len(prompts), 1),
        "single_s": round(timings["single"], 2), "batched_s": round(timings["batched"], 2),
        "speedup": round(timings["single"] / timings["batched"], 2),
        "identical_outputs": f"{same}/{len(prompts)}",
    }
    write_json(args.output, result)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
