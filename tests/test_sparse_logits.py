"""The LM head on trained positions only (scripts/sparse_logits.py): same loss, same gradients, safe fallbacks."""

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
import yaml

from scripts import sparse_logits
from scripts.sparse_logits import sparse_inputs, supports_sparse_logits, trained_positions, wrap_compute_loss
from tests.conftest import REPO

IGNORE = -100


def test_trained_positions_are_those_whose_next_token_has_a_label_in_any_row():
    labels = torch.tensor([[IGNORE, IGNORE, IGNORE, 7, 8, IGNORE],
                           [IGNORE, 5, IGNORE, IGNORE, IGNORE, IGNORE]])
    # position p predicts token p+1: row 0 trains tokens 3, 4 (positions 2, 3), row 1 token 1 (position 0)
    assert trained_positions(labels).tolist() == [0, 2, 3]
    inputs = sparse_inputs({"input_ids": torch.zeros_like(labels), "labels": labels})
    assert inputs["logits_to_keep"].tolist() == [0, 2, 3]
    assert inputs["shift_labels"].tolist() == [[IGNORE, 7, 8], [5, IGNORE, IGNORE]]


def test_a_batch_with_nothing_to_train_or_already_sparse_is_left_as_it_is():
    nothing = {"labels": torch.full((2, 4), IGNORE)}
    assert sparse_inputs(nothing) is nothing
    assert sparse_inputs({"input_ids": torch.zeros(2, 4)}).keys() == {"input_ids"}
    chosen = {"labels": torch.ones(1, 4, dtype=torch.long), "logits_to_keep": 1}
    assert sparse_inputs(chosen) is chosen
    # the first token is never predicted: a label there alone trains nothing
    first_only = {"labels": torch.tensor([[3, IGNORE, IGNORE]])}
    assert sparse_inputs(first_only) is first_only


def tiny_causal_lm(tiny_qwen3):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen3, dtype=torch.float32)
    return get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
                                            init_lora_weights=False))  # non-zero B: every LoRA weight gets a gradient


def loss_and_grads(model, inputs):
    model.zero_grad()
    loss = model(**inputs).loss
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def test_sparse_head_gives_the_full_loss_and_gradients(tiny_qwen3):
    model = tiny_causal_lm(tiny_qwen3)
    model.train()
    assert supports_sparse_logits(model)
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(10, 700, (3, 24), generator=generator)
    labels = torch.full_like(input_ids, IGNORE)
    labels[0, 15:24], labels[1, 5:9], labels[2, 20:22] = input_ids[0, 15:24], input_ids[1, 5:9], input_ids[2, 20:22]
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 9:] = 0  # a padded row
    batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
    # the trainer's token count across the accumulated batches, as transformers passes it
    for extra in ({}, {"num_items_in_batch": torch.tensor(40)}):
        full_loss, full_grads = loss_and_grads(model, {**batch, **extra})
        sparse = sparse_inputs({**batch, **extra})
        assert sparse["logits_to_keep"].numel() < input_ids.shape[1]  # the head really runs on fewer positions
        sparse_loss, sparse_grads = loss_and_grads(model, sparse)
        assert sparse_loss == pytest.approx(full_loss, rel=1e-6)
        assert full_grads.keys() == sparse_grads.keys() and len(full_grads) > 0
        for name, grad in full_grads.items():
            torch.testing.assert_close(sparse_grads[name], grad, rtol=1e-5, atol=1e-7, msg=name)


def test_the_wrapper_falls_back_where_the_full_logits_are_read(tiny_qwen3):
    seen = []

    def compute_loss(trainer, model, inputs, *args, **kwargs):
        seen.append(set(inputs))
        return 0.0

    wrapped = wrap_compute_loss(compute_loss)
    model = tiny_causal_lm(tiny_qwen3)
    inputs = {"input_ids": torch.ones(1, 4, dtype=torch.long), "labels": torch.tensor([[IGNORE, 1, 1, 1]])}
    plain = SimpleNamespace(label_smoother=None, compute_loss_func=None)
    model.train()
    wrapped(plain, model, inputs)
    wrapped(SimpleNamespace(label_smoother=object(), compute_loss_func=None), model, inputs)
    wrapped(SimpleNamespace(label_smoother=None, compute_loss_func=lambda *a: 0.0), model, inputs)
    model.eval()
    wrapped(plain, model, inputs)  # evaluation: the full path
    model.train()
    wrapped(plain, torch.nn.Linear(2, 2), inputs)  # not a transformers causal LM
    sparse = {"input_ids", "labels", "logits_to_keep", "shift_labels"}
    assert seen == [sparse, {"input_ids", "labels"}, {"input_ids", "labels"}, {"input_ids", "labels"},
                    {"input_ids", "labels"}]


def test_install_wraps_once_and_can_be_turned_off(monkeypatch):
    from llamafactory.train.sft.trainer import CustomSeq2SeqTrainer

    original = CustomSeq2SeqTrainer.compute_loss
    try:
        monkeypatch.setenv(sparse_logits.DISABLE_ENV, "1")
        assert sparse_logits.install() is False and CustomSeq2SeqTrainer.compute_loss is original
        monkeypatch.delenv(sparse_logits.DISABLE_ENV)
        assert sparse_logits.install() is True
        wrapped = CustomSeq2SeqTrainer.compute_loss
        assert wrapped is not original and sparse_logits.install() is True
        assert CustomSeq2SeqTrainer.compute_loss is wrapped  # not wrapped twice
    finally:
        CustomSeq2SeqTrainer.compute_loss = original


@pytest.mark.slow
def test_make_sft_trains_the_same_losses_with_and_without_the_full_head(tiny_qwen3, tmp_path):
    config = yaml.safe_load((REPO / "configs/interview_smollm2_lora_sft_cpu.yaml").read_text(encoding="utf-8"))
    config.update(model_name_or_path=str(tiny_qwen3), template="qwen3_nothink", max_steps=3, logging_steps=1,
                  save_steps=10, cutoff_len=256, per_device_train_batch_size=2, bf16=False, plot_loss=False)
    losses = {}
    for run, env_value in (("sparse", "0"), ("full", "1")):
        config["output_dir"] = str(tmp_path / run)
        path = tmp_path / f"{run}.yaml"
        path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO), **{sparse_logits.DISABLE_ENV: env_value})
        result = subprocess.run([sys.executable, "-m", "scripts.sft", str(path)], cwd=REPO, env=env,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
        assert ("LM head on the trained positions only" in result.stdout) is (run == "sparse")
        log = [json.loads(line) for line in (tmp_path / run / "trainer_log.jsonl").read_text().splitlines()]
        losses[run] = [row["loss"] for row in log if "loss" in row]
    assert len(losses["sparse"]) == 3
    assert losses["sparse"] == pytest.approx(losses["full"], rel=1e-4)


def test_make_sft_leaves_torchrun_and_the_v1_trainer_to_llamafactory_cli(monkeypatch):
    from scripts.sft import needs_its_own_process

    for name in ("FORCE_TORCHRUN", "USE_V1", "USE_MCA"):
        monkeypatch.delenv(name, raising=False)
    assert needs_its_own_process() is False  # this machine: no accelerator, one process
    for name in ("FORCE_TORCHRUN", "USE_V1"):
        monkeypatch.setenv(name, "1")
        assert needs_its_own_process() is True
        monkeypatch.delenv(name)
