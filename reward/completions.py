"""What TRL hands every reward function: the completions, and the dataset's columns as keyword lists.
Shared by the rewards of reward/fc.py and reward/interview.py."""

from __future__ import annotations

from typing import Any


def completion_text(completion: Any) -> str | None:
    """The text of a completion: a string, or the assistant contents of a conversational list."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, list):
        parts = [m.get("content") for m in completion
                 if isinstance(m, dict) and m.get("role", "assistant") == "assistant"]
        texts = [p for p in parts if isinstance(p, str)]
        return "\n".join(texts) if texts else None
    return None


def column(kwargs: dict, name: str, n: int) -> list:
    """The column `name` for n completions: None where it is missing or short."""
    values = kwargs.get(name)
    if not isinstance(values, (list, tuple)):
        return [None] * n
    return list(values[:n]) + [None] * (n - len(values))


def per_completion(completions: Any, kwargs: dict, columns: tuple[str, ...], score, failed: dict) -> list[dict]:
    """score(text, *the row's values of columns) for each completion; a copy of `failed` for a completion
    with no text, and for any exception (a reward must not take a training run down)."""
    try:
        completions = list(completions)
    except TypeError:
        return []
    values = [column(kwargs, name, len(completions)) for name in columns]
    out = []
    for completion, *row in zip(completions, *values):
        try:
            text = completion_text(completion)
            out.append(score(text, *row) if text is not None else dict(failed))
        except Exception:
            out.append(dict(failed))
    return out
