"""GRPO for function calling and for the interviewer: a thin launcher over TRL's GRPOTrainer, driven by
a flat YAML recipe.

    python -m scripts.grpo configs/fc_smollm2_grpo_cpu.yaml [key=value ...]      (make grpo RECIPE=...)
    python -m scripts.grpo configs/interview_smollm2_grpo_cpu.yaml [key=value ...]

LLaMA-Factory has no GRPO stage, and `trl grpo` can neither start from a LoRA adapter nor render the
tools into the prompt the way SFT did, so this script does only those two things and hands the rest
to TRL:
  - the policy is the base model with the SFT adapter loaded *trainable* (`sft_adapter`), so GRPO
    continues the SFT LoRA weights; without `sft_adapter`, a fresh LoRA from the recipe's lora_* keys;
  - prompts come from scripts/grpo_data.py (LLaMA-Factory's template; tools in the system message, or
    the interview so far in the SFT recipe's prompt_format);
  - `reward_funcs` are dotted import paths (reward.fc.*, reward.interview.*), `reward_weights` their
    weights; TRL logs
    each reward and their weighted sum.
Every other key of the recipe is a GRPOConfig field and is passed as is (an unknown key is an error).
Writes the adapter, the trainer log and reward.png (reward per step, overall and per function) to
output_dir. A killed run resumes from its newest checkpoint; a finished one is left alone (scripts/runs.py).
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

from eval.figures import reward_chart
from eval.generate import get_template, load_model, require_adapter
from scripts.common import REPO_ROOT, write_json
from scripts.grpo_data import build_dataset, left_out_text
from scripts.recipes import apply_overrides, field_types, read_recipe, split_recipe
from scripts.runs import announce_plan


@dataclass
class GrpoLauncherArguments:
    """The launcher's own recipe keys; every other key is a trl.GRPOConfig field."""
    stage: str
    model_name_or_path: str
    template: str
    dataset: str
    reward_funcs: list
    dataset_dir: str = "."
    eval_dataset: str | None = None
    sft_adapter: str | None = None
    max_samples: int | None = None
    no_call_share: float | None = None  # share of prompts that need no call (relevance rows); None: the data's
    prompt_format: str = "window"  # interviewer: the format its SFT recipe trained on (scripts/interview_format.py)
    decision_share: float | None = None  # interviewer: share of prompts whose turn closes or changes topic
    closing_share: float | None = None  # interviewer: share of prompts whose turn is the closing (after decision_share)
    trust_remote_code: bool = False
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target: str = "all"
    plot_reward: bool = True


def load_reward_funcs(paths: list[str]) -> list:
    funcs = []
    for path in paths:
        module_name, _, attr = str(path).rpartition(".")
        try:
            func = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError, ValueError) as exc:
            sys.exit(f"error: reward function '{path}' cannot be imported ({exc})")
        funcs.append(func)
    return funcs


def grpo_config(recipe: dict, source: str = "recipe"):
    """(the launcher's own arguments, trl.GRPOConfig) from a flat recipe; every bad key in one message."""
    from trl import GRPOConfig

    launcher, settings = split_recipe(recipe, GrpoLauncherArguments, field_types(GRPOConfig),
                                      source)
    if settings.get("reward_weights") and len(settings["reward_weights"]) != len(launcher.reward_funcs):
        sys.exit("error: reward_weights needs one weight per reward function")
    return launcher, GRPOConfig(**settings)


def policy(launcher: GrpoLauncherArguments, config):
    """(model, peft_config): base + trainable SFT adapter, or base + a fresh LoRA config."""
    import torch
    from peft import LoraConfig, PeftModel
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if config.bf16 else torch.float32
    model = AutoModelForCausalLM.from_pretrained(launcher.model_name_or_path, dtype=dtype,
                                                 trust_remote_code=launcher.trust_remote_code)
    if launcher.sft_adapter:
        adapter = require_adapter(Path(launcher.sft_adapter), "train it first: make sft RECIPE=<the SFT recipe>")
        return PeftModel.from_pretrained(model, str(adapter), is_trainable=True), None
    target = launcher.lora_target
    return model, LoraConfig(r=launcher.lora_rank, lora_alpha=launcher.lora_alpha, lora_dropout=launcher.lora_dropout,
                             task_type="CAUSAL_LM", target_modules="all-linear" if target == "all" else target)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        sys.exit("usage: python -m scripts.grpo RECIPE.yaml [key=value ...]")
    recipe_path = Path(argv[0])
    recipe = apply_overrides(read_recipe(recipe_path), argv[1:])
    if recipe.get("stage") != "grpo":
        sys.exit(f"error: {recipe_path} is not a GRPO recipe (stage: grpo)")
    from trl import GRPOTrainer

    launcher, config = grpo_config(recipe, str(recipe_path))
    plan = announce_plan(Path(config.output_dir), config.overwrite_output_dir, f"make grpo RECIPE={recipe_path}", "grpo")
    if plan is None:
        return 0
    reward_funcs = load_reward_funcs(launcher.reward_funcs)
    tokenizer, _ = load_model(launcher.model_name_or_path, weights=False)
    get_template(tokenizer, launcher.template)  # sets eos to the template's stop word, as in SFT
    tokenizer.padding_side = "left"
    dataset, left_out = build_dataset(recipe, tokenizer)
    print(f"grpo: {len(dataset)} prompts ({left_out_text(left_out)})")
    model, peft_config = policy(launcher, config)

    trainer = GRPOTrainer(model=model, reward_funcs=reward_funcs, args=config, train_dataset=dataset,
                          processing_class=tokenizer, peft_config=peft_config)
    result = trainer.train(resume_from_checkpoint=str(plan.resume_from) if plan.resume_from else None)
    out = Path(config.output_dir)
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    write_json(out / "trainer_log.json", trainer.state.log_history)
    if launcher.plot_reward:
        reward_chart(out / "reward.png", trainer.state.log_history, [f.__name__ for f in reward_funcs])
    trainer.save_metrics("train", result.metrics)  # train_results.json, written last: the run is finished
    print(f"grpo: adapter and reward.png in {out.resolve().relative_to(REPO_ROOT) if out.resolve().is_relative_to(REPO_ROOT) else out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
