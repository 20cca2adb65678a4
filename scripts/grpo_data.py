"""GRPO prompts, rendered exactly as SFT saw them: function calling, or the interviewer.

    python -m scripts.grpo_data --recipe configs/fc_smollm2_grpo_cpu.yaml [--show 2]
    python -m scripts.grpo_data --recipe configs/interview_smollm2_grpo_cpu.yaml [--show 2]

The recipe's dataset says which: one with a tools column is function calling; an interview dataset of
whole dialogues (interview_train) gives the interviewer's prompts (interview_rows).

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
import json
import random
import sys
from pathlib import Path

from eval.datasets import Example, examples_from_sharegpt
from eval.generate import encode_prompt, get_template, load_model
from eval.interview_policy import closing_score
from eval.toolcall import parse_tool_calls
from scripts.common import read_rows, registered_dataset
from scripts.interview_format import FORMATS, decision_turns, interviewer_prompt, plan_of_whole_system
from scripts.recipes import read_recipe

NO_CALL = "[]"  # the answers of a prompt that needs no call


def dataset_file(recipe: dict, name: str) -> tuple[Path, str]:
    """(file, task): "fc" for a dataset with a tools column, "interview" for an interview dataset."""
    path, entry = registered_dataset(recipe.get("dataset_dir", "."), name)
    if "tools" in entry.get("columns", {}):
        return path, "fc"
    if name.startswith("interview") and not name.startswith("interview_window"):
        return path, "interview"
    sys.exit(f"error: dataset '{name}': GRPO here takes a function-calling dataset (a tools column) or the "
             "interviewer's whole dialogues (interview_train; the window rows lack the history the rewards read)")


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


def with_share(rows: list[dict], special, share: float, seed: int, key: str = "share") -> list[dict]:
    """The prompts with `share` of them special (special(row) true): every other prompt once, the special
    ones drawn (seeded; repeated when there are fewer than the share asks for) to make up that share,
    interleaved. TRL samples prompts uniformly from the dataset, so a run sees them at that rate instead
    of the data's."""
    if not 0.0 <= share < 1.0:
        sys.exit(f"error: {key} must be at least 0 and below 1, got {share}")
    chosen = [r for r in rows if special(r)]
    others = [r for r in rows if not special(r)]
    if not chosen or not others:
        return rows
    rng = random.Random(seed)
    rng.shuffle(chosen)
    wanted = round(share / (1.0 - share) * len(others))
    drawn = [chosen[k % len(chosen)] for k in range(wanted)]
    out, owed, k = [], 0.0, 0
    for row in others:
        out.append(row)
        owed += wanted / len(others)
        while owed >= 1.0 and k < wanted:
            out.append(drawn[k])
            k, owed = k + 1, owed - 1.0
    return out + drawn[k:]


def with_no_call_share(rows: list[dict], share: float, seed: int) -> list[dict]:
    """Function calling: `share` of the prompts need no call (relevance rows; 12-15% in the shipped sample)."""
    return with_share(rows, lambda r: r["answers"] == NO_CALL, share, seed, "no_call_share")


