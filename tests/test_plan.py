"""make plan: parameter counts, LoRA counts and saved-activation bytes against the real thing; every GPU recipe fits."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from scripts import plan
from tests.conftest import REPO

GPU_RECIPES = sorted(yaml.safe_load((REPO / "configs/profiles.yaml").read_text(encoding="utf-8")))


@pytest.mark.parametrize("name, total, non_embedding", [
    ("Qwen3-0.6B", 0.6, 0.44), ("Qwen3-1.7B", 1.7, 1.4), ("Qwen3-4B", 4.0, 3.6), ("Qwen3-8B", 8.2, 6.95)])
def test_shipped_configs_give_the_model_cards_parameter_counts(name, total, non_embedding):
    config = json.loads((REPO / f"configs/models/{name}/config.json").read_text(encoding="utf-8"))
    arch = plan.Arch.from_config(config)
    embeddings = arch.vocab * arch.hidden * (1 if arch.tied else 2)
    assert arch.parameters() / 1e9 == pytest.approx(total, rel=0.03)
    assert (arch.parameters() - embeddings) / 1e9 == pytest.approx(non_embedding, rel=0.03)


def test_parameter_and_lora_counts_equal_the_instantiated_model(tiny_qwen3):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_qwen3)
    arch = plan.Arch.from_config(model.config.to_dict())
    assert arch.parameters() == sum(p.numel() for p in model.parameters())
    peft_model = get_peft_model(model, LoraConfig(r=8, target_modules=list(plan.LINEAR_MODULES)))
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert plan.lora_parameters(arch, 8, list(plan.LINEAR_MODULES)) == trainable


@pytest.mark.parametrize("dropout", [0.0, 0.05])
def test_saved_activation_bytes_match_autograd(tiny_qwen3, dropout):
    """What autograd really keeps for backward (saved-tensor hooks) against the per-token formula, on the CPU."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_qwen3, dtype=torch.float32),
                           LoraConfig(r=8, lora_dropout=dropout, target_modules=list(plan.LINEAR_MODULES))).train()
    arch = plan.Arch.from_config(model.config.to_dict())
    batch, length = 2, 256
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params and tensor.dim() >= 2:  # skip weights and per-row statistics
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    ids = torch.randint(0, arch.vocab, (batch, length))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=ids, labels=ids)
    logits_saved = batch * length * arch.vocab * 4  # the loss keeps its log-softmax
    expected = arch.layers * batch * length * plan.activation_bytes_per_token(
        arch, 4, list(plan.LINEAR_MODULES), dropout > 0, device="cpu") + logits_saved
    assert sum(saved.values()) == pytest.approx(expected, rel=0.10)


@pytest.mark.parametrize("recipe", GPU_RECIPES)
def test_every_gpu_recipe_fits_its_profile(recipe, capsys):
    assert plan.main([str(REPO / "configs" / recipe)]) == 0
    assert "FITS" in capsys.readouterr().out


def test_12gb_profile_fits_12gb_and_checkpointing_is_what_makes_it_fit(capsys):
    recipe = REPO / "configs/interview_qwen3_0.6b_lora_sft_12gb.yaml"
    fitted, profile, _ = plan.plan_for(recipe)
    assert profile["memory_gb"] == 12 and fitted.total <= 12e9
    assert fitted.activations_other_setting > 10 * fitted.activations  # without checkpointing: does not fit
    assert fitted.total - fitted.activations + fitted.activations_other_setting > 12e9
    assert plan.main([str(recipe), "--gpu-memory-gb", "8"]) == 2
    assert "DOES NOT FIT" in capsys.readouterr().out


def test_zero3_divides_weights_and_offload_moves_them_to_the_cpu():
    arch = plan.Arch.from_config(json.loads((REPO / "configs/models/Qwen3-8B/config.json").read_text()))
    recipe = yaml.safe_load((REPO / "configs/interview_qwen3_8b_lora_sft_zero3.yaml").read_text())
    single = plan.make_plan(recipe, arch, gpus=1)
    zero2 = plan.make_plan(recipe, arch, gpus=4, zero_stage=2)
    zero3 = plan.make_plan(recipe, arch, gpus=4, zero_stage=3)
    offload = plan.make_plan(recipe, arch, gpus=1, zero_stage=3, offload=True)
    assert zero2.weights == single.weights and zero2.trainable_states < single.trainable_states
    assert zero3.weights == pytest.approx(single.weights / 4)
    assert offload.weights < single.weights / 10 and offload.cpu_offloaded >= single.weights
    assert zero3.tokens_per_step == 4 * single.tokens_per_step


def test_hub_name_without_shipped_config_is_a_clear_error(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("stage: sft\nfinetuning_type: lora\nmodel_name_or_path: Org/Unknown-9B\ncutoff_len: 8\n")
    with pytest.raises(SystemExit, match="no config.json for Org/Unknown-9B"):
        plan.main([str(recipe), "--gpu-memory-gb", "24"])
