"""Rule rewards for GRPO on the interviewer, as TRL's GRPOTrainer calls them:
`fn(completions, **kwargs) -> list[float]`, one interviewer turn per completion. The dataset columns
(scripts/grpo_data.py) arrive as keyword lists, one item per completion:
  history    the interview so far, a JSON list of {"role": "candidate" | "interviewer", "content"},
             ending with the candidate's answer the turn replies to
  reference  the training dialogue's own turn at that point (a closing there means: close now)

Every reward is a view of the one policy scorer, eval.interview_policy.turn_checks (the per-turn form of
the checks `make simulate` reports), so GRPO optimises what the simulation measures:
  closing_reward     1 when the turn closes (综合评分 N/100 + 点评) exactly where the reference closes, else 0
  score_reward       where the reference closes: 1 - |N - reference N| / 50 (at least 0), 0 without a
                     score; elsewhere 1 (not applicable)
  moves_on_reward    after a declared "不了解": 1 when the turn leaves that question (a new one, or the
                     closing), else 0; elsewhere 1
  no_repeat_reward   1 unless the turn asks again a question an earlier interviewer turn asked
  well_formed_reward 1 for a closing or a turn that asks a question of its own, 0 for one that loops,
                     breaks a character or asks nothing
  grounded_reward    after a substantive answer, 1 when a follow-up reuses the candidate's words
                     (4+ characters), else 0; a closing or elsewhere 1
  combined_reward    their weighted mean (REWARD_WEIGHTS; weights= overrides)
A reward that does not apply to a prompt is 1 for every completion of its group, so it moves no
advantage there (GRPO normalises within a group).

    >>> history = '[{"role": "candidate", "content": "您好"}, {"role": "interviewer", "content": "我们先从索引开始：B+ 树为什么适合做索引？"}, {"role": "candidate", "content": "不了解。"}]'
    >>> moves_on_reward(["没关系，我们换个话题。聊聊事务：什么是 MVCC？", "再想想，B+ 树为什么适合做索引？"],
    ...                 history=[history, history], reference=["没关系，我们换个话题。聊聊事务：事务的隔离级别有哪些？"] * 2)
    [1.0, 0.0]

A completion may be a string or a conversational list. Anything unparseable, None, oversized or hostile
scores 0 where 0 is the failing value (1 for not-applicable rewards); no reward raises.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from eval.interview_policy import MAX_MESSAGES, MAX_TURN_CHARS, closing_score, turn_checks
from reward.completions import per_completion

MAX_HISTORY_CHARS = 200_000  # a history column longer than this is not parsed (an interview is ~3,000)
SCORE_SPAN = 50  # a score this far from the reference's earns nothing
REWARD_WEIGHTS = {"closing": 0.3, "score": 0.1, "moves_on": 0.2, "no_repeat": 0.2, "well_formed": 0.1,
                  "grounded": 0.1}


def parse_history(history: Any) -> list[tuple[str, str]]:
    """[(role, text)] of a history column (JSON string or list); [] for anything not in that shape."""
    if isinstance(history, str):
        if len(history) > MAX_HISTORY_CHARS:
            return []
        try:
            history = json.loads(history)
        except (ValueError, RecursionError):
            return []
    if not isinstance(history, list):
        return []
    out = []
    for message in history[:MAX_MESSAGES]:
        if not isinstance(message, dict) or message.get("role") not in ("candidate", "interviewer") \
                or not isinstance(message.get("content"), str):
            return []
        out.append((message["role"], message["content"][:MAX_TURN_CHARS]))
    return out


@lru_cache(maxsize=4096)
def _rewards(text: str, history: str, reference: str) -> dict[str, float]:
    """Every reward of one completion (TRL calls the rewards one after the other on one batch: once each)."""
    checks = turn_checks(parse_history(history), text)
    reference_score = closing_score(reference)
    closes = reference_score is not None
    if closes:
        score = 0.0 if checks["score"] is None else max(0.0, 1 - abs(checks["score"] - reference_score) / SCORE_SPAN)
    else:
        score = 1.0
    return {
        "closing": float(checks["closing"] == closes),
        "score": score,
        "moves_on": 1.0 if checks["moved_on"] is None else float(checks["moved_on"]),
        "no_repeat": float(not checks["repeated"]),
        "well_formed": float(not checks["degenerate"] and (checks["closing"] or checks["asks"])),
        "grounded": 1.0 if checks["grounded"] is None else float(checks["grounded"]),
    }


FAILED = {"closing": 0.0, "score": 0.0, "moves_on": 0.0, "no_repeat": 0.0, "well_formed": 0.0, "grounded": 0.0}


def row_rewards(completions: Any, **kwargs: Any) -> list[dict[str, float]]:
    """Every reward of every completion; FAILED for a completion that cannot be read."""
    def rewards_of(text: str, history: Any, reference: Any) -> dict[str, float]:
        history = history if isinstance(history, str) else json.dumps(history, ensure_ascii=False)
        return dict(_rewards(text[:MAX_TURN_CHARS], history, reference if isinstance(reference, str) else ""))

    return per_completion(completions, kwargs, ("history", "reference"), rewards_of, FAILED)


def closing_reward(completions: Any, **kwargs: Any) -> list[float]:
    return [r["closing"] for r in row_rewards(completions, **kwargs)]


def score_reward(completions: Any, **kwargs: Any) -> list[float]:
    return [r["score"] for r in row_rewards(completions, **kwargs)]


def moves_on_reward(completions: Any, **kwargs: Any) -> list[float]:
    return [r["moves_on"] for r in row_rewards(completions, **kwargs)]


def no_repeat_reward(completions: Any, **kwargs: Any) -> list[float]:
    return [r["no_repeat"] for r in row_rewards(completions, **kwargs)]


def well_formed_reward(completions: Any, **kwargs: Any) -> list[float]:
    return [r["well_formed"] for r in row_rewards(completions, **kwargs)]


def grounded_reward(completions: Any, **kwargs: Any) -> list[float]:
    return [r["grounded"] for r in row_rewards(completions, **kwargs)]


# the order matches REWARD_WEIGHTS' keys
SINGLE_REWARDS = (closing_reward, score_reward, moves_on_reward, no_repeat_reward, well_formed_reward,
                  grounded_reward)


def combined_reward(completions: Any, weights: dict[str, float] | None = None, **kwargs: Any) -> list[float]:
    """Weighted mean of the six by key (closing, score, moves_on, no_repeat, well_formed, grounded)."""
    if not isinstance(weights, dict):
        weights = REWARD_WEIGHTS
    rows = row_rewards(completions, **kwargs)
    try:
        total = sum(float(w) for w in weights.values())
        return [sum(float(w) * r.get(k, 0.0) for k, w in weights.items()) / total if total else 0.0 for r in rows]
    except Exception:  # non-numeric weights from a bad recipe: score 0 rather than crash mid-run
        return [0.0] * len(rows)
