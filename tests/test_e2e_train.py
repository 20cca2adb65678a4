"""End-to-end: llamafactory-cli trains with the repo's recipes and the eval driver scores the result."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from eval.toolcall import parse_tool_calls
from tests.conftest import REPO

CLI = str(Path(sys.executable).parent / "llamafactory-cli")
CPU = {"use_cpu": True, "bf16": False, "fp16": False, "preprocessing_num_workers": 1, "dataloader_num_workers": 0,
       "report_to": "none"}


def train(recipe: str, tmp_path: Path, **overrides) -> Path:
    config = yaml.safe_load((REPO / "configs" / recipe).read_text(encoding="utf-8"))
    config.update(CPU, output_dir=str(tmp_path / "sft"), **overrides)
    config.pop("eval_dataset", None), config.pop("eval_strategy", None), config.pop("eval_steps", None)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    result = subprocess.run([CLI, "train", str(path)], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return path


@pytest.mark.slow
def test_tiny_qwen3_trains_with_the_12gb_recipe_and_evaluates(tiny_qwen3, tmp_path):
    recipe = train("interview_qwen3_0.6b_lora_sft_12gb.yaml", tmp_path, model_name_or_path=str(tiny_qwen3),
                   max_steps=3, logging_steps=1, cutoff_len=256, per_device_train_batch_size=2,
                   gradient_accumulation_steps=1, learning_rate=1e-3)
    out = tmp_path / "sft"
    assert (out / "adapter_model.safetensors").stat().st_size > 0
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 32
    log = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    assert [row["current_steps"] for row in log if "loss" in row] == [1, 2, 3]
    assert (out / "training_loss.png").stat().st_size > 0

    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO), EVAL_CACHE_DIR=str(tmp_path / "cache"))
    for run in ("eval", "again"):
        subprocess.run([sys.executable, "-m", "eval.run_eval", "--recipe", str(recipe), "--max-samples", "4",
                        "--max-new-tokens", "8", "--output-dir", str(tmp_path / run)],
                       cwd=REPO, env=env, check=True, capture_output=True)
    report = json.loads((tmp_path / "eval/report.json").read_text(encoding="utf-8"))
    again = json.loads((tmp_path / "again/report.json").read_text(encoding="utf-8"))
    # the same weights on the same prompts: the second run reuses the completions, and scores the same
    assert report["meta"]["reused_completions"] == [] and again["meta"]["reused_completions"] == ["base", "tuned"]
    assert again["results"] == report["results"] and again["meta"]["generation_seconds"] == {}
    assert (tmp_path / "again/predictions_tuned.jsonl").read_bytes() == (tmp_path / "eval/predictions_tuned.jsonl").read_bytes()
    assert set(report["results"]) == {"base", "tuned"}
    assert report["meta"]["n"] == 4
    assert set(report["results"]["tuned"]) == {"n", "bleu-4", "rouge-1", "rouge-2", "rouge-l"}
    assert len((tmp_path / "eval/predictions_tuned.jsonl").read_text(encoding="utf-8").splitlines()) == 4
    assert (tmp_path / "eval/metrics.png").read_bytes()[:4] == b"\x89PNG"
    markdown = (tmp_path / "eval/report.md").read_text(encoding="utf-8")
    assert "| tuned |" in markdown and "| tuned - base |" in markdown
    for name, scores in report["results"].items():  # every value sits inside its own interval
        for key, (low, high) in report["intervals"][name].items():
            assert low <= scores[key] <= high
    pairs = {(d["a"], d["b"], d["metric"]) for d in report["differences"]}
    assert pairs == {("tuned", "base", key) for key in ("bleu-4", "rouge-1", "rouge-2", "rouge-l")}
    assert report["meta"]["dtype"] in ("float32", "bfloat16") and report["meta"]["sampled"] is True


@pytest.mark.slow
def test_embedded_smollm2_cpu_recipe_trains_a_few_steps(smollm2, tmp_path):
    train("interview_smollm2_lora_sft_cpu.yaml", tmp_path, max_steps=2, logging_steps=1, cutoff_len=128)
    out = tmp_path / "sft"
    assert (out / "adapter_model.safetensors").stat().st_size > 0
    log = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    losses = [row["loss"] for row in log if "loss" in row]
    assert len(losses) == 2 and all(0 < loss < 20 for loss in losses)


@pytest.mark.slow
def test_tiny_qwen3_trains_function_calling_and_eval_scores_the_six_metrics(tiny_qwen3, tmp_path):
    recipe = train("fc_qwen3_0.6b_lora_sft_12gb.yaml", tmp_path, model_name_or_path=str(tiny_qwen3),
                   max_steps=2, logging_steps=1, per_device_train_batch_size=2, gradient_accumulation_steps=1)
    assert (tmp_path / "sft/adapter_model.safetensors").stat().st_size > 0

    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-m", "eval.run_eval", "--recipe", str(recipe), "--max-samples", "3",
                             "--max-new-tokens", "8", "--output-dir", str(tmp_path / "eval")],
                            cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "eval/report.json").read_text(encoding="utf-8"))
    assert report["meta"]["task"] == "fc" and report["meta"]["n"] == 3
    assert set(report["results"]) == {"base", "tuned"}
    rows = [json.loads(line) for line in (tmp_path / "eval/predictions_base.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(json.loads(r["tools"]) for r in rows)
    needs_calls = [bool(parse_tool_calls(r["label"])) for r in rows]  # a no-call row's label is its text reply
    expected = {"n", "exact_match", "combined_reward"}
    if any(needs_calls):
        expected |= {"parse_rate", "name_acc", "arg_f1", "schema_hit_rate", "exec_rate"}
    if not all(needs_calls):
        expected.add("irrelevance_acc")
    assert set(report["results"]["tuned"]) == expected
    assert "| tuned |" in (tmp_path / "eval/report.md").read_text(encoding="utf-8")


def grpo_two_steps(recipe_name: str, tiny_qwen3: Path, tmp_path: Path, **overrides) -> tuple[Path, dict]:
    """Two CPU GRPO steps of a GPU recipe on the tiny model, from the SFT adapter in tmp_path/sft."""
    config = yaml.safe_load((REPO / "configs" / recipe_name).read_text(encoding="utf-8"))
    config.update(model_name_or_path=str(tiny_qwen3), sft_adapter=str(tmp_path / "sft"),
                  output_dir=str(tmp_path / "grpo"), use_cpu=True, bf16=False, gradient_checkpointing=False,
                  max_steps=2, num_generations=2, per_device_train_batch_size=2, gradient_accumulation_steps=1,
                  max_completion_length=8, logging_steps=1, max_samples=8, **overrides)
    recipe = tmp_path / "grpo.yaml"
    recipe.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-m", "scripts.grpo", str(recipe)], cwd=REPO, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return recipe, env


@pytest.mark.slow
def test_tiny_qwen3_sft_then_grpo_then_eval_compares_three_models(tiny_qwen3, tmp_path):
    """The 12 GB profile's SFT -> GRPO -> eval chain on a tiny Qwen3 on CPU."""
    train("fc_qwen3_0.6b_lora_sft_12gb.yaml", tmp_path, model_name_or_path=str(tiny_qwen3), max_steps=1,
          per_device_train_batch_size=2, gradient_accumulation_steps=1)
    recipe, env = grpo_two_steps("fc_qwen3_0.6b_grpo_12gb.yaml", tiny_qwen3, tmp_path, max_prompt_length=None)
    out = tmp_path / "grpo"
    assert (out / "adapter_model.safetensors").stat().st_size > 0
    log = json.loads((out / "trainer_log.json").read_text(encoding="utf-8"))
    steps = [row for row in log if "reward" in row]
    assert [row["step"] for row in steps] == [1, 2]
    for name in ("json_parse_reward", "schema_hit_reward", "exec_reward", "semantic_reward"):
        assert all(0.0 <= row[f"rewards/{name}/mean"] <= 1.0 for row in steps)
    assert (out / "reward.png").read_bytes()[:4] == b"\x89PNG"
    # GRPO saved the SFT adapter it continued (same LoRA tensors), not a fresh one of its own
    from safetensors.torch import load_file
    before, after = load_file(tmp_path / "sft/adapter_model.safetensors"), load_file(out / "adapter_model.safetensors")
    assert before.keys() == after.keys()

    result = subprocess.run([sys.executable, "-m", "eval.run_eval", "--recipe", str(recipe), "--max-samples", "2",
                             "--max-new-tokens", "4", "--output-dir", str(tmp_path / "eval")],
                            cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "eval/report.json").read_text(encoding="utf-8"))
    assert list(report["results"]) == ["base", "sft", "grpo"]
    assert all("combined_reward" in scores for scores in report["results"].values())


