"""Generation speed on the same prompts, in one run: fp32 one prompt at a time with transformers' own
attention and cache (the old baseline), fp32 batched the old way, fp32 batched and bf16 batched the way
make eval generates now (SDPA with unrepeated KV heads, static KV cache: eval/generate.py), each with
the eval's batching (length-sorted batches, the template's stop words).

    python -m bench.bench_generation [--n 32] [--batch-size 16] [--max-new-tokens 64]     (make bench)

Reports generated tokens/s and prompts/s per configuration, the ratio to the baseline, whether batched
and one-at-a-time outputs are identical within fp32, and whether the CPU computes bf16 natively (where
it does not, bf16 is emulated and may be slower: make eval then chooses fp32). Writes
bench/results/generation.json.
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
from scripts.hardware import cpu_bf16_flags, cpu_name

# (name, dtype, batch size (None: --batch-size), attention (None: the eval's), static cache (None: the eval's))
CONFIGURATIONS = (("fp32_single", torch.float32, 1, "sdpa", False),
                  ("fp32_batched_old", torch.float32, None, "sdpa", False),
                  ("fp32_batched", torch.float32, None, None, None),
                  ("bf16_batched", torch.bfloat16, None, None, None))



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/SmolLM2-135M-Instruct")
    parser.add_argument("--template", default="smollm2")
    parser.add_argument("--data", type=Path, default=Path("data/interview/val.json"))
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-prompt-tokens", type=int, default=448)
    parser.add_argument("--output", type=Path, default=Path("bench/results/generation.json"))
    args = parser.parse_args(argv)

    tokenizer, _ = load_model(args.model, weights=False)
    template = get_template(tokenizer, args.template)
    examples = examples_from_sharegpt(json.loads(args.data.read_text(encoding="utf-8")))
    prompt_ids = [encode_prompt(tokenizer, template, e) for e in examples]
    chosen, _ = select(examples, prompt_ids, args.max_prompt_tokens, args.n, seed=0)
    prompts = [prompt_ids[i] for i in chosen]
    common = dict(max_new_tokens=args.max_new_tokens, stop_ids=stop_token_ids(tokenizer, template))

    runs, outputs = {}, {}
    for name, dtype, batch_size, attention, static_cache in CONFIGURATIONS:
        _, model = load_model(args.model, dtype=dtype, attention=attention)
        generate_ids(model, tokenizer, prompts[:1], batch_size=1, static_cache=static_cache, **common)  # warm-up
        start = time.perf_counter()
        outputs[name] = generate_ids(model, tokenizer, prompts, batch_size=batch_size or args.batch_size, desc=name,
                                     static_cache=static_cache, **common)
        seconds = time.perf_counter() - start
        tokens = sum(map(len, outputs[name]))
        runs[name] = {"seconds": round(seconds, 2), "generated_tokens": tokens,
                      "tokens_per_s": round(tokens / seconds, 2), "prompts_per_s": round(len(prompts) / seconds, 3)}
    baseline = runs["fp32_single"]["tokens_per_s"]
    for run in runs.values():
        run["speedup_tokens_per_s"] = round(run["tokens_per_s"] / baseline, 2)
        run["speedup_prompts_per_s"] = round(run["prompts_per_s"] / runs["fp32_single"]["prompts_per_s"], 2)
    same = sum(a == b for a, b in zip(outputs["fp32_single"], outputs["fp32_batched"]))
    same_old = sum(a == b for a, b in zip(outputs["fp32_batched_old"], outputs["fp32_batched"]))
    result = {
        "model": args.model, "cpu": cpu_name(), "cpu_native_bf16": cpu_bf16_flags(),
        "torch_threads": torch.get_num_threads(), "prompts": len(prompts), "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens, "mean_prompt_tokens": round(sum(map(len, prompts)) / len(prompts), 1),
        "runs": runs, "fp32_batched_identical_to_single": f"{same}/{len(prompts)}",
        "fp32_batched_identical_to_old_path": f"{same_old}/{len(prompts)}",
        "target": ">= 3x generated tokens/s over fp32_single",
    }
    write_json(args.output, result)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
