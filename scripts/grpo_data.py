"""GRPO prompts for function calling, rendered exactly as SFT saw them.

    python -m scripts.grpo_data --recipe configs/fc_smollm2_grpo_cpu.yaml [--show 2]

TRL 0.24 does not pass a row's tools to the chat template, so each prompt is rendered here, as plain
text, by LLaMA-Factory's template (the one the SFT recipe trained with): system message with the
tools in the template's tool format, the user's query, and the assistant header. TRL then generates
from that text as it is. Rows that need no call are prompts too, with answers "[]": the rewards pay for
declining there (reward/fc.py); the recipe key `no_call_share` sets what share of the prompts are such
rows (with_no_call_share). The dataset keeps `tools` and `answers` (the reference calls) as columns;
TRL passes them to the reward functions. `--show N` prints N rendered prompts with their token
counts, so you can see exactly what the policy is asked.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from eval.datasets import eval_dataset, examples_from_sharegpt
from eval.generate import encode_prompt, get_template, load_model
from eval.toolcall import parse_tool_calls
from scripts.common import read_rows, registered_dataset
from scripts.recipes import read_recipe

NO_CALL = "[]"  # the answers of a prompt that needs no call


def dataset_file(recipe: dict, name: str) -> Path:
    path, entry = registered_dataset(recipe.get("dataset_dir", "."), name)
    if "tools" not in entry.get("columns", {}):
        sys.exit(f"error: dataset '{name}' has no tools column; GRPO here is for function calling")
    return path


def build_rows(sharegpt_rows: list[dict], tokenizer, template, max_prompt_tokens: int | None = None):
    """[{"prompt", "tools", "answers"}] from function-calling ShareGPT rows, and how many were left
    out because the rendered prompt is longer than max_prompt_tokens (TRL would cut it from the left,
    which removes the tool list: worse than leaving the row out)."""
    rows, too_long = [], 0
    for example in examples_from_sharegpt(sharegpt_rows, targets={"function_call", "gpt"}):
        ids = encode_prompt(tokenizer, template, example)
        if max_prompt_tokens and len(ids) > max_prompt_tokens:
            too_long += 1
            continue
        # a gpt turn is a no-call row's text reply: its reference is "no call"
        answers = example.label if parse_tool_calls(example.label) else NO_CALL
        rows.append({"prompt": tokenizer.decode(ids, skip_special_tokens=False),
                     "tools": example.tools, "answers": answers})
    return rows, too_long


def with_no_call_share(rows: list[dict], share: float, seed: int) -> list[dict]:
    """The prompts with `share` of them needing no call: every call prompt once, the no-call prompts drawn
    (seeded; repeated when there are fewer than the share asks for) to make up that share, interleaved.
    TRL samples prompts uniformly from the dataset, so a run sees relevance rows at that rate instead of
    the data's (12-15% in the shipped sample)."""
    if not 0.0 <= share < 1.0:
        sys.exit(f"error: no_call_share must be at least 0 and below 1, got {share}")
    no_call = [r for r in rows if r["answers"] == NO_CALL]
    calls = [r for r in rows if r["answers"] != NO_CALL]
    if not no_call or not calls:
        return rows
    rng = random.Random(seed)
    rng.shuffle(no_call)
    wanted = round(share / (1.0 - share) * len(calls))
    drawn = [no_call[k % len(no_call)] for k in range(wanted)]
    out, owed, k = [], 0.0, 0
    for row in calls:
        out.append(row)
        owed += wanted / len(calls)
        while owed >= 1.0 and k < wanted:
            out.append(drawn[k])
            k, owed = k + 1, owed - 1.0
    return out + drawn[k:]


def build_dataset(recipe: dict, tokenizer, split: str = "train"):
    from datasets import Dataset

    template = get_template(tokenizer, recipe["template"])
    name = recipe["dataset"] if split == "train" else None
    path = dataset_file(recipe, name) if name else eval_dataset(recipe)[0]
    rows, too_long = build_rows(read_rows(path), tokenizer, template,
                                recipe.get("max_prompt_length"))
    if split == "train" and recipe.get("no_call_share") is not None:  # a val split keeps its own share
        rows = with_no_call_share(rows, float(recipe["no_call_share"]), int(recipe.get("seed", 42)))
    if recipe.get("max_samples"):
        rows = rows[: int(recipe["max_samples"])]
    return Dataset.from_list(rows), too_long


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, required=True)
    parser.add_argument("--show", type=int, default=2)
    args = parser.parse_args(argv)
    recipe = read_recipe(args.recipe)
    tokenizer, _ = load_model(recipe["model_name_or_path"], weights=False)
    dataset, too_long = build_dataset(recipe, tokenizer)
    for row in dataset.select(range(min(args.show, len(dataset)))):
        n_tokens = len(tokenizer(row["prompt"], add_special_tokens=False)["input_ids"])
        print(f"----- prompt ({n_tokens} tokens)\n{row['prompt']}\n----- reference calls\n{row['answers']}\n")
    print(f"grpo_data: {len(dataset)} prompts, {too_long} left out as longer than max_prompt_length")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
