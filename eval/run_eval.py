"""Score the base model and the trained adapter(s) of a recipe on its validation split.

    python -m eval.run_eval --recipe configs/<recipe>.yaml
        [--adapter DIR] [--max-samples 40] [--max-new-tokens N] [--batch-size 8] [--output-dir DIR]

The task follows from the validation dataset's registration in dataset_info.json:
  - dialogue (interview): every assistant turn of a validation dialogue is one example (prompt = the
    dialogue so far, label = what the interviewer said); metrics: BLEU-4 and ROUGE-1/2/L, computed
    as LLaMA-Factory computes them (eval/text_metrics.py);
  - function calling (a `tools` column): every function_call turn is one example, the prompt carries
    the row's tools; metrics: parse_rate, name_acc, arg_f1, schema_hit_rate, exec_rate, exact_match
    and the GRPO combined reward (eval/fc_metrics.py, on the shared core eval/toolcall.py);
  - follow-up decisions (rows with question / answer / context / label): every row is one example;
    metrics: accuracy, macro-F1, per-class recall, invalid (eval/decision_metrics.py), and a
    confusion-matrix PNG. The rule baseline (eval/decision_rules.py) and the encoder classifier
    (--classifier, `make classifier`) are scored on the same rows beside the LLMs.
Models compared: for an SFT recipe, base and tuned (the recipe's output_dir, or --adapter); for a
GRPO recipe (configs/*_grpo_*.yaml), base, sft (its sft_adapter) and grpo (its output_dir).

Examples whose prompt does not fit the recipe's length budget are left out (the model never trained
on such lengths) and counted. A seeded sample of --max-samples examples is scored, the same for
every model. Writes into the output dir (default: <recipe output_dir>/../eval, or ../eval_grpo for a
GRPO recipe): one
predictions_<model>.jsonl per model, report.json, report.md and metrics.png.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import yaml

from eval.decision_metrics import decision_scores, extract_label
from eval.decision_rules import LABELS, decide
from eval.fc_metrics import aggregate as fc_scores
from eval.generate import (Example, attach_adapter, encode_prompt, generate, get_template, load_model,
                           require_adapter, stop_token_ids)
from eval.text_metrics import KEYS as TEXT_KEYS
from eval.text_metrics import corpus_scores
from scripts.common import REPO_ROOT, atomic_write_text, registered_dataset, write_json, write_jsonl

ROLE = {"human": "user", "gpt": "assistant", "function_call": "function", "observation": "observation"}
TARGET_ROLES = {"gpt", "function_call"}
FC_KEYS = ["parse_rate", "name_acc", "arg_f1", "schema_hit_rate", "exec_rate", "exact_match", "combined_reward"]
DECISION_KEYS = ["accuracy", "macro_f1"] + [f"recall_{label}" for label in LABELS]
# an interviewer turn's first sentences; a parallel call in full; a label and its one-line reason
DEFAULT_NEW_TOKENS = {"text": 64, "fc": 128, "decision": 48}
DEFAULT_CLASSIFIER = Path("runs/followup_classifier_cpu")


def read_recipe(path: Path) -> dict:
    if not path.is_file():
        sys.exit(f"error: recipe not found: {path}")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def eval_dataset(recipe: dict) -> tuple[Path, str]:
    """(file, task) of the recipe's eval_dataset, or of its training dataset with _train -> _val."""
    name = recipe.get("eval_dataset") or str(recipe["dataset"]).split(",")[0].strip().replace("_train", "_val")
    path, entry = registered_dataset(recipe.get("dataset_dir", "."), name)
    return path, "fc" if "tools" in entry.get("columns", {}) else "text"


def is_decision_data(rows: list[dict]) -> bool:
    return bool(rows) and all(isinstance(r, dict) and r.get("label") in LABELS and "context" in r for r in rows)


def examples_from_sharegpt(rows: list[dict], targets: set[str] = TARGET_ROLES) -> list[Example]:
    """One example per turn whose role is in targets: the conversation before it, its text as label."""
    out = []
    for row_index, row in enumerate(rows):
        turns = row["conversations"]
        for k, turn in enumerate(turns):
            if turn["from"] not in targets:
                continue
            history = [{"role": ROLE[t["from"]], "content": t["value"]} for t in turns[:k]]
            out.append(Example(id=f"{row.get('id', row_index)}#{k}", system=row.get("system", ""),
                               messages=history, label=turn["value"], tools=row.get("tools", "")))
    return out


