"""SFT throughput of a CPU recipe in fp32, bf16, and bf16 with the LM head on the trained positions only
(scripts/sparse_logits.py, what `make sft` does), in one run: a few steps of `make sft`'s launcher each,
trained tokens per second from LLaMA-Factory's own token count (include_num_input_tokens_seen), and the
losses of each run (the sparse head must give the full head's).

    python -m bench.bench_sft [--recipe configs/interview_smollm2_lora_sft_cpu.yaml] [--steps 4]   (make bench)

Writes bench/results/sft.json (--output). Where the CPU has no native bf16 (avx512_bf16 / AMX) the bf16 run shows
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
from scripts.sparse_logits import DISABLE_ENV

VARIANTS = {"fp32": (False, True), "bf16": (True, True), "bf16_sparse_logits": (True, False)}  # (bf16, full logits)


def train(recipe: Path, steps: int, bf16: bool, full_logits: bool, out: Path) -> dict:
    overrides = [f"max_steps={steps}", f"bf16={'true' if bf16 else 'false'}", f"output_dir={out}",
                 "include_num_input_tokens_seen=true", "logging_steps=1", "save_steps=100000", "plot_loss=false",
                 "overwrite_output_dir=true"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO_ROOT), **{DISABLE_ENV: "1" if full_logits else "0"})
    subprocess.run([sys.executable, "-m", "scripts.sft", str(recipe), *overrides],
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
        runs = {name: train(args.recipe, args.steps, bf16, full, Path(tmp) / name) for name, (bf16, full) in VARIANTS.items()}

    def speedup(fast: str, slow: str) -> float | None:
        tokens = runs[fast]["tokens_per_s"], runs[slow]["tokens_per_s"]
        return round(tokens[0] / tokens[1], 2) if all(tokens) else None

    result = {"recipe": str(args.recipe), "cpu_native_bf16": cpu_bf16_flags(), "runs": runs,
              "bf16_speedup": speedup("bf16", "fp32"), "sparse_logits_speedup": speedup("bf16_sparse_logits", "bf16"),
              "sparse_logits_max_loss_difference": max((abs(a - b) for a, b in zip(
                  runs["bf16_sparse_logits"]["losses"], runs["bf16"]["losses"])), default=None)}
    write_json(args.output, result)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
