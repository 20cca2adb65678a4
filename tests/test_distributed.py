"""Distributed training through LLaMA-Factory's own launcher, on the CPU: 2 torchrun processes over gloo.

Plain DDP, DeepSpeed ZeRO-2 and ZeRO-3 each train the CPU recipe for 2 steps. Both ranks must report
world size 2, the global batch must be 2 ranks x batch x accumulation, exactly one adapter is written (by
rank 0), and the three runs agree on the losses: sharding changes where tensors live, not the maths.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

RECIPE = REPO / "configs/interview_smollm2_lora_sft_cpu.yaml"


def launch(tmp_path: Path, name: str, *overrides: str) -> tuple[Path, str]:
    output = tmp_path / name
    env = dict(os.environ, FORCE_TORCHRUN="1", NPROC_PER_NODE="2", MASTER_PORT=str(29600 + os.getpid() % 300),
               OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO),
               PATH=f"{REPO / '.venv/bin'}:{os.environ['PATH']}")
    command = [str(REPO / ".venv/bin/llamafactory-cli"), "train", str(RECIPE), "max_steps=2", "logging_steps=1",
               "cutoff_len=128", f"output_dir={output}", *overrides]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    log = result.stdout + result.stderr
    # A worker may abort at interpreter exit after the run has finished and saved ("terminate called without
    # an active exception", seen 1 in 3 under ZeRO-3 on 2 CPU processes): the run itself is complete.
    finished = (output / "train_results.json").is_file() and "terminate called without an active exception" in log
    assert result.returncode == 0 or finished, log[-4000:]
    return output, log


def losses(output: Path) -> list[float]:
    rows = [json.loads(line) for line in (output / "trainer_log.jsonl").read_text(encoding="utf-8").splitlines()]
    return [row["loss"] for row in rows if "loss" in row]


@pytest.mark.slow
def test_two_processes_ddp_zero2_zero3_train_alike(tmp_path):
    recipe = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    global_batch = 2 * recipe["per_device_train_batch_size"] * recipe["gradient_accumulation_steps"]
    runs = {"ddp": launch(tmp_path, "ddp"),
            "zero2": launch(tmp_path, "zero2", "deepspeed=configs/deepspeed/ds_z2_config.json"),
            # transformers' use_cpu path never starts DeepSpeed's communication, which ZeRO-3's model
            # construction needs; without it the device is still the CPU (there is no GPU), set up by DeepSpeed
            "zero3": launch(tmp_path, "zero3", "deepspeed=configs/deepspeed/ds_z3_config.json", "use_cpu=false")}
    for name, (output, log) in runs.items():
        for rank in (0, 1):  # float32 as the recipe says, no mixed precision picked up from the environment
            assert re.search(rf"Process rank: {rank}, world size: 2, device: cpu.*compute dtype: None", log), name
        assert f"Total train batch size (w. parallel, distributed & accumulation) = {global_batch}" in log, name
        adapters = sorted(p.relative_to(output).as_posix() for p in output.rglob("adapter_model.safetensors"))
        # one adapter (+ the last-step checkpoint's copy), written by rank 0 only
        assert adapters == ["adapter_model.safetensors", "checkpoint-2/adapter_model.safetensors"], (name, adapters)
        from safetensors.torch import load_file

        weights = load_file(output / "adapter_model.safetensors")
        assert any(k.endswith("lora_B.weight") and float(v.abs().max()) > 0 for k, v in weights.items()), name
        state = json.loads((output / "trainer_state.json").read_text(encoding="utf-8"))
        assert state["global_step"] == 2, name
        # two steps consumed 2 x 8 rows of the training set: each rank read its own half of every batch
        examples = int(re.search(r"Num examples = ([\d,]+)", log).group(1).replace(",", ""))
        assert state["epoch"] == pytest.approx(2 * global_batch / examples, rel=0.05), name
    reference = losses(runs["ddp"][0])
    assert len(reference) == 2
    for name in ("zero2", "zero3"):
        assert losses(runs[name][0]) == pytest.approx(reference, rel=1e-3), name


def test_accelerate_configs_load_with_accelerates_own_reader():
    from accelerate.commands.config.config_args import load_config_from_file

    kinds = {}
    for path in sorted((REPO / "configs/accelerate").glob("*.yaml")):
        config = load_config_from_file(str(path))
        kinds[path.name] = (str(config.distributed_type), (config.deepspeed_config or {}).get("zero_stage"))
        assert config.mixed_precision == "bf16" and config.num_processes >= 2, path.name
    assert kinds == {"multi_gpu.yaml": ("DistributedType.MULTI_GPU", None),
                     "deepspeed_zero2.yaml": ("DistributedType.DEEPSPEED", 2),
                     "deepspeed_zero3.yaml": ("DistributedType.DEEPSPEED", 3)}


def test_deepspeed_configs_leave_batch_and_precision_to_the_recipe():
    for path in sorted((REPO / "configs/deepspeed").glob("*.json")):
        config = json.loads(path.read_text(encoding="utf-8"))
        for key in ("train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps"):
            assert config[key] == "auto", (path.name, key)
        assert config["bf16"]["enabled"] == "auto" and config["optimizer"]["params"]["lr"] == "auto"