def select(examples, prompt_ids, max_prompt_tokens: int, max_samples: int, seed: int):
    fitting = [i for i, ids in enumerate(prompt_ids) if len(ids) <= max_prompt_tokens]
    chosen = sorted(random.Random(seed).sample(fitting, min(max_samples, len(fitting))))
    return chosen, len(examples) - len(fitting)


def models_to_compare(recipe: dict, recipe_path: Path, adapter: Path | None) -> list[tuple[str, Path | None]]:
    """[(name, adapter dir or None for the base model)], every adapter checked before any generation."""
    if recipe.get("stage") == "grpo":
        hint = f"run GRPO first: make grpo RECIPE={recipe_path}"
        return [("base", None),
                ("sft", require_adapter(Path(recipe["sft_adapter"]), "train the SFT recipe first: make sft")),
                ("grpo", require_adapter(adapter or Path(recipe["output_dir"]), hint))]
    return [("base", None),
            ("tuned", require_adapter(adapter or Path(recipe["output_dir"]), f"train first: make sft RECIPE={recipe_path}"))]


def decision_results(predicted: list[str], gold: list[str]) -> tuple[dict, dict]:
    """(report row x100, confusion matrix) for predicted labels."""
    scores = decision_scores(predicted, gold)
    row = {"n": scores["n"], "accuracy": round(100 * scores["accuracy"], 2), "macro_f1": round(100 * scores["macro_f1"], 2),
           **{f"recall_{k}": round(100 * v["recall"], 2) for k, v in scores["per_class"].items()},
           "invalid": scores["invalid"]}
    return row, scores["confusion_matrix"]


def score_rows(task: str, rows: list[dict]) -> dict[str, float]:
    if task == "decision":
        return decision_results([extract_label(r["predict"]) for r in rows], [r["label"] for r in rows])[0]
    if task == "fc":
        scores = fc_scores(rows)
        return {"n": scores["n"], **{k: round(100 * scores[k], 2) for k in FC_KEYS}}
    return corpus_scores([(r["predict"], r["label"]) for r in rows])


