"""SFT throughput of the CPU recipe in fp32 and bf16, in one run: a few steps of `llamafactory-cli train`
each, trained tokens per second from LLaMA-Factory's own token count (include_num_input_tokens_seen).

    python -m bench.bench_sft [--recipe configs/interview_smollm2_lora_sft_cpu.yaml] [--steps 4]   (make bench)

Writes bench/results/sft.json. Where the CPU has no native bf16 (avx512_bf16 / AMX) the bf16 run shows
what emulation costs, which is why PRECISION=auto keeps such a CPU on fp32.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts.common import REPO_ROOT, write_json
from scripts.hardware import cpu_bf16_flags


def train(recipe: Path, steps: int, bf16: bool, out: Path) -> dict:
    overrides = [f"max_steps={steps}", f"bf16={'true' if bf16 else 'false'}", f"output_dir={out}",
                 "include_num_input_tokens_seen=true", "logging_steps=1", "save_steps=100000", "plot_loss=false",
                 "overwrite_output_dir=true"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO_ROOT))
    subprocess.run([str(Path(sys.executable).parent / "llamafactory-cli"), "train", str(recipe), *overrides],
                   cwd=REPO_ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = json.loads((out / "trainer_state.json").read_text(encoding="utf-8")) if (out / "trainer_state.json").exists() else {}
    results = json.loads((out / "train_results.json").read_text(encoding="utf-8"))
    tokens = state.get("num_input_tokens_seen") or results.get("num_input_tokens_seen")
    losses = [row["loss"] for row in state.get("log_history", []) if "loss" in row]
    return {"steps": steps, "train_runtime_s": results["train_runtime"], "tokens": tokens,
            "tokens_per_s": round(tokens / results["train_runtime"], 1) if tokens else None,
            "s_per_step": round(results["train_runtime"] / steps, 2), "losses": losses}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=Path("configs/interview_smollm2_lora_sft_cpu.yaml"))
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--output", type=Path, default=Path("bench/results/sft.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        runs = {name: train(args.recipe, args.steps, bf16, Path(tmp) / name) for name, bf16 in (("fp32", False), ("bf16", True))}
    result = {"recipe": str(args.recipe), "cpu_native_bf16": cpu_bf16_flags(), "runs": runs,
              "bf16_speedup": round(runs["bf16"]["tokens_per_s"] / runs["fp32"]["tokens_per_s"], 2)
              if runs["fp32"]["tokens_per_s"] and runs["bf16"]["tokens_per_s"] else None}
    write_json(args.output, result)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