@pytest.mark.slow
def test_tiny_qwen3_interviewer_sft_then_grpo_then_simulate(tiny_qwen3, tmp_path):
    """The interviewer's 12 GB chain on a tiny Qwen3 on CPU: SFT, GRPO on the policy rewards, simulate."""
    train("interview_qwen3_0.6b_lora_sft_12gb.yaml", tmp_path, model_name_or_path=str(tiny_qwen3), max_steps=1,
          per_device_train_batch_size=2, gradient_accumulation_steps=1, gradient_checkpointing=False, cutoff_len=256)
    recipe, env = grpo_two_steps("interview_qwen3_0.6b_grpo_12gb.yaml", tiny_qwen3, tmp_path)
    config = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    log = json.loads((tmp_path / "grpo/trainer_log.json").read_text(encoding="utf-8"))
    steps = [row for row in log if "reward" in row]
    assert [row["step"] for row in steps] == [1, 2]
    for name in config["reward_funcs"]:
        assert all(0.0 <= row[f"rewards/{name.rsplit('.', 1)[1]}/mean"] <= 1.0 for row in steps)

    result = subprocess.run([sys.executable, "-m", "eval.simulate", "--recipe", str(recipe), "--modes", "free",
                             "--per-skill", "1", "--max-rounds", "2", "--max-new-tokens", "4", "--dtype", "fp32",
                             "--output-dir", str(tmp_path / "sim")], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "sim/report.json").read_text(encoding="utf-8"))
    assert report["format"] == "whole" and set(report["runs"]) == {"sft", "grpo"}
    assert {(d["a"], d["b"]) for d in report["differences"]} == {("grpo", "sft")}