def bar_chart(path: Path, results: dict[str, dict], keys: list[str], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(max(7, 1.3 * len(keys)), 4), dpi=120)
    for n, name in enumerate(names):
        values = [results[name][k] for k in keys]
        bars = ax.bar([x + n * width for x in range(len(keys))], values, width, label=name)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(keys))], [k.upper() for k in keys],
                  fontsize=8)
    ax.set_ylabel("score (x100)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def confusion_chart(path: Path, matrices: dict[str, dict], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(matrices)
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.6), dpi=120, squeeze=False)
    for ax, name in zip(axes[0], names):
        matrix = matrices[name]
        columns = list(next(iter(matrix.values())))
        values = [[matrix[t][p] for p in columns] for t in matrix]
        ax.imshow(values, cmap="Blues")
        for i, row in enumerate(values):
            for j, v in enumerate(row):
                ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                        color="white" if v > max(map(max, values)) / 2 else "black")
        ax.set_xticks(range(len(columns)), [c.replace("_", "\n") for c in columns], fontsize=7)
        ax.set_yticks(range(len(matrix)), [t.replace("_", "\n") for t in matrix], fontsize=7)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_title(name, fontsize=9)
    axes[0][0].set_ylabel("true", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def markdown_report(recipe_path: str, results: dict[str, dict], keys: list[str], meta: dict) -> str:
    lines = [f"# Eval: {recipe_path}", "",
             f"{meta['n']} examples from `{meta['dataset']}` (seed {meta['seed']}, greedy, "
             f"max_new_tokens {meta['max_new_tokens']}); {meta['left_out']} left out as longer than "
             f"{meta['max_prompt_tokens']} prompt tokens. Scores x100.", "",
             "| model | " + " | ".join(keys) + " |",
             "|---|" + "---|" * len(keys)]
    for name, scores in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{scores[k]:.2f}" for k in keys) + " |")
    return "\n".join(lines) + "\n\n![metrics](metrics.png)\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, required=True)
    parser.add_argument("--adapter", type=Path, help="default: the recipe's output_dir")
    parser.add_argument("--output-dir", type=Path)
    parser.add_argument("--max-samples", type=int, help="default: 40 (dialogue, function calls), 100 (decisions)")
    parser.add_argument("--classifier", type=Path, default=DEFAULT_CLASSIFIER,
                        help="decision task: the encoder classifier to score beside the LLMs (make classifier)")
    parser.add_argument("--max-new-tokens", type=int, help="default: 64 for dialogue, 128 for function calls")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    recipe = read_recipe(args.recipe)
    models = models_to_compare(recipe, args.recipe, args.adapter)
    # an SFT recipe reports into <run>/eval, a GRPO recipe into <run>/eval_grpo: both reports survive
    out_dir = args.output_dir or Path(recipe["output_dir"]).parent / ("eval_grpo" if recipe.get("stage") == "grpo" else "eval")
    dataset, task = eval_dataset(recipe)
    source_rows = json.loads(dataset.read_text(encoding="utf-8"))
    task = "decision" if task == "text" and is_decision_data(source_rows) else task
    keys = {"fc": FC_KEYS, "decision": DECISION_KEYS, "text": TEXT_KEYS}[task]
    max_new_tokens = args.max_new_tokens or DEFAULT_NEW_TOKENS[task]
    max_samples = args.max_samples or (100 if task == "decision" else 40)
    if task == "decision" and not (args.classifier / "config.json").is_file():
        sys.exit(f"error: no classifier in {args.classifier} (train it first: make classifier)")
    examples = examples_from_sharegpt(source_rows)

    tokenizer, _ = load_model(recipe["model_name_or_path"], weights=False)
    template = get_template(tokenizer, recipe["template"])
    prompt_ids = [encode_prompt(tokenizer, template, ex) for ex in examples]
    max_prompt_tokens = int(recipe.get("max_prompt_length") or int(recipe.get("cutoff_len", 2048)) - max_new_tokens)
    chosen, left_out = select(examples, prompt_ids, max_prompt_tokens, max_samples, args.seed)
    if not chosen:
        sys.exit(f"error: no example of {dataset} fits {max_prompt_tokens} prompt tokens")
    prompts = [prompt_ids[i] for i in chosen]
    gen = dict(max_new_tokens=max_new_tokens, batch_size=args.batch_size,
               stop_ids=stop_token_ids(tokenizer, template))

    results, matrices = {}, {}
    source_of = {str(row.get("id", index)): row for index, row in enumerate(source_rows)}  # example ids: '<row>#<turn>'
    if task == "decision":  # the non-LLM deciders, on exactly the chosen rows
        from scripts.train_classifier import classifier_text, predict_labels

        rows_by_example = [source_of[examples[i].id.rsplit("#", 1)[0]] for i in chosen]
        gold = [r["label"] for r in rows_by_example]
        for name, predicted in (("rules", [decide(r["answer"], r["context"]) for r in rows_by_example]),
                                ("classifier", predict_labels(args.classifier, [classifier_text(r) for r in rows_by_example]))):
            results[name], matrices[name] = decision_results(predicted, gold)
            write_jsonl(out_dir / f"predictions_{name}.jsonl",
                        [{"id": examples[i].id, "predict": p, "label": g} for i, p, g in zip(chosen, predicted, gold)])
    for name, adapter in models:
        _, model = load_model(recipe["model_name_or_path"])
        if adapter is not None:
            model = attach_adapter(model, adapter)
        texts = generate(model, tokenizer, prompts, desc=name, **gen)
        rows = [{"id": examples[i].id, "prompt": examples[i].messages[-1]["content"], "predict": text,
                 "label": examples[i].label, **({"tools": examples[i].tools} if task == "fc" else {})}
                for i, text in zip(chosen, texts)]
        if task == "decision":  # the label is the gold class; the full reference (label + reason) is kept too
            rows = [{**r, "reference": r["label"], "label": source_of[examples[i].id.rsplit("#", 1)[0]]["label"]}
                    for r, i in zip(rows, chosen)]
            matrices[name] = decision_results([extract_label(r["predict"]) for r in rows], [r["label"] for r in rows])[1]
        write_jsonl(out_dir / f"predictions_{name}.jsonl", rows)
        results[name] = score_rows(task, rows)
    meta = {"recipe": str(args.recipe), "task": task, "models": {n: str(a) if a else None for n, a in models},
            **({"classifier": str(args.classifier)} if task == "decision" else {}),
            "dataset": str(dataset.relative_to(REPO_ROOT)), "n": len(chosen), "left_out": left_out,
            "max_prompt_tokens": max_prompt_tokens, "max_new_tokens": max_new_tokens, "seed": args.seed}
    write_json(out_dir / "report.json", {"meta": meta, "results": results})
    atomic_write_text(out_dir / "report.md", markdown_report(str(args.recipe), results, keys, meta))
    bar_chart(out_dir / "metrics.png", results, keys,
              f"{args.recipe.stem}: {' vs '.join(results)} (n={len(chosen)})")
    if matrices:
        confusion_chart(out_dir / "confusion.png", matrices, f"{args.recipe.stem}: confusion matrices (n={len(chosen)})")
    print(json.dumps({"report": str(out_dir / "report.json"), **results}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
