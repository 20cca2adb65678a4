"""eval/stats.py on known distributions: intervals cover the truth at the stated rate, paired differences of
identical models are exactly 0, a real difference is detected, and the numbers are reproducible."""
from __future__ import annotations

import numpy as np
import pytest

from eval import stats


def test_mean_interval_covers_the_true_rate_about_95_percent_of_the_time():
    rng = np.random.default_rng(123)
    truth, n, trials = 0.3, 200, 400
    covered = 0
    for trial in range(trials):
        values = (rng.random(n) < truth).astype(float)
        estimate = stats.intervals(stats.mean_statistic({"p": values}), n, n_resamples=1000, seed=trial)["p"]
        covered += estimate.low <= truth <= estimate.high
    # 400 trials: the binomial standard error of a 95% rate is 1.1 points
    assert 0.92 <= covered / trials <= 0.98, covered / trials


def test_continuous_metric_coverage_and_width_shrinks_with_n():
    rng = np.random.default_rng(7)
    covered, trials = 0, 300
    for trial in range(trials):
        values = rng.normal(50.0, 20.0, size=100)
        estimate = stats.intervals(stats.mean_statistic({"bleu": values}), 100, n_resamples=800, seed=trial)["bleu"]
        covered += estimate.low <= 50.0 <= estimate.high
    assert 0.91 <= covered / trials <= 0.98
    small = stats.intervals(stats.mean_statistic({"x": rng.normal(0, 1, 50)}), 50)["x"]
    large = stats.intervals(stats.mean_statistic({"x": rng.normal(0, 1, 800)}), 800)["x"]
    assert (large.high - large.low) < (small.high - small.low) / 2.5   # ~ 1/sqrt(n): 4x less for 16x n


def test_identical_models_differ_by_exactly_zero():
    values = {"exact": np.random.default_rng(0).random(150) < 0.6, "f1": np.random.default_rng(1).random(150)}
    a, b = stats.mean_statistic(values), stats.mean_statistic(values)
    for difference in stats.paired_differences(a, b, 150).values():
        assert (difference.value, difference.low, difference.high) == (0.0, 0.0, 0.0)
        assert not difference.significant


def test_paired_difference_detects_what_separate_intervals_cannot():
    rng = np.random.default_rng(5)
    hard = rng.random(300)                      # per-example difficulty shared by both models
    base = (hard < 0.5).astype(float)
    tuned = base.copy()
    tuned[np.flatnonzero(base == 0)[:15]] = 1   # tuned fixes 15 of 300 examples, breaks none: +5 points
    estimates, pairs = stats.compare({"base": stats.mean_statistic({"acc": base}),
                                      "tuned": stats.mean_statistic({"acc": tuned})}, 300)
    assert estimates["tuned"]["acc"].low < estimates["base"]["acc"].high        # the two intervals overlap
    (pair,) = pairs
    assert (pair["a"], pair["b"], pair["metric"]) == ("tuned", "base", "acc")
    assert pair["value"] == pytest.approx(0.05) and pair["low"] > 0 and pair["significant"]


def test_same_seed_same_numbers_and_markdown_marks_significance():
    values = {"m": np.arange(40) % 3 == 0}
    one = stats.intervals(stats.mean_statistic(values, scale=100), 40, seed=3)
    two = stats.intervals(stats.mean_statistic(values, scale=100), 40, seed=3)
    assert one == two
    estimates, pairs = stats.compare({"a": stats.mean_statistic({"m": np.zeros(40)}, 100),
                                      "b": stats.mean_statistic({"m": np.ones(40)}, 100)}, 40)
    table = stats.markdown_tables(estimates, pairs, ["m"])
    assert "| b - a | **+100.00 [+100.00, +100.00]** |" in table
    assert "| a | 0.00 [0.00, 0.00] |" in table


def test_non_mean_statistic_macro_f1_is_resampled_whole():
    from eval.run_eval import decision_statistic_of_labels

    gold = ["FOLLOW_UP", "NEXT_TOPIC", "END"] * 20
    perfect = decision_statistic_of_labels(gold, gold)
    estimate = stats.intervals(perfect, len(gold), n_resamples=200)
    assert estimate["macro_f1"].value == 100 and estimate["accuracy"].low == 100
    wrong = decision_statistic_of_labels(["FOLLOW_UP"] * 60, gold)
    assert stats.intervals(wrong, 60, n_resamples=200)["accuracy"].value == pytest.approx(100 / 3, abs=0.01)


def test_fc_report_leaves_out_a_metric_no_example_applies_to_and_keeps_it_when_one_does(tmp_path):
    """irrelevance_acc is reported only when the split has rows that need no call (no NaN in report.json)."""
    import json

    from eval.run_eval import TASKS, fc_statistic, write_report

    tools = json.dumps([{"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "integer"}},
                                                     "required": ["x"]}}])
    call = '[{"name": "f", "arguments": {"x": 1}}]'
    rows = [{"predict": "Action: f\nAction Input: {\"x\": 1}", "label": call, "tools": tools}] * 3
    meta = {"n": 3, "seed": 0, "sampled": False, "dataset": "d", "left_out": 0, "max_prompt_tokens": 9,
            "max_new_tokens": 9, "dtype": "float32"}
    results = write_report(tmp_path, tmp_path / "r.yaml", TASKS["fc"], {"m": fc_statistic(rows)}, {}, {}, meta)
    assert "irrelevance_acc" not in results["m"] and results["m"]["exact_match"] == 100.0
    report = (tmp_path / "report.json").read_text(encoding="utf-8")
    assert "NaN" not in report and "irrelevance_acc" not in (tmp_path / "report.md").read_text(encoding="utf-8")
    rows = rows[:2] + [{"predict": "Sorry, no tool does that.", "label": "[]", "tools": tools}]
    results = write_report(tmp_path, tmp_path / "r.yaml", TASKS["fc"], {"m": fc_statistic(rows)}, {}, {}, meta)
    assert results["m"]["irrelevance_acc"] == 100.0 and results["m"]["parse_rate"] == 100.0
