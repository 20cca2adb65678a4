"""Merge a recipe's LoRA adapter into its base model: a plain transformers folder (seed 000's export step).

    python -m scripts.merge configs/interview_smollm2_lora_sft_cpu.yaml     # -> runs/interview_smollm2_cpu/merged

LLaMA-Factory's own exporter does the merge (`llamafactory.train.tuner.export_model`, what
`llamafactory-cli export` runs): it loads base + adapter, merge_and_unload()s, and saves the weights and
the tokenizer with the recipe's chat template. This script only fills its arguments from the training
recipe and then checks the result: the merged folder, loaded with plain transformers, must give the same
logits as base + adapter through peft on a prompt. The check is written to merge_report.json.

The weights keep the base's dtype (a bf16 base gives a bf16 merge, a float32 base a float32 one), where
LLaMA-Factory's default would turn float32 into bf16. The merge runs on the CPU (export_device: cpu);
--device auto uses a GPU where there is one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

from eval.generate import require_adapter
from scripts.common import dump_json, relative_to_repo, write_json
from scripts.prompts import INTERVIEWER_SYSTEM_PROMPT
from scripts.recipes import read_recipe

MAX_RELATIVE_GAP = 0.05  # the merge may differ from base + adapter by at most 5% of what the adapter changes
CHECK_PROMPT = "面试官您好，我是来面试后端开发工程师岗位的。"


def base_dtype(model_path: str) -> str:
    """The dtype the base model's config declares (float32 when it declares none)."""
    config = json.loads((Path(model_path) / "config.json").read_text(encoding="utf-8"))
    return str(config.get("torch_dtype") or config.get("dtype") or "float32")


def export_arguments(recipe: dict, adapter: Path, export_dir: Path, device: str) -> dict:
    """LLaMA-Factory export arguments (the keys of its examples/merge_lora/*.yaml) from a training recipe."""
    return {
        "model_name_or_path": recipe["model_name_or_path"],
        "adapter_name_or_path": str(adapter),
        "template": recipe["template"],
        "finetuning_type": "lora",
        "trust_remote_code": bool(recipe.get("trust_remote_code", False)),
        "infer_dtype": base_dtype(recipe["model_name_or_path"]),
        "export_dir": str(export_dir),
        "export_size": 5,
        "export_device": device,
        "export_legacy_format": False,
    }


def check_prompt_ids(tokenizer, template_name: str) -> list[int]:
    """The interviewer's opening exchange, rendered by the recipe's template: the prompt both checks use."""
    from eval.generate import Example, encode_prompt, get_template

    example = Example(id="check", system=INTERVIEWER_SYSTEM_PROMPT,
                      messages=[{"role": "user", "content": CHECK_PROMPT}], label="")
    return encode_prompt(tokenizer, get_template(tokenizer, template_name), example)


@torch.no_grad()
def logits_gap(base_path: str, adapter: Path, merged: Path, template_name: str) -> dict:
    """Max |logit difference| between base + adapter (peft) and the merged folder (plain transformers)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ids = torch.tensor([check_prompt_ids(AutoTokenizer.from_pretrained(merged), template_name)])

    dtype = getattr(torch, base_dtype(base_path))
    merged_model = AutoModelForCausalLM.from_pretrained(merged, dtype=dtype).eval()
    merged_logits = merged_model(ids).logits.float()
    del merged_model
    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=dtype)
    reference = PeftModel.from_pretrained(base, str(adapter)).eval()
    reference_logits = reference(ids).logits.float()
    with reference.disable_adapter():  # the adapter's own effect: shows the check is not vacuous
        base_logits = reference(ids).logits.float()
    merged_gap = float((merged_logits - reference_logits).abs().max())
    adapter_effect = float((base_logits - reference_logits).abs().max())
    return {
        "prompt_tokens": int(ids.shape[1]),
        "dtype": str(dtype).removeprefix("torch."),
        "max_abs_diff_merged_vs_adapter": merged_gap,
        "max_abs_diff_base_vs_adapter": adapter_effect,
        "same_argmax_fraction": float((merged_logits.argmax(-1) == reference_logits.argmax(-1)).float().mean()),
        # float32 merges agree to ~1e-5; bf16 rounds W + BA once more, which stays far below the adapter's effect
        "passed": merged_gap <= MAX_RELATIVE_GAP * max(adapter_effect, 1e-3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", type=Path, help="the training recipe (SFT or GRPO) whose adapter is merged")
    parser.add_argument("--adapter", type=Path, help="adapter folder (default: the recipe's output_dir)")
    parser.add_argument("--output", type=Path, help="merged folder (default: <run>/merged next to the adapter)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "auto"], help="export_device (default cpu)")
    parser.add_argument("--no-check", action="store_true",
                        help="skip the logits check (it loads the model twice: skip it for 8B on a small machine)")
    args = parser.parse_args(argv)

    recipe = read_recipe(args.recipe)
    adapter = args.adapter or Path(recipe["output_dir"])
    require_adapter(adapter, f"train first: make sft RECIPE={args.recipe}")
    output = args.output or adapter.parent / "merged"

    # LLaMA-Factory writes into export_dir as it goes: export into a staging folder, rename when complete.
    staging = output.with_name(output.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    from llamafactory.train.tuner import export_model

    export_model(export_arguments(recipe, adapter, staging, args.device))
    (staging / "Modelfile").unlink(missing_ok=True)  # LLaMA-Factory's generic one; `make gguf` writes ours

    report = {"recipe": relative_to_repo(args.recipe), "base": recipe["model_name_or_path"],
              "adapter": relative_to_repo(adapter), "template": recipe["template"]}
    if not args.no_check:
        report["check"] = logits_gap(recipe["model_name_or_path"], adapter, staging, recipe["template"])
    write_json(staging / "merge_report.json", report)
    shutil.rmtree(output, ignore_errors=True)
    staging.rename(output)

    print(dump_json(report))
    print(f"merged model: {relative_to_repo(output)}")
    check = report.get("check")
    if check and not check["passed"]:
        print(f"error: the merged model's logits differ from base + adapter by more than {MAX_RELATIVE_GAP:.0%} "
              "of the adapter's own effect", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
