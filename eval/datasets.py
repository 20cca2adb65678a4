"""Evaluation examples from the registered datasets: which split a recipe is scored on, its task, and one
example per target turn. Shared by make eval, the GRPO prompt builder and the benchmarks."""
from __future__ import annotations

import random
from dataclasses import dataclass

from scripts.common import registered_dataset
from scripts.prompts import DECISION_LABELS
from scripts.recipes import training_dataset

ROLE = {"human": "user", "gpt": "assistant", "function_call": "function", "observation": "observation"}
TARGET_ROLES = {"gpt", "function_call"}


@dataclass
class Example:
    id: str
    system: str
    messages: list[dict]  # [{"role": "user"|"assistant"|"function"|"observation", "content"}...], ends with the user turn
    label: str
    tools: str = ""  # the row's tools (JSON string) for function calling; the template writes them into the system


def eval_dataset(recipe: dict):
    """(file, task) of the recipe's eval_dataset, or of its training dataset with _train -> _val."""
    name = recipe.get("eval_dataset") or training_dataset(recipe).replace("_train", "_val")
    path, entry = registered_dataset(recipe.get("dataset_dir", "."), name)
    return path, "fc" if "tools" in entry.get("columns", {}) else "text"


def is_decision_data(rows: list[dict]) -> bool:
    return bool(rows) and all(isinstance(r, dict) and r.get("label") in DECISION_LABELS and "context" in r for r in rows)


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


def select(examples, prompt_ids, max_prompt_tokens: int, max_samples: int | None, seed: int):
    """(indices of the examples scored, how many were left out as too long): every fitting example, or a
    seeded sample of max_samples of them, in dataset order."""
    fitting = [i for i, ids in enumerate(prompt_ids) if len(ids) <= max_prompt_tokens]
    if max_samples is None or max_samples >= len(fitting):
        return fitting, len(examples) - len(fitting)
    return sorted(random.Random(seed).sample(fitting, max_samples)), len(examples) - len(fitting)