@pytest.mark.slow
def test_followup_classifier_llm_and_eval_report_four_deciders(smollm2, tmp_path):
    """make classifier + the follow-up CPU recipe (a step each) + make eval: rules, classifier, base, tuned."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-m", "scripts.train_classifier", "configs/followup_classifier_cpu.yaml",
                             f"output_dir={tmp_path / 'clf'}", "num_train_epochs=2", "logging_steps=1"],
                            cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    clf_report = json.loads((tmp_path / "clf/classifier_report.json").read_text(encoding="utf-8"))
    assert clf_report["dev"]["eval_macro_f1"] >= 0 and clf_report["val"]["n"] == 200
    assert clf_report["rows"] == {"train": 1620, "dev": 180, "val": 200}

    recipe = train("followup_smollm2_lora_sft_cpu.yaml", tmp_path, max_steps=1, logging_steps=1)
    result = subprocess.run([sys.executable, "-m", "eval.run_eval", "--recipe", str(recipe), "--max-samples", "6",
                             "--max-new-tokens", "6", "--classifier", str(tmp_path / "clf"),
                             "--output-dir", str(tmp_path / "eval")], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "eval/report.json").read_text(encoding="utf-8"))
    assert report["meta"]["task"] == "decision" and report["meta"]["n"] == 6
    assert list(report["results"]) == ["rules", "classifier", "base", "tuned"]
    for scores in report["results"].values():
        assert set(scores) == {"n", "accuracy", "macro_f1", "recall_FOLLOW_UP", "recall_NEXT_TOPIC", "recall_END",
                               "invalid"}
    rules = [json.loads(line) for line in (tmp_path / "eval/predictions_rules.jsonl").read_text().splitlines()]
    assert len(rules) == 6 and all(r["predict"] in ("FOLLOW_UP", "NEXT_TOPIC", "END") for r in rules)
    assert (tmp_path / "eval/confusion.png").read_bytes()[:4] == b"\x89PNG"

    # the trained classifier steers make chat (scripted stdin): its labels are the decisions recorded
    answers = "Redis 有 RDB 和 AOF 两种持久化方式，RDB 是快照，AOF 记录写命令。\n这个我不了解。\n/quit\n"
    result = subprocess.run([sys.executable, "-m", "scripts.chat", "--model", str(smollm2), "--template", "smollm2",
                             "--classifier", str(tmp_path / "clf"), "--greedy", "--max-new-tokens", "8",
                             "--transcript", str(tmp_path / "chat.json")], input=answers, cwd=REPO, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    session = json.loads((tmp_path / "chat.json").read_text(encoding="utf-8"))
    assert session["decider"].startswith("classifier") and session["ended_by"] == "quit"
    decisions = [t["decision"] for t in session["turns"] if t.get("decision")]
    assert len(decisions) == 2 and all(d["label"] in ("FOLLOW_UP", "NEXT_TOPIC", "END") for d in decisions)
    assert decisions[1]["move"] == "NEXT_TOPIC"  # "不了解" changes the topic whatever the classifier says
