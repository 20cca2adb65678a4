"""Every recipe in configs/ must pass LLaMA-Factory's own argument parser.

The only swaps: model_name_or_path -> a tiny local Qwen3 (no hub here) and output_dir -> a temp dir.
Everything else, GPU profiles included, is parsed as written. Transformers probes the hardware when
bf16 is set and refuses on a machine without a bf16 GPU; the test answers that one probe with "yes"
(as an Ampere GPU would), so the bf16 profiles go through every other check unchanged.
"""

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

# LLaMA-Factory recipes; GRPO (TRL) and classifier (transformers Trainer) recipes are tested beside their launchers
RECIPES = sorted(p for p in (REPO / "configs").glob("*.yaml")
                 if yaml.safe_load(p.read_text(encoding="utf-8")).get("stage") == "sft")
DATASET_INFO = json.loads((REPO / "dataset_info.json").read_text(encoding="utf-8"))


def test_there_are_recipes():
    names = {p.name for p in RECIPES}
    assert {"interview_smollm2_lora_sft_cpu.yaml", "interview_qwen3_0.6b_lora_sft_12gb.yaml",
            "interview_qwen3_8b_lora_sft_bf16.yaml", "fc_smollm2_lora_sft_cpu.yaml",
            "fc_qwen3_0.6b_lora_sft_12gb.yaml", "fc_qwen3_8b_lora_sft_bf16.yaml"} <= names


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_passes_llamafactory_parser(recipe: Path, tiny_qwen3, tmp_path, monkeypatch):
    from llamafactory.data.template import TEMPLATES
    from llamafactory.hparams import get_train_args

    import transformers.training_args

    monkeypatch.chdir(REPO)
    monkeypatch.setattr(transformers.training_args, "is_torch_bf16_gpu_available", lambda *a, **k: True)
    config = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    assert config.get("trust_remote_code") is False, "trust_remote_code must be off"
    assert config["template"] in TEMPLATES
    for name in str(config["dataset"]).split(",") + ([config["eval_dataset"]] if config.get("eval_dataset") else []):
        assert name.strip() in DATASET_INFO, f"{recipe.name}: dataset {name} is not registered"

    config.update(model_name_or_path=str(tiny_qwen3), output_dir=str(tmp_path / "out"))
    model_args, data_args, training_args, finetuning_args, _ = get_train_args(config)
    assert finetuning_args.finetuning_type == config["finetuning_type"]
    assert finetuning_args.lora_rank == config["lora_rank"]
    assert training_args.learning_rate == pytest.approx(float(config["learning_rate"]))
    assert training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps == (
        config["per_device_train_batch_size"] * config["gradient_accumulation_steps"])
    assert data_args.cutoff_len == config["cutoff_len"] and data_args.template == config["template"]
    assert training_args.bf16 == bool(config.get("bf16", False))


@pytest.mark.parametrize("task", ["interview", "fc"])
def test_gpu_profiles_match_the_documented_settings(task):
    twelve = yaml.safe_load((REPO / f"configs/{task}_qwen3_0.6b_lora_sft_12gb.yaml").read_text())
    assert (twelve["per_device_train_batch_size"], twelve["gradient_accumulation_steps"]) == (2, 8)
    assert twelve["gradient_checkpointing"] and twelve["bf16"]
    assert (twelve["lora_rank"], twelve["lora_alpha"], twelve["lora_target"]) == (32, 64, "all")
    assert float(twelve["learning_rate"]) == 2e-4
    big = yaml.safe_load((REPO / f"configs/{task}_qwen3_8b_lora_sft_bf16.yaml").read_text())
    assert (big["lora_rank"], big["lora_alpha"], big["num_train_epochs"], big["bf16"]) == (32, 64, 2.0, True)


def test_function_calling_recipes_train_on_the_tools_dataset():
    for recipe in sorted((REPO / "configs").glob("fc_*_sft_*.yaml")):
        config = yaml.safe_load(recipe.read_text(encoding="utf-8"))
        entry = DATASET_INFO[config["dataset"]]
        assert entry["columns"].get("tools") == "tools", recipe.name
        assert entry["tags"]["function_tag"] == "function_call", recipe.name