def interview_rows(sharegpt_rows: list[dict], tokenizer, template, fmt: str, max_prompt_tokens: int | None = None):
    """[{"prompt", "history", "reference", "decision", "closing"}], one per interviewer turn of every whole dialogue
    (two interviewer turns at least: the one-turn task rows are left out), rendered in `fmt` (the SFT
    recipe's format: interview_format), and how many were left out as longer than max_prompt_tokens.
    history: the interview up to the turn (JSON), reference: the dialogue's own turn, decision: whether it
    opens, closes or changes topic (interview_format.decision_turns), closing: whether it is the closing (a
    score: the policy scorer's rule). The rewards read history and reference."""
    if fmt not in FORMATS:
        sys.exit(f"error: prompt_format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    rows, too_long = [], 0
    for row in sharegpt_rows:
        turns = row["conversations"]
        if sum(t["from"] == "gpt" for t in turns) < 2:
            continue
        job, topics = plan_of_whole_system(row.get("system", ""))
        messages = [{"role": "candidate" if t["from"] == "human" else "interviewer", "content": t["value"]}
                    for t in turns]
        deciding = set(decision_turns(messages, topics))
        for k, message in enumerate(messages):
            if message["role"] != "interviewer" or k == 0:  # a turn answers something
                continue
            system, chat = interviewer_prompt(fmt, messages[:k], job, topics)
            ids = encode_prompt(tokenizer, template, Example(id=str(k), system=system, messages=chat, label=""))
            if max_prompt_tokens and len(ids) > max_prompt_tokens:
                too_long += 1
                continue
            rows.append({"prompt": tokenizer.decode(ids, skip_special_tokens=False),
                         "history": json.dumps(messages[:k], ensure_ascii=False),
                         "reference": message["content"], "decision": k in deciding,
                         "closing": closing_score(message["content"]) is not None})
    return rows, too_long


def eval_dataset_name(recipe: dict) -> str:
    return recipe.get("eval_dataset") or recipe["dataset"].replace("_train", "_val")


def task_rows(recipe: dict, name: str, tokenizer, template) -> tuple[list[dict], int, str]:
    """(prompts of dataset `name` as the recipe renders them, how many were longer than max_prompt_length, task)."""
    path, task = dataset_file(recipe, name)
    if task == "interview":
        rows, too_long = interview_rows(read_rows(path), tokenizer, template, recipe.get("prompt_format", "window"),
                                        recipe.get("max_prompt_length"))
    else:
        rows, too_long = build_rows(read_rows(path), tokenizer, template, recipe.get("max_prompt_length"))
    return rows, too_long, task


def build_dataset(recipe: dict, tokenizer, split: str = "train"):
    """(the recipe's prompts as a datasets.Dataset, {"too_long": n, "in_eval": n}: the rows left out).
    Training prompts identical to a prompt of the eval dataset are left out (in_eval): `make eval` scores
    the GRPO model on that split, and a prompt it was rewarded on would not measure anything."""
    from datasets import Dataset

    template = get_template(tokenizer, recipe["template"])
    eval_name = eval_dataset_name(recipe)
    name = recipe["dataset"] if split == "train" else eval_name
    rows, too_long, task = task_rows(recipe, name, tokenizer, template)
    in_eval = 0
    if split == "train":  # the eval split keeps its rows and its own shares
        if name != eval_name:
            eval_prompts = {r["prompt"] for r in task_rows(recipe, eval_name, tokenizer, template)[0]}
            kept = [r for r in rows if r["prompt"] not in eval_prompts]
            rows, in_eval = kept, len(rows) - len(kept)
        seed = int(recipe.get("seed", 42))
        if task == "interview" and recipe.get("decision_share") is not None:
            rows = with_share(rows, lambda r: r["decision"], float(recipe["decision_share"]), seed, "decision_share")
        if task == "interview" and recipe.get("closing_share") is not None:  # after decision_share: of all prompts
            rows = with_share(rows, lambda r: r["closing"], float(recipe["closing_share"]), seed, "closing_share")
        if task == "fc" and recipe.get("no_call_share") is not None:
            rows = with_no_call_share(rows, float(recipe["no_call_share"]), seed)
    if recipe.get("max_samples"):
        rows = rows[: int(recipe["max_samples"])]
    return Dataset.from_list(rows), {"too_long": too_long, "in_eval": in_eval}


def left_out_text(left_out: dict) -> str:
    """build_dataset's left-out counts, as the launcher and --show print them."""
    return (f"left out: {left_out['too_long']} longer than max_prompt_length, "
            f"{left_out['in_eval']} identical to a prompt of the eval dataset")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, required=True)
    parser.add_argument("--show", type=int, default=2)
    args = parser.parse_args(argv)
    recipe = read_recipe(args.recipe)
    tokenizer, _ = load_model(recipe["model_name_or_path"], weights=False)
    dataset, left_out = build_dataset(recipe, tokenizer)
    for row in dataset.select(range(min(args.show, len(dataset)))):
        n_tokens = len(tokenizer(row["prompt"], add_special_tokens=False)["input_ids"])
        reference = row["answers"] if "answers" in row else row["reference"]
        print(f"----- prompt ({n_tokens} tokens)\n{row['prompt']}\n----- reference\n{reference}\n")
    print(f"grpo_data: {len(dataset)} prompts; {left_out_text(left_out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
