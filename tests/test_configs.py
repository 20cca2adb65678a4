"""Every recipe in configs/ must pass LLaMA-Factory's own argument parser.

The only swaps: model_name_or_path -> a tiny local Qwen3 (no hub here) and output_dir -> a temp dir.
Everything else, GPU profiles included, is parsed as written. Transformers probes the hardware when
bf16 is set and refuses on a machine without a bf16 GPU; the test answers that one probe with "yes"
(as an Ampere GPU would), so the bf16 profiles go through every other check unchanged.
"""

import json
import math
import os
import subprocess
import sys
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


def parsed(config: dict) -> dict:
    """LLaMA-Factory's parser on a recipe; the values the test checks."""
    import transformers.training_args
    from llamafactory.hparams import get_train_args

    # the one hardware probe answered as an Ampere GPU would (see the module docstring)
    transformers.training_args.is_torch_bf16_gpu_available = lambda *a, **k: True
    # parsing writes os.environ (ACCELERATE_MIXED_PRECISION=bf16 for a bf16 recipe): every training
    # launched later by the suite would inherit it and train in bf16 autocast; put the environment back
    saved = dict(os.environ)
    try:
        model_args, data_args, training_args, finetuning_args, _ = get_train_args(config)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {"finetuning_type": finetuning_args.finetuning_type, "lora_rank": finetuning_args.lora_rank,
            "learning_rate": training_args.learning_rate, "cutoff_len": data_args.cutoff_len,
            "template": data_args.template, "bf16": training_args.bf16,
            "batch": training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps,
            "deepspeed_stage": (training_args.hf_deepspeed_config.config["zero_optimization"]["stage"]
                                if training_args.deepspeed else None)}


def parsed_in_a_rank(config: dict, tmp_path: Path) -> dict:
    """DeepSpeed recipes only parse inside a distributed launch: run the parser as rank 0 of 1 (gloo)."""
    env = dict(os.environ, RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", LOCAL_WORLD_SIZE="1",
               MASTER_ADDR="127.0.0.1", MASTER_PORT=str(29500 + os.getpid() % 1000), HF_HUB_OFFLINE="1",
               PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-m", "tests.test_configs", json.dumps(config)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_passes_llamafactory_parser(recipe: Path, tiny_qwen3, tmp_path, monkeypatch):
    from llamafactory.data.template import TEMPLATES

    monkeypatch.chdir(REPO)
    config = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    assert config.get("trust_remote_code") is False, "trust_remote_code must be off"
    assert config["template"] in TEMPLATES
    for name in str(config["dataset"]).split(",") + ([config["eval_dataset"]] if config.get("eval_dataset") else []):
        assert name.strip() in DATASET_INFO, f"{recipe.name}: dataset {name} is not registered"

    config.update(model_name_or_path=str(tiny_qwen3), output_dir=str(tmp_path / "out"))
    values = parsed_in_a_rank(config, tmp_path) if config.get("deepspeed") else parsed(config)
    assert values["finetuning_type"] == config["finetuning_type"]
    assert values["lora_rank"] == config["lora_rank"]
    assert values["learning_rate"] == pytest.approx(float(config["learning_rate"]))
    assert values["batch"] == config["per_device_train_batch_size"] * config["gradient_accumulation_steps"]
    assert values["cutoff_len"] == config["cutoff_len"] and values["template"] == config["template"]
    assert values["bf16"] == bool(config.get("bf16", False))
    if config.get("deepspeed"):
        stage = json.loads((REPO / config["deepspeed"]).read_text())["zero_optimization"]["stage"]
        assert values["deepspeed_stage"] == stage


def test_8b_profile_has_zero2_zero3_and_offload_recipes():
    stages = {}
    for recipe in RECIPES:
        config = yaml.safe_load(recipe.read_text(encoding="utf-8"))
        if "Qwen3-8B" in config["model_name_or_path"] and config.get("deepspeed"):
            zero = json.loads((REPO / config["deepspeed"]).read_text())["zero_optimization"]
            stages[recipe.name] = (zero["stage"], "offload_param" in zero)
    assert set(stages.values()) == {(2, False), (3, False), (3, True)}


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
        for name in config["dataset"].split(","):  # every dataset of the mix carries its tools
            entry = DATASET_INFO[name.strip()]
            assert entry["columns"].get("tools") == "tools", (recipe.name, name)
            assert entry["tags"]["function_tag"] == "function_call", (recipe.name, name)


def listed_targets(config: dict) -> list[str]:
    """lora_target as LLaMA-Factory reads a string: comma-separated, each name stripped."""
    return [t.strip() for t in config["lora_target"].split(",")]


def model_modules(model_dir: Path) -> set[str]:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):  # names only: no weights are read or allocated
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir))
    return {name for name, _ in model.named_modules()}


