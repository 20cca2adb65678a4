"""make merge / make gguf: the merged folder computes what base + adapter computes; the GGUF answers alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from scripts import export_gguf, merge
from scripts.prompts import INTERVIEWER_SYSTEM_PROMPT


def random_adapter(model_path: Path, folder: Path, dtype=torch.float32) -> Path:
    """A LoRA adapter with random B (peft initialises B to zero, which would make any merge look right)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
    config = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(folder)
    return folder


def write_recipe(tmp_path: Path, model: Path, adapter: Path, template: str) -> Path:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"stage: sft\nmodel_name_or_path: {model}\ntemplate: {template}\n"
                      f"finetuning_type: lora\noutput_dir: {adapter}\n", encoding="utf-8")
    return recipe


@torch.no_grad()
def logits(model_path: Path, adapter: Path | None, dtype) -> torch.Tensor:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter))
    ids = torch.tensor([[5, 17, 42, 99, 123, 7, 300, 2]])
    return model.eval()(ids).logits.float()


def test_merged_logits_equal_base_plus_adapter(tiny_qwen3, tmp_path):
    adapter = random_adapter(tiny_qwen3, tmp_path / "run/sft")
    recipe = write_recipe(tmp_path, tiny_qwen3, adapter, "qwen3_nothink")
    assert merge.main([str(recipe)]) == 0
    merged = tmp_path / "run/merged"
    assert not (tmp_path / "run/merged.partial").exists() and (merged / "model.safetensors").is_file()
    assert not (merged / "adapter_config.json").exists()

    with_adapter = logits(tiny_qwen3, adapter, torch.float32)
    assert (logits(tiny_qwen3, None, torch.float32) - with_adapter).abs().max() > 1e-2  # the adapter matters
    assert torch.allclose(logits(merged, None, torch.float32), with_adapter, atol=1e-4)
    report = json.loads((merged / "merge_report.json").read_text(encoding="utf-8"))
    check = report["check"]
    assert check["passed"] and check["same_argmax_fraction"] == 1.0 and check["max_abs_diff_merged_vs_adapter"] < 1e-4
    assert merge.base_dtype(str(merged)) == "float32"  # not turned into bf16
    # the merged folder carries the recipe's chat template, for transformers and for GGUF conversion
    assert "<|im_start|>" in (merged / "chat_template.jinja").read_text(encoding="utf-8")


def test_bf16_base_merges_to_bf16(tiny_qwen3, tmp_path):
    from transformers import AutoModelForCausalLM

    base = tmp_path / "bf16"
    AutoModelForCausalLM.from_pretrained(tiny_qwen3, dtype=torch.bfloat16).save_pretrained(base)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (base / name).write_bytes((tiny_qwen3 / name).read_bytes())
    adapter = random_adapter(base, tmp_path / "run/sft", torch.bfloat16)
    assert merge.main([str(write_recipe(tmp_path, base, adapter, "qwen3_nothink"))]) == 0
    merged = tmp_path / "run/merged"
    assert merge.base_dtype(str(merged)) == "bfloat16"
    from safetensors import safe_open

    with safe_open(merged / "model.safetensors", "pt") as weights:
        assert {weights.get_tensor(k).dtype for k in weights.keys()} == {torch.bfloat16}
    gap = (logits(merged, None, torch.bfloat16) - logits(base, adapter, torch.bfloat16)).abs().max()
    assert gap < 0.05  # bf16 rounding of W + BA only


def test_missing_adapter_is_a_clear_error(tiny_qwen3, tmp_path):
    recipe = write_recipe(tmp_path, tiny_qwen3, tmp_path / "nothing", "qwen3_nothink")
    with pytest.raises(SystemExit, match="no LoRA adapter in"):
        merge.main([str(recipe)])


def test_modelfile_has_chatml_prompt_and_seed_parameters():
    text = export_gguf.modelfile("model-Q4_K_M.gguf")
    assert text.startswith("FROM ./model-Q4_K_M.gguf\n")
    assert f'SYSTEM """{INTERVIEWER_SYSTEM_PROMPT}"""' in text
    for line in ('PARAMETER stop "<|im_start|>"', 'PARAMETER stop "<|im_end|>"', "PARAMETER temperature 0.7",
                 "PARAMETER top_p 0.9"):
        assert line in text.splitlines()
    assert "<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>" in text and text.count('"""') == 4


@pytest.mark.slow
def test_smollm2_merge_gguf_q4_answers_like_transformers(smollm2, tmp_path):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is built by `make llama-cpp`")
    if not export_gguf.CONVERTER.is_file():
        pytest.skip("tools/llama.cpp is unpacked by `make llama-cpp`")
    adapter = random_adapter(smollm2, tmp_path / "run/sft")
    recipe = write_recipe(tmp_path, smollm2, adapter, "smollm2")
    assert merge.main([str(recipe)]) == 0
    assert export_gguf.main([str(recipe)]) == 0
    out = tmp_path / "run/gguf"
    report = json.loads((out / "gguf_report.json").read_text(encoding="utf-8"))
    full, quantized = report["files"]
    assert full["file"] == "model-f16.gguf" and quantized["file"] == "model-Q4_K_M.gguf"
    assert full["tokenizer_matches_transformers"] and quantized["tokenizer_matches_transformers"]
    assert full["greedy_tokens_equal_to_transformers"] >= 8  # f16 vs float32: same greedy path, at least at first
    assert quantized["size_mb"] < full["size_mb"] / 2
    assert full["chat_answer"].strip() and quantized["chat_answer"].strip()
    assert (out / "Modelfile").read_text(encoding="utf-8").startswith("FROM ./model-Q4_K_M.gguf\n")
