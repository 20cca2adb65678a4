"""The memory plan (scripts/plan.py) against measured peak memory of real LoRA training steps on the CPU.

    python -m bench.bench_plan            # SmolLM2-135M (the embedded model), about 3 minutes on 2 cores

Each setting runs in a fresh process: SmolLM2 in float32, LoRA r16 / alpha 32 / dropout 0.05 on all linear
layers (the CPU recipe's settings), AdamW, two training steps on random tokens of the given shape, with and
without gradient checkpointing. The process's peak resident memory is reset after the model is loaded
(/proc/self/clear_refs), so the measurement is what training adds on top of the weights: activations,
logits and loss, LoRA gradients and Adam states. The plan's estimate of exactly those parts is compared,
and the relative error is written to bench/results/plan_validation.json (and the README).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from scripts.common import REPO_ROOT, write_json
from scripts.plan import GIB, Arch, lora_targets, make_plan

MODEL = REPO_ROOT / "models" / "SmolLM2-135M-Instruct"
RECIPE = REPO_ROOT / "configs" / "interview_smollm2_lora_sft_cpu.yaml"
SETTINGS = [(1, 512, False), (2, 512, False), (2, 1024, False), (4, 1024, False),
            (2, 512, True), (2, 1024, True), (4, 1024, True)]

CHILD = r"""
import json, sys, torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

batch, length, checkpointing, model_dir, rank, alpha, dropout, targets = json.loads(sys.argv[1])
torch.manual_seed(0)
torch.set_num_threads(2)

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets))
if checkpointing:
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
model.train()
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
ids = torch.randint(0, model.config.vocab_size, (batch, length))
with torch.no_grad():
    model(input_ids=ids[:, :8])  # weights are mmapped from the safetensors file: page them all in first
base = status("VmRSS:")
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current size
for _ in range(2):
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
print(json.dumps({"added": status("VmHWM:") - base}))
"""


def measure(batch: int, length: int, checkpointing: bool, recipe: dict) -> int:
    args = [batch, length, checkpointing, str(MODEL), recipe["lora_rank"], recipe["lora_alpha"], recipe["lora_dropout"],
            lora_targets(recipe)]
    # glibc keeps freed blocks below its (growing) mmap threshold in the heap; a fixed threshold returns
    # every tensor-sized block on free, so resident memory follows live tensors as a GPU allocator's would
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", OMP_NUM_THREADS="2")
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True, check=True,
                         env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])["added"]


def estimate(batch: int, length: int, checkpointing: bool, recipe: dict, arch: Arch) -> float:
    setting = dict(recipe, per_device_train_batch_size=batch, cutoff_len=length,
                   gradient_checkpointing=checkpointing, bf16=False, fp16=False)
    plan = make_plan(setting, arch, gpus=1, device="cpu")
    return plan.trainable_states + plan.activations + plan.logits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("bench/results/plan_validation.json"))
    args = parser.parse_args(argv)
    if not (MODEL / "config.json").is_file():
        sys.exit("error: run `make model` first")
    recipe = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    arch = Arch.from_config(json.loads((MODEL / "config.json").read_text(encoding="utf-8")))
    rows = []
    print(f"{'batch':>5} {'tokens':>6} {'ckpt':>5} {'measured':>10} {'planned':>10} {'error':>7}")
    for batch, length, checkpointing in SETTINGS:
        measured = measure(batch, length, checkpointing, recipe)
        planned = estimate(batch, length, checkpointing, recipe, arch)
        error = (planned - measured) / measured
        rows.append({"batch": batch, "length": length, "gradient_checkpointing": checkpointing,
                     "measured_gib": round(measured / GIB, 3), "planned_gib": round(planned / GIB, 3),
                     "relative_error": round(error, 3)})
        print(f"{batch:>5} {length:>6} {str(checkpointing):>5} {measured / GIB:>8.2f}Gi {planned / GIB:>8.2f}Gi "
              f"{error:>+7.1%}", flush=True)
    worst = max(abs(r["relative_error"]) for r in rows)
    mean = sum(abs(r["relative_error"]) for r in rows) / len(rows)
    write_json(args.output, {"model": "SmolLM2-135M-Instruct float32, LoRA r16 all linear, dropout 0.05, CPU",
                             "rows": rows, "mean_abs_relative_error": round(mean, 3),
                             "max_abs_relative_error": round(worst, 3)})
    print(f"mean |error| {mean:.1%}, max |error| {worst:.1%} -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
