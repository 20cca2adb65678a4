"""Rule rewards for GRPO on function calling, as TRL's GRPOTrainer calls them:
`fn(completions, **kwargs) -> list[float]`, with the dataset columns `tools` (converted tools JSON
string) and `answers` (reference calls JSON string) arriving as keyword lists, one item per completion.

Every reward is a view of the one per-row scorer, eval.toolcall.score, so training optimises exactly
what `make eval` measures:
  json_parse_reward  1 when at least one call parses, else 0
  schema_hit_reward  1 when every call names an offered tool and gives its required parameters
  exec_reward        1 when, on top of that, no parameter is undeclared and every value has its type
  semantic_reward    argument F1 against the reference calls (0..1)
  combined_reward    weighted sum of the four (default 0.25 each; weights= overrides)
On a row that needs no call (its answers "[]", or a text reply) each of the four is 1 when the completion
makes no call and 0 when it calls anything: declining is the whole of the right answer there.

    >>> tools = '[{"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]'
    >>> combined_reward(['Action: get_weather\nAction Input: {"city": "Paris"}', "Sorry, I cannot."],
    ...                 tools=[tools, tools], answers=['[{"name": "get_weather", "arguments": {"city": "Paris"}}]', "[]"])
    [1.0, 1.0]
A completion may be a string or a conversational list [{"role": "assistant", "content": ...}].
Anything unparseable, None or hostile scores 0; no reward raises.

A GRPO recipe lists the four single rewards with `reward_weights`, so TRL logs each one and its
weighted sum is combined_reward; combined_reward itself is for callers that want one function.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from eval.toolcall import REWARD_WEIGHTS, combined, component, score
from reward.completions import completion_text, per_completion  # noqa: F401 (completion_text: part of this API)

ZERO = {"parse": 0.0, "name": 0.0, "arg_f1": 0.0, "schema_hit": 0.0, "exec": 0.0, "exact": 0.0, "no_call": None}


@lru_cache(maxsize=8192)
def _score_strings(text: str, reference: Any, tools: Any) -> dict[str, float | None]:
    """TRL calls the four rewards one after the other on the same batch: score each
    (completion, reference, tools) once. Callers get copies."""
    return score(text, reference, tools)


def _score(text: str, reference: Any, tools: Any) -> dict[str, float | None]:
    if isinstance(reference, (str, type(None))) and isinstance(tools, (str, type(None))):
        return dict(_score_strings(text, reference, tools))
    return score(text, reference, tools)


def row_scores(completions: Any, **kwargs: Any) -> list[dict[str, float | None]]:
    """toolcall.score for each completion against its row's answers and tools; ZERO on any failure."""
    return per_completion(completions, kwargs, ("tools", "answers"),
                          lambda text, tools, reference: _score(text, reference, tools), ZERO)


def json_parse_reward(completions: Any, **kwargs: Any) -> list[float]:
    return [component(s, "parse") for s in row_scores(completions, **kwargs)]


def schema_hit_reward(completions: Any, **kwargs: Any) -> list[float]:
    return [component(s, "schema_hit") for s in row_scores(completions, **kwargs)]


def exec_reward(completions: Any, **kwargs: Any) -> list[float]:
    return [component(s, "exec") for s in row_scores(completions, **kwargs)]


def semantic_reward(completions: Any, **kwargs: Any) -> list[float]:
    return [component(s, "arg_f1") for s in row_scores(completions, **kwargs)]


# the order matches REWARD_WEIGHTS' keys: parse, schema_hit, exec, arg_f1
SINGLE_REWARDS = (json_parse_reward, schema_hit_reward, exec_reward, semantic_reward)


def combined_reward(completions: Any, weights: dict[str, float] | None = None, **kwargs: Any) -> list[float]:
    """Weighted sum; weights by score key (parse, schema_hit, exec, arg_f1), default 0.25 each."""
    if not isinstance(weights, dict):
        weights = REWARD_WEIGHTS
    scores = row_scores(completions, **kwargs)
    try:
        return [combined(s, weights) for s in scores]
    except Exception:  # non-numeric weights from a bad recipe: score 0 rather than crash mid-run
        return [0.0] * len(scores)
