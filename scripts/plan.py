"""Memory and time plan for a LoRA SFT recipe, from the model's config.json: will it fit the GPU?

    python -m scripts.plan configs/interview_qwen3_0.6b_lora_sft_12gb.yaml
    python -m scripts.plan configs/x.yaml --gpu-memory-gb 24 --gpus 2        # another machine

The model's architecture comes from its local folder, or for hub names from configs/models/<name>/config.json
(Qwen3 0.6B / 1.7B / 4B / 8B are shipped, so no hub is needed). The target GPU comes from configs/profiles.yaml.

Per GPU, in bytes:
- weights: parameters x dtype size (bf16 2, fp32 4, 4-bit 0.5 + scales), / N under ZeRO-3, on the CPU when offloaded;
- trainable (LoRA) states: LLaMA-Factory keeps trainable parameters in fp32: weights 4 + gradients 4 + Adam 8 bytes
  each; ZeRO-2 splits gradients and Adam states over N GPUs, ZeRO-3 the weights too; offload moves Adam to the CPU;
- activations saved for backward, per token and layer, counted tensor by tensor for a Llama/Qwen block with LoRA on
  all linear layers (see activation_bytes_per_token); with gradient checkpointing only each layer's input is kept,
  plus one layer's full set while it is recomputed;
- logits: batch x length x vocabulary, in the model dtype, an fp32 copy for the loss, its log-softmax and gradient;
- on a GPU, a fixed 1 GiB for the CUDA context and allocator slack.
Time: 6 x (trainable-path) FLOPs per token are not what LoRA costs; it is forward 2P + backward 2P (input gradients
through frozen weights) + 2P more for recomputation under gradient checkpointing, at 35% of the GPU's bf16 peak.
`python -m bench.bench_plan` measures the activation/state part on the CPU and reports the estimator's error.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from scripts.common import REPO_ROOT

PROFILES = REPO_ROOT / "configs" / "profiles.yaml"
MODEL_CONFIGS = REPO_ROOT / "configs" / "models"
GIB = 2**30
CUDA_OVERHEAD = 1 * GIB
MFU = 0.35
LINEAR_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}


@dataclass(frozen=True)
class Arch:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool
    qk_norm: bool  # Qwen3 normalises q and k per head

    @classmethod
    def from_config(cls, config: dict) -> "Arch":
        heads = config["num_attention_heads"]
        return cls(hidden=config["hidden_size"], intermediate=config["intermediate_size"],
                   layers=config["num_hidden_layers"], heads=heads,
                   kv_heads=config.get("num_key_value_heads", heads),
                   head_dim=config.get("head_dim") or config["hidden_size"] // heads,
                   vocab=config["vocab_size"], tied=bool(config.get("tie_word_embeddings", False)),
                   qk_norm=config.get("model_type") == "qwen3")

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each linear layer of one block."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        h, i = self.hidden, self.intermediate
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    def parameters(self) -> int:
        block = sum(a * b for a, b in self.linear_shapes().values()) + 2 * self.hidden
        block += 2 * self.head_dim if self.qk_norm else 0
        embeddings = self.vocab * self.hidden * (1 if self.tied else 2)
        return self.layers * block + embeddings + self.hidden


def lora_targets(recipe: dict) -> list[str]:
    target = str(recipe.get("lora_target", "all"))
    return list(LINEAR_MODULES) if target == "all" else [t.strip() for t in target.split(",")]


def lora_parameters(arch: Arch, rank: int, targets: list[str]) -> int:
    shapes = arch.linear_shapes()
    return arch.layers * sum(rank * (shapes[t][0] + shapes[t][1]) for t in targets if t in shapes)


def activation_bytes_per_token(arch: Arch, act_bytes: int, targets: list[str], dropout: bool,
                               device: str = "cuda") -> float:
    """Bytes one token leaves saved for backward in one block (frozen weights save no inputs; LoRA does)."""
    h, i = arch.hidden, arch.intermediate
    q, kv = arch.heads * arch.head_dim, arch.kv_heads * arch.head_dim
    fp32 = 4
    total = 2 * h * fp32  # the two RMSNorms upcast their input to fp32 and keep it
    if arch.qk_norm:
        total += (q + kv) * fp32  # per-head q/k norms, same upcast
    kv_saved = q if device == "cpu" else kv  # off CUDA, attention gets k and v repeated up to the query heads
    total += (q + 2 * kv_saved + q) * act_bytes  # attention keeps q, k, v and its output
    total += 3 * i * act_bytes  # SwiGLU keeps gate, up and silu(gate)
    # LoRA's A matrices need their input: with dropout each module keeps its own dropped copy and the mask
    # (CUDA's fused dropout keeps a 1-byte mask, the CPU's a full-precision one); without dropout the modules
    # sharing an input share it (the norm output for q/k/v and for gate/up).
    inputs = {name: shape[0] for name, shape in arch.linear_shapes().items() if name in targets}
    if dropout:
        total += sum(inputs.values()) * (act_bytes + (1 if device == "cuda" else act_bytes))
    else:
        groups = {"attn_in": ("q_proj", "k_proj", "v_proj"), "mlp_in": ("gate_proj", "up_proj")}
        for names in groups.values():
            if any(n in inputs for n in names):
                total += h * act_bytes
        total += inputs.get("down_proj", 0) * act_bytes  # o_proj's input is the attention output, counted above
    return total


@dataclass
class Plan:
    parameters: int
    lora_parameters: int
    weights: float
    trainable_states: float
    activations: float
    activations_other_setting: float
    logits: float
    overhead: float
    total: float
    cpu_offloaded: float
    tokens_per_step: int
    step_seconds: float | None


def make_plan(recipe: dict, arch: Arch, *, gpus: int, device: str = "cuda", tflops: float | None = None,
              zero_stage: int = 0, offload: bool = False) -> Plan:
    batch, length = int(recipe.get("per_device_train_batch_size", 1)), int(recipe.get("cutoff_len", 2048))
    accumulation = int(recipe.get("gradient_accumulation_steps", 1))
    half = bool(recipe.get("bf16") or recipe.get("fp16"))
    weight_bytes = {4: 0.5 * 1.03, 8: 1.0}.get(recipe.get("quantization_bit"), 2 if half else 4)
    act_bytes = 2 if half else 4
    targets = lora_targets(recipe)
    params = arch.parameters()
    lora = lora_parameters(arch, int(recipe.get("lora_rank", 8)), targets)
    checkpointing = bool(recipe.get("gradient_checkpointing", False))

    weights = params * weight_bytes
    shard = max(gpus, 1)
    lora_weights, lora_grads, adam = 4 * lora, 4 * lora, 8 * lora
    cpu = 0.0
    if zero_stage >= 2:
        lora_grads, adam = lora_grads / shard, adam / shard
    if zero_stage >= 3:
        weights, lora_weights = weights / shard, lora_weights / shard
    if offload:
        cpu += adam * shard + weights * shard
        # ZeRO-3 offload keeps the layers being computed on the GPU (prefetch and persistence buffers)
        weights = 2 * (params - arch.vocab * arch.hidden * (1 if arch.tied else 2)) / arch.layers * weight_bytes
        adam = 0.0
    states = lora_weights + lora_grads + adam

    per_token = activation_bytes_per_token(arch, act_bytes, targets, float(recipe.get("lora_dropout", 0)) > 0,
                                           device)
    tokens = batch * length
    full = arch.layers * tokens * per_token
    checkpointed = arch.layers * tokens * arch.hidden * act_bytes + tokens * per_token
    activations, other = (checkpointed, full) if checkpointing else (full, checkpointed)
    # logits in the model dtype, an fp32 copy (none on fp32), log-softmax and its gradient in fp32
    logits = tokens * arch.vocab * (act_bytes + (4 if half else 0) + 4 + 4)
    overhead = CUDA_OVERHEAD if device == "cuda" else 0.0
    total = weights + states + activations + logits + overhead

    tokens_per_step = tokens * accumulation * shard
    step = None
    if tflops:
        attention = 4 * arch.layers * length * arch.heads * arch.head_dim  # QK^T and AV, forward, per token
        per_token_flops = (2 * params + attention) * (3 if checkpointing else 2)  # fwd + input-grad bwd (+ recompute)
        per_token_flops += 2 * (2 * lora)  # LoRA weight gradients
        step = tokens_per_step * per_token_flops / (shard * tflops * 1e12 * MFU)
    return Plan(params, lora, weights, states, activations, other, logits, overhead, total, cpu,
                tokens_per_step, step)


def model_config(model: str) -> tuple[dict, str]:
    local = Path(model) / "config.json"
    if not local.is_absolute():
        local = REPO_ROOT / local
    if local.is_file():
        return json.loads(local.read_text(encoding="utf-8")), str(Path(model) / "config.json")
    shipped = MODEL_CONFIGS / Path(model).name / "config.json"
    if shipped.is_file():
        return json.loads(shipped.read_text(encoding="utf-8")), str(shipped.relative_to(REPO_ROOT))
    known = ", ".join(sorted(p.name for p in MODEL_CONFIGS.iterdir()))
    raise SystemExit(f"error: no config.json for {model}: not a local folder, and configs/models/ has {known}")


def deepspeed_setup(recipe: dict) -> tuple[int, bool]:
    if not recipe.get("deepspeed"):
        return 0, False
    config = json.loads((REPO_ROOT / recipe["deepspeed"]).read_text(encoding="utf-8"))
    zero = config.get("zero_optimization", {})
    return int(zero.get("stage", 0)), "offload_optimizer" in zero or "offload_param" in zero


def fits(plan: Plan, profile: dict) -> bool:
    return plan.total <= float(profile["memory_gb"]) * 1e9  # GPU makers' "GB" are 10^9 bytes


def gib(value: float) -> str:
    return f"{value / GIB:6.2f} GiB"


def render(name: str, recipe: dict, plan: Plan, profile: dict, zero_stage: int, offload: bool,
           source: str) -> str:
    checkpointing = bool(recipe.get("gradient_checkpointing", False))
    memory = float(profile["memory_gb"]) * 1e9
    zero = f"ZeRO-{zero_stage}{' + CPU offload' if offload else ''}" if zero_stage else "none (plain DDP / 1 GPU)"
    lines = [
        f"plan for {name}  (architecture: {source})",
        f"  GPU             {profile.get('gpus', 1)} x {profile.get('gpu', '?')} ({profile['memory_gb']} GB), DeepSpeed {zero}",
        f"  parameters      {plan.parameters / 1e9:.3f} B, LoRA r{recipe.get('lora_rank', 8)} on "
        f"{recipe.get('lora_target', 'all')}: {plan.lora_parameters / 1e6:.1f} M trainable",
        f"  batch           {recipe.get('per_device_train_batch_size', 1)} x {recipe.get('cutoff_len')} tokens per GPU, "
        f"accumulation {recipe.get('gradient_accumulation_steps', 1)}, gradient checkpointing "
        f"{'on' if checkpointing else 'off'}",
        "  per GPU:",
        f"    weights               {gib(plan.weights)}",
        f"    LoRA weights+grads+Adam {gib(plan.trainable_states)}",
        f"    activations           {gib(plan.activations)}   ({'without' if checkpointing else 'with'} "
        f"checkpointing it would be {gib(plan.activations_other_setting).strip()})",
        f"    logits + loss         {gib(plan.logits)}",
        f"    CUDA context, slack   {gib(plan.overhead)}",
        f"    total                 {gib(plan.total)}  of {memory / GIB:.2f} GiB -> "
        f"{'FITS' if fits(plan, profile) else 'DOES NOT FIT'} ({(memory - plan.total) / GIB:+.2f} GiB headroom)",
    ]
    if plan.cpu_offloaded:
        lines.append(f"    on CPU (offloaded)    {gib(plan.cpu_offloaded)} in all")
    lines.append(f"  tokens per step {plan.tokens_per_step:,} at most (every row at cutoff_len)")
    if plan.step_seconds is not None:
        lines.append(f"  time per step   ~{plan.step_seconds:.1f} s at {MFU:.0%} of {profile['bf16_tflops']} "
                     f"bf16 TFLOPS per GPU")
    return "\n".join(lines)


def plan_for(recipe_path: Path, overrides: dict | None = None) -> tuple[Plan, dict, str]:
    recipe = yaml.safe_load(recipe_path.read_text(encoding="utf-8"))
    if recipe.get("stage") != "sft" or recipe.get("finetuning_type", "lora") != "lora":
        raise SystemExit(f"error: {recipe_path.name}: the plan covers LoRA SFT recipes (stage: sft)")
    profiles = yaml.safe_load(PROFILES.read_text(encoding="utf-8"))
    profile = dict(profiles.get(recipe_path.name) or {})
    profile.update({k: v for k, v in (overrides or {}).items() if v is not None})
    if "memory_gb" not in profile:
        raise SystemExit(f"error: {recipe_path.name} has no GPU in configs/profiles.yaml; pass --gpu-memory-gb")
    config, source = model_config(recipe["model_name_or_path"])
    zero_stage, offload = deepspeed_setup(recipe)
    plan = make_plan(recipe, Arch.from_config(config), gpus=int(profile.get("gpus", 1)),
                     tflops=profile.get("bf16_tflops"), zero_stage=zero_stage, offload=offload)
    return plan, profile, render(recipe_path.name, recipe, plan, profile, zero_stage, offload, source)


def profile_table() -> str:
    """The README's profile table: every recipe of configs/profiles.yaml with its plan."""
    rows = ["| recipe | GPU | model | batch x accum x GPUs | grad. ckpt | tokens per step (max) | plan per GPU "
            "| fits | est. step time |", "|---|---|---|---|---|---|---|---|---|"]
    for name in sorted(yaml.safe_load(PROFILES.read_text(encoding="utf-8"))):
        recipe_path = REPO_ROOT / "configs" / name
        recipe = yaml.safe_load(recipe_path.read_text(encoding="utf-8"))
        result, profile, _ = plan_for(recipe_path)
        zero_stage, offload = deepspeed_setup(recipe)
        zero = f", ZeRO-{zero_stage}{' offload' if offload else ''}" if zero_stage else ""
        fitting = "yes" if fits(result, profile) else "**no**"
        rows.append(f"| `{name}` | {profile['gpus']} x {profile['gpu']}{zero} | {Path(recipe['model_name_or_path']).name} "
                    f"| {recipe['per_device_train_batch_size']} x {recipe['gradient_accumulation_steps']} x "
                    f"{profile['gpus']} | {'yes' if recipe.get('gradient_checkpointing') else 'no'} "
                    f"| {result.tokens_per_step:,} | {result.total / GIB:.1f} GiB of {profile['memory_gb']} GB "
                    f"| {fitting} | ~{result.step_seconds:.0f} s |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", type=Path, nargs="?")
    parser.add_argument("--profiles", action="store_true", help="print the table of every profile (README)")
    parser.add_argument("--gpu-memory-gb", type=float, dest="memory_gb", help="GPU memory (default: profiles.yaml)")
    parser.add_argument("--gpus", type=int, help="number of GPUs (default: profiles.yaml)")
    parser.add_argument("--gpu", help="GPU name, for the printout")
    parser.add_argument("--bf16-tflops", type=float, dest="bf16_tflops", help="for the time estimate")
    args = parser.parse_args(argv)
    if args.profiles:
        print(profile_table())
        return 0
    if args.recipe is None or not args.recipe.is_file():
        sys.exit(f"error: recipe not found: {args.recipe}")
    plan, profile, text = plan_for(args.recipe, {"memory_gb": args.memory_gb, "gpus": args.gpus, "gpu": args.gpu,
                                                 "bf16_tflops": args.bf16_tflops})
    print(text)
    return 0 if fits(plan, profile) else 2


if __name__ == "__main__":
    sys.exit(main())
