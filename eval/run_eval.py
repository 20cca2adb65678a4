"""Score the base model and the trained adapter(s) of a recipe on its whole validation split.

    python -m eval.run_eval --recipe configs/<recipe>.yaml
        [--adapter DIR] [--max-samples N] [--max-new-tokens N] [--batch-size 16] [--dtype auto|bf16|fp32]
        [--output-dir DIR]

The task follows from the validation dataset's registration in dataset_info.json:
  - dialogue (interview): every assistant turn of a validation dialogue is one example (prompt = the
    dialogue so far, label = what the interviewer said); metrics: BLEU-4 and ROUGE-1/2/L, computed
    as LLaMA-Factory computes them (eval/text_metrics.py);
  - function calling (a `tools` column): every function_call turn, and the text reply of every row that
    needs no call, is one example, the prompt carries the row's tools; metrics: parse_rate, name_acc,
    arg_f1, schema_hit_rate, exec_rate (over the rows with calls), exact_match (every row),
    irrelevance_acc (the no-call rows; not reported when the split has none) and the GRPO combined
    reward (eval/fc_metrics.py, on the shared core eval/toolcall.py);
  - follow-up decisions (rows with question / answer / context / label): every row is one example;
    metrics: accuracy, macro-F1, per-class recall (eval/decision_metrics.py), and a confusion-matrix
    PNG. The rule baseline (eval/decision_rules.py) and the encoder classifier (--classifier, `make
    classifier`) are scored on the same rows beside the LLMs.
Models compared: for an SFT recipe, base and tuned (the recipe's output_dir, or --adapter); for a
GRPO recipe (configs/*_grpo_*.yaml), base, sft (its sft_adapter) and grpo (its output_dir).

Every metric comes with a seeded 95% bootstrap interval, and every pair of models with the paired
difference and its interval (eval/stats.py); report.md marks the differences whose interval excludes
0. The whole split is scored (--max-samples N: a seeded sample, for a quick look). Examples whose
prompt does not fit the recipe's length budget are left out (the model never trained on such lengths)
and counted. Writes into the output dir (default: <recipe output_dir>/../eval, or ../eval_grpo for a
GRPO recipe): predictions_<model>.jsonl per model, report.json, report.md and metrics.png.

Completions are cached in runs/.eval_cache by the weights' bytes, the prompts and the settings: a model
that already completed the same prompts is not run again (a GRPO recipe's eval reuses the base and SFT
completions of its SFT eval; --no-cache generates anyway).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from eval import stats
from eval.classifier import DEFAULT_CLASSIFIER, classifier_text, find_classifier, predict_labels
from eval.datasets import eval_dataset, examples_from_sharegpt, is_decision_data, select
from eval.decision_metrics import decision_scores, extract_label
from eval.decision_rules import decide
from eval.fc_metrics import METRICS as FC_ROW_KEYS
from eval.fc_metrics import per_row_values as fc_per_row
from eval.figures import bar_chart, confusion_chart
from eval.generate import (
    complete_or_reuse,
    encode_prompt,
    get_template,
    load_model,
    pick_dtype,
    require_adapter,
    stop_token_ids,
)
from eval.text_metrics import KEYS as TEXT_KEYS
from eval.text_metrics import per_row_values as text_per_row
from scripts.common import REPO_ROOT, atomic_write_text, read_rows, write_json, write_jsonl
from scripts.prompts import DECISION_LABELS
from scripts.recipes import read_recipe

# ---------------------------------------------------------------- the three tasks

def text_statistic(rows: list[dict]) -> stats.Statistic:
    return stats.mean_statistic(text_per_row([(r["predict"], r["label"]) for r in rows]))


def fc_statistic(rows: list[dict]) -> stats.Statistic:
    return stats.mean_statistic(fc_per_row(rows), scale=100)


def decision_statistic_of_labels(predicted: list[str], gold: list[str]) -> stats.Statistic:
    """Accuracy, macro-F1 and per-class recall (x100): macro-F1 is not a mean, so it is recomputed per draw."""
    def statistic(index) -> dict[str, float]:
        scores = decision_scores([predicted[i] for i in index], [gold[i] for i in index])
        return {"accuracy": 100 * scores["accuracy"], "macro_f1": 100 * scores["macro_f1"],
                **{f"recall_{k}": 100 * v["recall"] for k, v in scores["per_class"].items()}}
    return statistic


def decision_statistic(rows: list[dict]) -> stats.Statistic:
    return decision_statistic_of_labels([extract_label(r["predict"]) for r in rows], [r["label"] for r in rows])


@dataclass(frozen=True)
class Task:
    keys: list[str]
    statistic: Callable[[list[dict]], stats.Statistic]
    max_new_tokens: int   # what a label needs: an interviewer turn's first sentences; a parallel call; label + reason


TASKS = {
    "text": Task(list(TEXT_KEYS), text_statistic, 64),
    # fc: the longest call in the shipped sample is 148 SmolLM2 tokens with its stop word (two invitations
    # with links), so 128 cut it; 160 fits it with room, and a base model that never stops costs ~25% more
    "fc": Task(list(FC_ROW_KEYS) + ["combined_reward"], fc_statistic, 160),
    "decision": Task(["accuracy", "macro_f1"] + [f"recall_{label}" for label in DECISION_LABELS], decision_statistic, 48),
}


# ---------------------------------------------------------------- what is compared, on what

def models_to_compare(recipe: dict, recipe_path: Path, adapter: Path | None) -> list[tuple[str, Path | None]]:
    """[(name, adapter dir or None for the base model)], every adapter checked before any generation."""
    if recipe.get("stage") == "grpo":
        return [("base", None),
                ("sft", require_adapter(Path(recipe["sft_adapter"]), "train the SFT recipe first: make sft")),
                ("grpo", require_adapter(adapter or Path(recipe["output_dir"]), f"run GRPO first: make grpo RECIPE={recipe_path}"))]
    return [("base", None),
            ("tuned", require_adapter(adapter or Path(recipe["output_dir"]), f"train first: make sft RECIPE={recipe_path}"))]


def default_output_dir(recipe: dict) -> Path:
    # an SFT recipe reports into <run>/eval, a GRPO recipe into <run>/eval_grpo: both reports survive
    return Path(recipe["output_dir"]).parent / ("eval_grpo" if recipe.get("stage") == "grpo" else "eval")


def decision_rows_of(source_rows: list[dict], example_ids: list[str]) -> list[dict]:
    """The source rows behind examples '<row id>#<turn>' (the decision task's gold label lives there)."""
    by_id = {str(row.get("id", index)): row for index, row in enumerate(source_rows)}
    return [by_id[example_id.rsplit("#", 1)[0]] for example_id in example_ids]


# ---------------------------------------------------------------- the report

def markdown_report(recipe_path: str, keys: list[str], estimates: dict, pairs: list[dict], meta: dict) -> str:
    sample = f"a seeded sample (seed {meta['seed']})" if meta["sampled"] else "the whole split"
    return (f"# Eval: {recipe_path}\n\n"
            f"{meta['n']} examples from `{meta['dataset']}`: {sample}; {meta['left_out']} left out as longer than "
            f"{meta['max_prompt_tokens']} prompt tokens. Greedy, max_new_tokens {meta['max_new_tokens']}, "
            f"{meta['dtype']}. Scores x100 with 95% bootstrap intervals ({stats.N_RESAMPLES} resamples, "
            f"seed {meta['seed']}).\n\n" + stats.markdown_tables(estimates, pairs, keys)
            + "\n![metrics](metrics.png)\n")


def write_report(out_dir: Path, recipe_path: Path, task: Task, statistics: dict, extra_results: dict,
                 matrices: dict, meta: dict) -> dict:
    estimates, pairs = stats.compare(statistics, meta["n"], seed=meta["seed"])
    # a metric that applies to no example of this split (irrelevance_acc without no-call rows) is not reported
    keys = [k for k in task.keys if not any(math.isnan(values[k].value) for values in estimates.values())]
    estimates = {name: {k: values[k] for k in keys} for name, values in estimates.items()}
    pairs = [p for p in pairs if p["metric"] in keys]
    results = {name: {"n": meta["n"], **{k: round(e.value, 2) for k, e in values.items()}, **extra_results.get(name, {})}
               for name, values in estimates.items()}
    intervals = {name: {k: [round(e.low, 2), round(e.high, 2)] for k, e in values.items()}
                 for name, values in estimates.items()}
    write_json(out_dir / "report.json", {"meta": meta, "results": results, "intervals": intervals,
                                         "differences": pairs})
    atomic_write_text(out_dir / "report.md", markdown_report(str(recipe_path), keys, estimates, pairs, meta))
    bar_chart(out_dir / "metrics.png", results, keys, f"{recipe_path.stem}: {' vs '.join(results)} (n={meta['n']})",
              intervals={name: {k: tuple(v) for k, v in values.items()} for name, values in intervals.items()})
    if matrices:
        confusion_chart(out_dir / "confusion.png", matrices, f"{recipe_path.stem}: confusion matrices (n={meta['n']})")
    return results


# ---------------------------------------------------------------- main: read, choose, generate, score, report

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, required=True)
    parser.add_argument("--adapter", type=Path, help="default: the recipe's output_dir")
    parser.add_argument("--output-dir", type=Path)
    parser.add_argument("--max-samples", type=int, help="score a seeded sample of N examples (default: all)")
    parser.add_argument("--classifier", type=Path, default=DEFAULT_CLASSIFIER,
                        help="decision task: the encoder classifier to score beside the LLMs (make classifier)")
    parser.add_argument("--max-new-tokens", type=int, help="default: 64 dialogue, 160 function calls, 48 decisions")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--dtype", default="auto", choices=["auto", "bf16", "fp32"],
                        help="auto: bf16 where the CPU/GPU computes it natively, else fp32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-cache", action="store_true",
                        help="generate even when the same weights already completed the same prompts (runs/.eval_cache)")
    args = parser.parse_args(argv)

    # 1. The recipe, the models it compares (every adapter checked first) and its validation split.
    recipe = read_recipe(args.recipe)
    models = models_to_compare(recipe, args.recipe, args.adapter)
    out_dir = args.output_dir or default_output_dir(recipe)
    dataset, task_name = eval_dataset(recipe)
    source_rows = read_rows(dataset)
    task_name = "decision" if task_name == "text" and is_decision_data(source_rows) else task_name
    task = TASKS[task_name]
    if task_name == "decision" and find_classifier(args.classifier) is None:
        sys.exit(f"error: no classifier in {args.classifier} (train it first: make classifier)")

    # 2. The examples: every target turn whose prompt fits the length the recipe trained on.
    examples = examples_from_sharegpt(source_rows)
    tokenizer, _ = load_model(recipe["model_name_or_path"], weights=False)
    template = get_template(tokenizer, recipe["template"])
    prompt_ids = [encode_prompt(tokenizer, template, ex) for ex in examples]
    max_new_tokens = args.max_new_tokens or task.max_new_tokens
    max_prompt_tokens = int(recipe.get("max_prompt_length") or int(recipe.get("cutoff_len", 2048)) - max_new_tokens)
    chosen, left_out = select(examples, prompt_ids, max_prompt_tokens, args.max_samples, args.seed)
    if not chosen:
        sys.exit(f"error: no example of {dataset} fits {max_prompt_tokens} prompt tokens")
    dtype, why = pick_dtype(args.dtype)
    print(f"eval: {task_name} task, {len(chosen)} examples of {dataset.name} ({left_out} too long), "
          f"{len(models)} models, precision {why}", file=sys.stderr)

    # 3. Decisions only: the non-LLM deciders, on exactly the same rows.
    statistics, extra_results, matrices = {}, {}, {}
    if task_name == "decision":
        decision_rows = decision_rows_of(source_rows, [examples[i].id for i in chosen])
        gold = [r["label"] for r in decision_rows]
        for name, predicted in (("rules", [decide(r["answer"], r["context"]) for r in decision_rows]),
                                ("classifier", predict_labels(args.classifier, [classifier_text(r) for r in decision_rows]))):
            statistics[name] = decision_statistic_of_labels(predicted, gold)
            matrices[name] = decision_scores(predicted, gold)["confusion_matrix"]
            extra_results[name] = {"invalid": sum(p not in DECISION_LABELS for p in predicted)}
            write_jsonl(out_dir / f"predictions_{name}.jsonl",
                        [{"id": examples[i].id, "predict": p, "label": g} for i, p, g in zip(chosen, predicted, gold)])

    # 4. Each model generates for the same prompts; its predictions are written, then scored.
    gen = dict(max_new_tokens=max_new_tokens, batch_size=args.batch_size, stop_ids=stop_token_ids(tokenizer, template))
    prompts = [prompt_ids[i] for i in chosen]
    seconds, cached = {}, []
    for name, adapter in models:
        texts = complete_or_reuse(recipe["model_name_or_path"], adapter, tokenizer, prompts, dtype=dtype, name=name,
                                  seconds=seconds, reused=cached, use_cache=not args.no_cache, **gen)
        rows = [{"id": examples[i].id, "prompt": examples[i].messages[-1]["content"], "predict": text,
                 "label": examples[i].label, **({"tools": examples[i].tools} if task_name == "fc" else {})}
                for i, text in zip(chosen, texts)]
        if task_name == "decision":  # the label is the gold class; the full reference (label + reason) is kept too
            rows = [{**r, "reference": r["label"], "label": g} for r, g in zip(rows, gold)]
            predicted = [extract_label(r["predict"]) for r in rows]
            matrices[name] = decision_scores(predicted, gold)["confusion_matrix"]
            extra_results[name] = {"invalid": sum(p not in DECISION_LABELS for p in predicted)}
        write_jsonl(out_dir / f"predictions_{name}.jsonl", rows)
        statistics[name] = task.statistic(rows)

    # 5. The report: every metric with its interval, every pair's paired difference.
    meta = {"recipe": str(args.recipe), "task": task_name, "models": {n: str(a) if a else None for n, a in models},
            **({"classifier": str(args.classifier)} if task_name == "decision" else {}),
            "dataset": str(dataset.relative_to(REPO_ROOT)), "n": len(chosen), "left_out": left_out,
            "sampled": args.max_samples is not None and len(chosen) < len(examples) - left_out,
            "max_prompt_tokens": max_prompt_tokens, "max_new_tokens": max_new_tokens, "seed": args.seed,
            "dtype": str(dtype).replace("torch.", ""), "generation_seconds": seconds, "reused_completions": cached}
    results = write_report(out_dir, args.recipe, task, statistics, extra_results, matrices, meta)
    print(json.dumps({"report": str(out_dir / "report.json"), **results}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