@pytest.mark.parametrize("recipe", [p for p in RECIPES if yaml.safe_load(p.read_text(encoding="utf-8"))
                                    .get("lora_target", "all") != "all"], ids=lambda p: p.name)
def test_a_listed_lora_target_names_modules_of_its_model(recipe, smollm2):
    """PEFT adapts the modules a list matches and says nothing of an entry that matches none: a typo in a
    long list would train fewer layers in silence."""
    config = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    targets = listed_targets(config)
    assert len(targets) == len(set(targets)) and all(targets)
    modules = model_modules(REPO / config["model_name_or_path"])
    assert [t for t in targets if not any(m == t or m.endswith("." + t) for m in modules)] == []


def test_the_fc_cpu_recipe_adapts_every_projection_of_the_last_15_layers(smollm2):
    config = yaml.safe_load((REPO / "configs/fc_smollm2_lora_sft_cpu.yaml").read_text(encoding="utf-8"))
    targets = set(listed_targets(config))
    projections = {name.split(".", 3)[3] for name in targets}
    assert {int(name.split(".")[2]) for name in targets} == set(range(15, 30))
    assert projections == {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}
    assert len(targets) == 15 * 7


def test_the_fc_cpu_recipe_trains_one_epoch_of_its_datasets():
    """max_steps is set by hand (a step count is what the 20 minutes are measured in): adding rows to the
    recipe's datasets without it would train on part of them."""
    config = yaml.safe_load((REPO / "configs/fc_smollm2_lora_sft_cpu.yaml").read_text(encoding="utf-8"))
    files = [REPO / DATASET_INFO[name.strip()]["file_name"] for name in config["dataset"].split(",")]
    if not all(path.is_file() for path in files):
        pytest.fail("the fc datasets are missing: run `make data` (make test does it)")
    rows = sum(len(json.loads(path.read_text(encoding="utf-8"))) for path in files)
    batch = config["per_device_train_batch_size"] * config["gradient_accumulation_steps"]
    assert config["max_steps"] == math.ceil(rows / batch)


def test_every_reference_call_of_the_fc_sample_fits_the_eval_and_grpo_budgets(smollm2):
    """A budget below the longest reference cuts that call and scores it wrong whatever the model does
    (make eval's 128 tokens once cut a 147-token pair of invitations)."""
    from eval.datasets import examples_from_sharegpt
    from eval.generate import get_template, load_model
    from eval.run_eval import TASKS

    grpo = yaml.safe_load((REPO / "configs/fc_smollm2_grpo_cpu.yaml").read_text(encoding="utf-8"))
    tokenizer, _ = load_model(str(smollm2), weights=False)
    template = get_template(tokenizer, "smollm2")
    lengths = []
    for folder, split in (("fc", "train"), ("fc", "val"), ("fc_grpo", "train")):  # SFT's rows, GRPO's prompts
        rows = json.loads((REPO / "data" / folder / f"{split}.json").read_text(encoding="utf-8"))
        for example in examples_from_sharegpt(rows, targets={"function_call"}):  # declines are a sentence
            # the reference call as SFT trains it: the template's tool format and its stop word
            messages = example.messages + [{"role": "function", "content": example.label}]
            _, answer_ids = template.encode_oneturn(tokenizer, messages, example.system, example.tools or None)
            lengths.append(len(answer_ids))
    assert len(lengths) > 900 and max(lengths) > 128  # the sample has calls that a 128 budget cuts
    assert max(lengths) <= TASKS["fc"].max_new_tokens
    assert max(lengths) <= grpo["max_completion_length"]


if __name__ == "__main__":  # a rank of parsed_in_a_rank
    print(json.dumps(parsed(json.loads(sys.argv[1]))))
