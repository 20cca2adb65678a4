"""GRPO for function calling: a thin launcher over TRL's GRPOTrainer, driven by a flat YAML recipe.

    python -m scripts.grpo configs/fc_smollm2_grpo_cpu.yaml [key=value ...]      (make grpo RECIPE=...)

LLaMA-Factory has no GRPO stage, and `trl grpo` can neither start from a LoRA adapter nor render the
tools into the prompt the way SFT did, so this script does only those two things and hands the rest
to TRL:
  - the policy is the base model with the SFT adapter loaded *trainable* (`sft_adapter`), so GRPO
    continues the SFT LoRA weights; without `sft_adapter`, a fresh LoRA from the recipe's lora_* keys;
  - prompts come from scripts/grpo_data.py (LLaMA-Factory's template, tools in the system message);
  - `reward_funcs` are dotted import paths (reward.fc.*), `reward_weights` their weights; TRL logs
    each reward and their weighted sum.
Every other key of the recipe is a GRPOConfig field and is passed as is (an unknown key is an error).
Writes the adapter, the trainer log and reward.png (reward per step, overall and per function) to
output_dir.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from pathlib import Path

from eval.generate import get_template, load_model
from eval.run_eval import read_recipe
from scripts.common import REPO_ROOT, apply_overrides
from scripts.grpo_data import build_dataset

# recipe keys this launcher uses itself; the rest go to GRPOConfig
LAUNCHER_KEYS = {"stage", "model_name_or_path", "sft_adapter", "template", "dataset", "dataset_dir", "eval_dataset",
                 "max_samples", "reward_funcs", "trust_remote_code", "lora_rank", "lora_alpha", "lora_dropout",
                 "lora_target", "plot_reward"}


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


def grpo_config(recipe: dict):
    from trl import GRPOConfig

    fields = set(inspect.signature(GRPOConfig).parameters)
    settings = {k: v for k, v in recipe.items() if k not in LAUNCHER_KEYS}
    unknown = sorted(set(settings) - fields)
    if unknown:
        sys.exit(f"error: unknown recipe key(s) {', '.join(unknown)} (neither a launcher key nor a GRPOConfig field)")
    if recipe.get("reward_weights") and len(recipe["reward_weights"]) != len(recipe["reward_funcs"]):
        sys.exit("error: reward_weights needs one weight per reward function")
    return GRPOConfig(**settings)


def policy(recipe: dict, config):
    """(model, peft_config): base + trainable SFT adapter, or base + a fresh LoRA config."""
    import torch
    from peft import LoraConfig, PeftModel
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if config.bf16 else torch.float32
    model = AutoModelForCausalLM.from_pretrained(recipe["model_name_or_path"], dtype=dtype,
                                                 trust_remote_code=bool(recipe.get("trust_remote_code", False)))
    if recipe.get("sft_adapter"):
        adapter = Path(recipe["sft_adapter"])
        if not (adapter / "adapter_config.json").is_file():
            sys.exit(f"error: no SFT adapter in {adapter} (train it first: make sft RECIPE=<the fc SFT recipe>)")
        return PeftModel.from_pretrained(model, str(adapter), is_trainable=True), None
    target = recipe.get("lora_target", "all-linear")
    return model, LoraConfig(r=recipe.get("lora_rank", 16), lora_alpha=recipe.get("lora_alpha", 32),
                             lora_dropout=recipe.get("lora_dropout", 0.05), task_type="CAUSAL_LM",
                             target_modules="all-linear" if target == "all" else target)


def plot_rewards(log_history: list[dict], reward_names: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in log_history if "reward" in row]
    if not rows:
        return
    steps = [row["step"] for row in rows]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    ax.plot(steps, [row["reward"] for row in rows], marker="o", linewidth=2, label="reward (weighted sum)")
    for name in reward_names:
        key = f"rewards/{name}/mean"
        if all(key in row for row in rows):
            ax.plot(steps, [row[key] for row in rows], marker=".", alpha=0.7, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("mean reward")
    ax.set_title("GRPO reward")
    ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        sys.exit("usage: python -m scripts.grpo RECIPE.yaml [key=value ...]")
    recipe_path = Path(argv[0])
    recipe = apply_overrides(read_recipe(recipe_path), argv[1:])
    if recipe.get("stage") != "grpo":
        sys.exit(f"error: {recipe_path} is not a GRPO recipe (stage: grpo)")
    from trl import GRPOTrainer

    config = grpo_config(recipe)
    reward_funcs = load_reward_funcs(recipe["reward_funcs"])
    tokenizer, _ = load_model(recipe["model_name_or_path"], weights=False)
    get_template(tokenizer, recipe["template"])  # sets eos to the template's stop word, as in SFT
    tokenizer.padding_side = "left"
    dataset, too_long = build_dataset(recipe, tokenizer)
    print(f"grpo: {len(dataset)} prompts ({too_long} longer than max_prompt_length left out)")
    model, peft_config = policy(recipe, config)

    trainer = GRPOTrainer(model=model, reward_funcs=reward_funcs, args=config, train_dataset=dataset,
                          processing_class=tokenizer, peft_config=peft_config)
    trainer.train()
    out = Path(config.output_dir)
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    (out / "trainer_log.json").write_text(json.dumps(trainer.state.log_history, indent=2) + "\n", encoding="utf-8")
    if recipe.get("plot_reward", True):
        plot_rewards(trainer.state.log_history, [f.__name__ for f in reward_funcs], out / "reward.png")
    print(f"grpo: adapter and reward.png in {out.resolve().relative_to(REPO_ROOT) if out.resolve().is_relative_to(REPO_ROOT) else out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
