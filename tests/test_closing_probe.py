"""The closing probe: where a model puts its probability of closing, turn by turn (eval/closing_probe.py)."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from eval import stats
from eval.closing_probe import by_round, continuation_log_probs, dialogue_statistic, parse_adapters, round_of

REPO = __import__("pathlib").Path(__file__).resolve().parent.parent


def test_auroc_both_ways_and_ties():
    assert stats.auroc([0.9, 0.8, 0.1, 0.2], [True, True, False, False]) == 1.0
    assert stats.auroc([0.1, 0.2, 0.9, 0.8], [True, True, False, False]) == 0.0
    assert stats.auroc([0.5, 0.5, 0.5], [True, False, False]) == 0.5
    assert stats.auroc([0.3, 0.6, 0.1, 0.6], [True, True, False, False]) == pytest.approx(0.625)  # 2.5 of 4 pairs
    assert math.isnan(stats.auroc([0.2, 0.4], [False, False]))


def test_round_from_the_state_line_or_from_the_turns_before():
    assert round_of("岗位：后端\n当前轮次：第 7 轮（最多 10 轮）", []) == 7
    history = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "q1"},
               {"role": "user", "content": "b"}, {"role": "assistant", "content": "q2"}, {"role": "user", "content": "c"}]
    assert round_of("你是一位面试官。", history) == 3


def test_statistic_separates_a_model_that_knows_from_one_that_does_not():
    closes = [False, False, True] * 4
    dialogue_of = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    knows = dialogue_statistic([-8, -9, -2] * 4, closes, dialogue_of)
    flat = dialogue_statistic([-5.0] * 12, closes, dialogue_of)
    everywhere = np.arange(4)
    assert knows(everywhere) == {"auroc": 1.0, "log10_p_close_at_closings": -2.0, "log10_p_close_elsewhere": -8.5}
    assert flat(everywhere)["auroc"] == 0.5
    # resampling is by dialogue: dialogue 1 drawn twice carries its three turns twice
    assert knows(np.array([1, 1]))["log10_p_close_elsewhere"] == -8.5
    estimates = stats.intervals(knows, n=4)
    assert estimates["auroc"].low == estimates["auroc"].high == 1.0


def test_by_round_groups_closing_and_other_turns():
    turns = [{"round": 1, "closes": False, "log10_p_close": -6.0}, {"round": 1, "closes": False, "log10_p_close": -4.0},
             {"round": 3, "closes": True, "log10_p_close": -1.0}]
    assert by_round(turns) == {"closing": {3: -1.0}, "other": {1: -5.0}}


def test_adapter_options_are_checked():
    assert parse_adapters(["grpo=runs/x/grpo"])["grpo"].as_posix() == "runs/x/grpo"
    with pytest.raises(SystemExit, match="NAME=DIR"):
        parse_adapters(["runs/x/grpo"])


@pytest.mark.slow
def test_shared_cache_scores_equal_whole_sequences(tiny_qwen3):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_qwen3, dtype=torch.float32).eval()
    prompt, continuations = [5, 17, 40, 33, 9], [[12, 7, 99], [3], [61, 62, 63, 64, 65]]  # unequal: padding read nowhere
    fast = continuation_log_probs(model, prompt, continuations, pad_id=0)
    for cont, value in zip(continuations, fast):
        with torch.no_grad():
            log_probs = torch.log_softmax(model(torch.tensor([prompt + cont])).logits[0].float(), dim=-1)
        whole = sum(log_probs[len(prompt) - 1 + j, cont[j]].item() for j in range(len(cont)))
        assert value == pytest.approx(whole, abs=1e-4)


@pytest.mark.slow
def test_probe_end_to_end_on_a_tiny_model_is_reproducible(tiny_qwen3, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    adapter = tmp_path / "run" / "sft"
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen3)
    get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False)).save_pretrained(adapter)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"model_name_or_path: {tiny_qwen3}\nstage: sft\ndataset: interview_window_train\n"
                      f"dataset_dir: .\ntemplate: qwen3_nothink\noutput_dir: {adapter}\n", "utf-8")

    def probe(out, *extra):
        return subprocess.run([sys.executable, "-m", "eval.closing_probe", "--recipe", str(recipe), "--output-dir",
                               str(out), "--max-dialogues", "2", "--dtype", "fp32", *extra], cwd=REPO,
                              capture_output=True, text=True, timeout=600,
                              env={**__import__("os").environ, "PYTHONPATH": str(REPO)})

    first = probe(tmp_path / "a")
    assert first.returncode == 0, first.stderr[-3000:]
    report = json.loads((tmp_path / "a" / "report.json").read_text("utf-8"))
    assert report["dialogues"] == 2 and report["closing_turns"] == 2  # every dialogue closes once
    assert report["dataset"] == "data/interview/window_val.json"
    turns = [json.loads(line) for line in (tmp_path / "a" / "turns_tuned.jsonl").read_text("utf-8").splitlines()]
    assert len(turns) == report["turns"] and all(t["log10_p_close"] < 0 for t in turns)
    assert [t["round"] for t in turns if t["closes"]] == [max(t["round"] for t in turns if t["id"].startswith(d))
                                                          for d in sorted({t["id"].split("#")[0] for t in turns})]
    assert {"a", "b"} <= set(report["differences"][0]) and 0 <= report["models"]["base"]["auroc"]["value"] <= 1
    assert (tmp_path / "a" / "closing_probe.png").stat().st_size > 0
    second = probe(tmp_path / "b")
    assert second.returncode == 0, second.stderr[-3000:]
    for name in ("report.json", "report.md", "turns_base.jsonl", "turns_tuned.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    wrong = probe(tmp_path / "c", "--models", "base,grpo")
    assert wrong.returncode != 0 and "grpo" in wrong.stderr
    nothing = probe(tmp_path / "d", "--max-prompt-tokens", "1")  # every prompt left out: said, not a traceback
    assert nothing.returncode != 0 and "every prompt is longer than --max-prompt-tokens 1" in nothing.stderr
