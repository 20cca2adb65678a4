"""Intervals for every report: each metric with a seeded 95% bootstrap interval, and each pair of models
scored on the same examples with the paired difference and its interval.

Every metric is a statistic of per-example records: a mean of per-example values (BLEU, ROUGE, exact
match, a policy check) or a function of all of them (macro-F1). The percentile bootstrap resamples the
examples with replacement `n_resamples` times and recomputes the statistic; the interval is the
2.5th-97.5th percentile of those draws. For a pair of models, both are recomputed on the *same*
resampled examples and the interval is that of the differences, so the example-to-example variation
they share cancels: this is what makes "tuned vs base" readable at a few hundred examples, where two
separate intervals overlap. A difference is marked significant when its interval excludes 0.

    >>> values = {"exact": [1, 0, 1, 1]}
    >>> estimate = intervals(mean_statistic(values), n=4)["exact"]
    >>> estimate.value, estimate.low <= estimate.value <= estimate.high
    (0.75, True)

Deterministic: the same records and seed give the same numbers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

N_RESAMPLES = 2000
CONFIDENCE = 0.95
SEED = 0

Statistic = Callable[[np.ndarray], Mapping[str, float]]   # example indices -> metric values


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float

    def as_dict(self, digits: int = 2) -> dict:
        return {k: round(v, digits) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Difference(Estimate):
    @property
    def significant(self) -> bool:
        """The interval excludes 0."""
        return self.low > 0 or self.high < 0

    def as_dict(self, digits: int = 2) -> dict:
        return {**super().as_dict(digits), "significant": self.significant}


def resamples(n: int, n_resamples: int = N_RESAMPLES, seed: int = SEED) -> np.ndarray:
    """(n_resamples, n) example indices drawn with replacement; row order is fixed by the seed."""
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n)) if n else np.zeros((n_resamples, 0), int)


def _mean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else float("nan")


def mean_statistic(per_example: Mapping[str, Sequence[float | None]], scale: float = 1.0) -> Statistic:
    """The statistic 'mean of each per-example value' (times scale) over the chosen examples. A value of
    None (a check that does not apply to that example) is left out of the mean; the mean of nothing is NaN."""
    arrays = {key: np.array([np.nan if v is None else v for v in values], dtype=float) * scale
              for key, values in per_example.items()}
    return lambda index: {key: _mean(values[index]) if len(index) else 0.0 for key, values in arrays.items()}


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their mean rank."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (Pearson on tie-averaged ranks); NaN when either side is constant.

    >>> round(spearman([1, 2, 3, 4], [10, 30, 20, 40]), 4)
    0.8
    """
    rx, ry = _ranks(np.asarray(x, dtype=float)), _ranks(np.asarray(y, dtype=float))
    if len(rx) < 2 or rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def auroc(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """The probability that a positive example scores above a negative one, ties counting half (the area
    under the ROC curve, Mann-Whitney); NaN without both kinds.

    >>> auroc([0.9, 0.8, 0.1, 0.2], [True, True, False, False]), auroc([0.5, 0.5], [True, False])
    (1.0, 0.5)
    """
    scores, positive = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return float("nan")
    rank_sum = _ranks(scores)[positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def spearman_statistic(x: Sequence[float], y: Sequence[float]) -> Statistic:
    """The statistic 'Spearman of x and y' over the chosen pairs (for intervals)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return lambda index: {"spearman": spearman(x[index], y[index])}


def _bounds(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval of the draws; draws that are NaN (a resample where the metric is undefined,
    e.g. no example the check applies to) are left out."""
    draws = draws[~np.isnan(draws)]
    if not len(draws):
        return float("nan"), float("nan")
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(low), float(high)


def intervals(statistic: Statistic, n: int, *, n_resamples: int = N_RESAMPLES, seed: int = SEED,
              confidence: float = CONFIDENCE) -> dict[str, Estimate]:
    """Each metric of `statistic` on all n examples, with its percentile-bootstrap interval."""
    point = statistic(np.arange(n))
    draws = [statistic(index) for index in resamples(n, n_resamples, seed)]
    return {key: Estimate(float(point[key]), *_bounds(np.array([d[key] for d in draws]), confidence))
            for key in point}


def paired_differences(statistic_a: Statistic, statistic_b: Statistic, n: int, *, n_resamples: int = N_RESAMPLES,
                       seed: int = SEED, confidence: float = CONFIDENCE) -> dict[str, Difference]:
    """A minus B for each metric, both scored on the same examples, with the paired bootstrap interval."""
    point_a, point_b = statistic_a(np.arange(n)), statistic_b(np.arange(n))
    draws = []
    for index in resamples(n, n_resamples, seed):
        a, b = statistic_a(index), statistic_b(index)
        draws.append({key: a[key] - b[key] for key in point_a})
    return {key: Difference(float(point_a[key] - point_b[key]), *_bounds(np.array([d[key] for d in draws]), confidence))
            for key in point_a}


def compare(statistics: Mapping[str, Statistic], n: int, *, seed: int = SEED,
            n_resamples: int = N_RESAMPLES) -> tuple[dict, list[dict]]:
    """Everything a report needs for models scored on the same n examples:
    ({model: {metric: Estimate}}, [{"a", "b", "metric", Difference...} for every pair, later minus earlier])."""
    names = list(statistics)
    estimates = {name: intervals(statistics[name], n, seed=seed, n_resamples=n_resamples) for name in names}
    pairs = []
    for j, b in enumerate(names):
        for a in names[j + 1:]:
            for metric, difference in paired_differences(statistics[a], statistics[b], n, seed=seed,
                                                         n_resamples=n_resamples).items():
                pairs.append({"a": a, "b": b, "metric": metric, **difference.as_dict()})
    return estimates, pairs


def markdown_tables(estimates: dict[str, dict[str, Estimate]], pairs: list[dict], keys: Sequence[str],
                    confidence: float = CONFIDENCE) -> str:
    """Two tables: each model's metrics `value [low, high]`, and each pair's difference, bold where the
    interval excludes 0."""
    pct = f"{100 * confidence:.0f}%"
    lines = ["| model | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for name, values in estimates.items():
        lines.append(f"| {name} | " + " | ".join(
            f"{values[k].value:.2f} [{values[k].low:.2f}, {values[k].high:.2f}]" for k in keys) + " |")
    if pairs:
        lines += ["", f"Paired differences (same examples), {pct} bootstrap interval; **bold**: the interval excludes 0.",
                  "", "| difference | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
        for a, b in dict.fromkeys((p["a"], p["b"]) for p in pairs):
            row = {p["metric"]: p for p in pairs if p["a"] == a and p["b"] == b}
            cells = []
            for k in keys:
                text = f"{row[k]['value']:+.2f} [{row[k]['low']:+.2f}, {row[k]['high']:+.2f}]"
                cells.append(f"**{text}**" if row[k]["significant"] else text)
            lines.append(f"| {a} - {b} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
