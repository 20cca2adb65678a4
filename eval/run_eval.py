"""Score the base model and the trained adapter of a recipe on its validation split.

    python -m eval.run_eval --recipe configs/interview_smollm2_lora_sft_cpu.yaml
        [--adapter DIR] [--max-samples 40] [--max-new-tokens 64] [--batch-size 8] [--output-dir DIR]

Each interviewer turn of a validation dialogue is one example: the prompt is the dialogue so far,
the label is what the interviewer said. Examples whose prompt does not fit the recipe's cutoff_len
(minus the generation budget) are left out, since the model never trained on such lengths; the
count left out is reported. A seeded sample of --max-samples examples is scored.

Writes into the output dir (default: <recipe output_dir>/../eval): predictions_base.jsonl,
predictions_tuned.jsonl, report.json, report.md and metrics.png (base vs tuned bar chart).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import yaml

from eval.generate import (Example, attach_adapter, encode_prompt, generate, get_template, load_model,
                           require_adapter, stop_token_ids)
from eval.text_metrics import KEYS, corpus_scores
from scripts.common import REPO_ROOT, atomic_write_text, write_json, write_jsonl

ROLE = {"human": "user", "gpt": "assistant"}


def read_recipe(path: Path) -> dict:
    if not path.is_file():
        sys.exit(f"error: recipe not found: {path}")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def eval_dataset_file(recipe: dict) -> Path:
    """The recipe's eval_dataset, or its training dataset with _train -> _val, via dataset_info.json."""
    name = recipe.get("eval_dataset") or str(recipe["dataset"]).split(",")[0].strip().replace("_train", "_val")
    info_path = REPO_ROOT / recipe.get("dataset_dir", ".") / "dataset_info.json"
    info = json.loads(info_path.read_text(encoding="utf-8"))
    if name not in info:
        sys.exit(f"error: dataset '{name}' is not in {info_path} (run `make data`)")
    path = REPO_ROOT / recipe.get("dataset_dir", ".") / info[name]["file_name"]
    if not path.is_file():
        sys.exit(f"error: {path} not found (run `make data`)")
    return path


def examples_from_sharegpt(rows: list[dict]) -> list[Example]:
    out = []
    for row_index, row in enumerate(rows):
        turns = row["conversations"]
        for k, turn in enumerate(turns):
            if turn["from"] != "gpt":
                continue
            history = [{"role": ROLE[t["from"]], "content": t["value"]} for t in turns[:k]]
            out.append(Example(id=f"{row.get('id', row_index)}#{k}", system=row.get("system", ""),
                               messages=history, label=turn["value"]))
    return out


def select(examples, prompt_ids, max_prompt_tokens: int, max_samples: int, seed: int):
    fitting = [i for i, ids in enumerate(prompt_ids) if len(ids) <= max_prompt_tokens]
    chosen = sorted(random.Random(seed).sample(fitting, min(max_samples, len(fitting))))
    return chosen, len(examples) - len(fitting)


def bar_chart(path: Path, results: dict[str, dict], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    for n, name in enumerate(names):
        values = [results[name][k] for k in KEYS]
        bars = ax.bar([x + n * width for x in range(len(KEYS))], values, width, label=name)
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
    ax.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(KEYS))], [k.upper() for k in KEYS])
    ax.set_ylabel("score (x100)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def markdown_report(recipe_path: str, results: dict[str, dict], meta: dict) -> str:
    lines = [f"# Eval: {recipe_path}", "",
             f"{meta['n']} examples from `{meta['dataset']}` (seed {meta['seed']}, greedy, "
             f"max_new_tokens {meta['max_new_tokens']}); {meta['left_out']} left out as longer than "
             f"{meta['max_prompt_tokens']} prompt tokens.", "",
             "| model | " + " | ".join(k.upper() for k in KEYS) + " |",
             "|---|" + "---|" * len(KEYS)]
    for name, scores in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{scores[k]:.2f}" for k in KEYS) + " |")
    return "\n".join(lines) + "\n\n![metrics](metrics.png)\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, required=True)
    parser.add_argument("--adapter", type=Path, help="default: the recipe's output_dir")
    parser.add_argument("--output-dir", type=Path)
    parser.add_argument("--max-samples", type=int, default=40)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    recipe = read_recipe(args.recipe)
    adapter = require_adapter(args.adapter or Path(recipe["output_dir"]), f"train first: make sft RECIPE={args.recipe}")
    out_dir = args.output_dir or Path(recipe["output_dir"]).parent / "eval"
    dataset = eval_dataset_file(recipe)
    examples = examples_from_sharegpt(json.loads(dataset.read_text(encoding="utf-8")))

    tokenizer, model = load_model(recipe["model_name_or_path"])
    template = get_template(tokenizer, recipe["template"])
    prompt_ids = [encode_prompt(tokenizer, template, ex) for ex in examples]
    max_prompt_tokens = int(recipe.get("cutoff_len", 2048)) - args.max_new_tokens
    chosen, left_out = select(examples, prompt_ids, max_prompt_tokens, args.max_samples, args.seed)
    if not chosen:
        sys.exit(f"error: no example of {dataset} fits {max_prompt_tokens} prompt tokens")
    prompts = [prompt_ids[i] for i in chosen]
    stops = stop_token_ids(tokenizer, template)
    gen = dict(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, stop_ids=stops)

    predictions = {"base": generate(model, tokenizer, prompts, desc="base", **gen)}
    model = attach_adapter(model, adapter)
    predictions["tuned"] = generate(model, tokenizer, prompts, desc="tuned", **gen)

    results = {}
    for name, texts in predictions.items():
        rows = [{"id": examples[i].id, "prompt": examples[i].messages[-1]["content"], "predict": text,
                 "label": examples[i].label} for i, text in zip(chosen, texts)]
        write_jsonl(out_dir / f"predictions_{name}.jsonl", rows)
        results[name] = corpus_scores([(r["predict"], r["label"]) for r in rows])
    meta = {"recipe": str(args.recipe), "adapter": str(adapter), "dataset": str(dataset.relative_to(REPO_ROOT)),
            "n": len(chosen), "left_out": left_out, "max_prompt_tokens": max_prompt_tokens,
            "max_new_tokens": args.max_new_tokens, "seed": args.seed}
    write_json(out_dir / "report.json", {"meta": meta, "results": results})
    atomic_write_text(out_dir / "report.md", markdown_report(str(args.recipe), results, meta))
    bar_chart(out_dir / "metrics.png", results, f"{args.recipe.stem}: base vs tuned (n={len(chosen)})")
    print(json.dumps({"report": str(out_dir / "report.json"), **results}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
