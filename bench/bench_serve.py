"""The served CPU interviewer under load, in one run: requests/s and p50/p95 latency of make serve at 1, 4
and 8 concurrent clients (the official `openai` client, greedy, real interviewer prompts of the held-out
window split), and the same prompts generated in-process one at a time as make chat does, the reference.

    python -m bench.bench_serve [--recipe R] [--n 16] [--max-tokens 64]        (make bench)

LLaMA-Factory's HF engine generates one request at a time (MAX_CONCURRENT=1), so more clients queue:
throughput stays near the single-client one and latency grows with the queue. Also reports whether the
served answers equal the in-process ones (same weights, greedy, the same loop guard). Writes
bench/results/serve.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from eval.datasets import examples_from_sharegpt, select
from eval.generate import (
    decode_complete,
    encode_prompt,
    generate_ids,
    get_template,
    load_for_eval,
    load_model,
    pick_dtype,
    stop_token_ids,
)
from eval.interview_session import NO_REPEAT_NGRAM
from scripts.common import REPO_ROOT, relative_to_repo, write_json
from scripts.hardware import cpu_name
from scripts.recipes import read_recipe
from scripts.serve import background_server

CONCURRENCY = (1, 4, 8)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def load_figures(latencies: list[float], tokens: int, seconds: float) -> dict:
    return {"requests": len(latencies), "seconds": round(seconds, 2), "requests_per_s": round(len(latencies) / seconds, 3),
            "tokens_per_s": round(tokens / seconds, 2), "p50_s": round(statistics.median(latencies), 2),
            "p95_s": round(percentile(latencies, 0.95), 2), "generated_tokens": tokens}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=Path("configs/interview_smollm2_lora_sft_cpu.yaml"))
    parser.add_argument("--data", type=Path, default=Path("data/interview/window_val.json"))
    parser.add_argument("--n", type=int, default=16, help="requests per concurrency level")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--output", type=Path, default=Path("bench/results/serve.json"))
    args = parser.parse_args(argv)

    recipe = read_recipe(args.recipe)
    adapter = REPO_ROOT / recipe["output_dir"]
    trained = (adapter / "adapter_config.json").is_file()
    tokenizer, _ = load_model(recipe["model_name_or_path"], weights=False)
    template = get_template(tokenizer, recipe["template"])
    examples = examples_from_sharegpt(json.loads(args.data.read_text(encoding="utf-8")))
    prompt_ids = [encode_prompt(tokenizer, template, e) for e in examples]
    chosen, _ = select(examples, prompt_ids, int(recipe["cutoff_len"]) - args.max_tokens, args.n, seed=0)
    requests = [[{"role": "system", "content": examples[i].system}, *examples[i].messages] for i in chosen]
    dtype, why = pick_dtype("auto")

    # the reference: in-process, one request at a time (make chat), the same weights and loop guard
    model = load_for_eval(recipe["model_name_or_path"], adapter if trained else None, dtype)
    stop = stop_token_ids(tokenizer, template)
    generate_ids(model, tokenizer, [prompt_ids[chosen[0]]], max_new_tokens=4, batch_size=1, stop_ids=stop)  # warm-up
    latencies, local_texts, tokens = [], [], 0
    started = time.perf_counter()
    for i in chosen:
        t = time.perf_counter()
        new, = generate_ids(model, tokenizer, [prompt_ids[i]], max_new_tokens=args.max_tokens, batch_size=1,
                            stop_ids=stop, no_repeat_ngram=NO_REPEAT_NGRAM)
        latencies.append(time.perf_counter() - t)
        local_texts.append(decode_complete(tokenizer, new).strip())
        tokens += len([x for x in new if x not in stop])
    runs = {"in_process_1": load_figures(latencies, tokens, time.perf_counter() - started)}
    del model

    import openai

    options = [] if trained else ["--base"]
    with tempfile.TemporaryDirectory() as scratch, \
            background_server(args.recipe, options, Path(scratch) / "serve.log") as url:
        client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=900)
        name = client.models.list().data[0].id

        def ask(messages: list[dict]) -> tuple[float, str, int]:
            t = time.perf_counter()
            reply = client.chat.completions.create(model=name, messages=messages, temperature=0,
                                                   max_tokens=args.max_tokens)
            return time.perf_counter() - t, reply.choices[0].message.content or "", reply.usage.completion_tokens

        ask(requests[0])  # warm-up
        served_texts = []
        for clients in CONCURRENCY:
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=clients) as pool:
                answers = list(pool.map(ask, requests))
            runs[f"served_{clients}"] = load_figures([a[0] for a in answers], sum(a[2] for a in answers),
                                                     time.perf_counter() - started)
            served_texts = [a[1].strip() for a in answers]
    reference = runs["in_process_1"]["requests_per_s"]
    for run in runs.values():
        run["requests_per_s_vs_in_process"] = round(run["requests_per_s"] / reference, 2)
    same = sum(a == b for a, b in zip(local_texts, served_texts))
    result = {"recipe": relative_to_repo(args.recipe), "model": f"{recipe['model_name_or_path']}"
              f"{' + ' + relative_to_repo(adapter) if trained else ' (base: no trained adapter)'}",
              "cpu": cpu_name(), "torch_threads": torch.get_num_threads(), "dtype": why, "requests": len(requests),
              "max_tokens": args.max_tokens, "runs": runs, "served_identical_to_in_process": f"{same}/{len(requests)}"}
    write_json(args.output, result)
    print(json.dumps(result, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
