"""The LM head only where a token is trained: the same SFT loss, fewer FLOPs and less memory.

An SFT row trains its assistant reply only (~10-20% of its tokens: the prompt's labels are -100), yet a
causal LM computes logits over the whole vocabulary at every position, and the fp32 log-softmax over them
and its backward are a third of a CPU step (SmolLM2-135M, 4 rows x 345 tokens: 5.6 s a step, 3.6 s with
the head on the trained positions only; the loss is the same to the last digit). On a GPU the same logits
are the largest activation of a small model with a big vocabulary (Qwen3: 151,936 x 4 bytes per token).

`install()` wraps LLaMA-Factory's SFT trainer `compute_loss`: each training batch gets
`logits_to_keep` = the positions whose next token has a label (the union over the rows of the batch,
so the tensor stays rectangular) and `shift_labels` = those next-token labels. transformers' causal LMs
then run the head on those positions only and `ForCausalLMLoss` reads the given labels: the loss, its
normalisation (`num_items_in_batch`) and so the gradients are those of the full computation (a test
checks both on a tiny model).

Left on the original path, unchanged: a model whose forward has no `logits_to_keep` or whose loss is not
transformers' `ForCausalLMLoss`, a trainer with a label smoother or its own loss function (LLaMA-Factory's
DFT / ASFT / EAFT losses read the full logits), evaluation and generation, a batch with no trained token.
`SFT_FULL_LOGITS=1` turns it off.
"""

from __future__ import annotations

import functools
import inspect
import os

import torch

DISABLE_ENV = "SFT_FULL_LOGITS"


def trained_positions(labels: torch.Tensor) -> torch.Tensor:
    """Positions p (1-D, ascending) whose next token p+1 is trained in at least one row of the batch."""
    next_trained = (labels[:, 1:] != -100).any(dim=0)
    return torch.nonzero(next_trained, as_tuple=False).flatten()


def sparse_inputs(inputs: dict) -> dict:
    """The batch with `logits_to_keep` and `shift_labels` added, or unchanged when nothing is trained."""
    labels = inputs.get("labels")
    if labels is None or labels.dim() != 2 or "logits_to_keep" in inputs or "shift_labels" in inputs:
        return inputs
    positions = trained_positions(labels)
    if positions.numel() == 0:
        return inputs
    return {**inputs, "logits_to_keep": positions, "shift_labels": labels[:, positions + 1]}


@functools.cache
def _forward_takes_positions(model_class: type) -> bool:
    try:
        return "logits_to_keep" in inspect.signature(model_class.forward).parameters
    except (TypeError, ValueError, AttributeError):
        return False


def supports_sparse_logits(model: torch.nn.Module) -> bool:
    """True for a (PEFT-wrapped) transformers causal LM that takes `logits_to_keep` and computes its loss
    with `ForCausalLMLoss` (which reads `shift_labels`). Asked every step: the signature is read once a class."""
    from transformers.loss.loss_utils import ForCausalLMLoss

    base = getattr(model, "module", model)  # DDP / accelerate wrappers, outermost
    base = base.get_base_model() if hasattr(base, "get_base_model") else base
    return _forward_takes_positions(type(base)) and getattr(base, "loss_function", None) is ForCausalLMLoss


def wrap_compute_loss(compute_loss):
    """compute_loss(self, model, inputs, ...) with the head on trained positions when it is safe to."""

    def compute_loss_on_trained_positions(self, model, inputs, *args, **kwargs):
        safe = (model.training and getattr(self, "label_smoother", None) is None
                and getattr(self, "compute_loss_func", None) is None and supports_sparse_logits(model))
        return compute_loss(self, model, sparse_inputs(inputs) if safe else inputs, *args, **kwargs)

    compute_loss_on_trained_positions.sparse_logits = True
    return compute_loss_on_trained_positions


def install() -> bool:
    """Wrap LLaMA-Factory's SFT trainer once; False when turned off by SFT_FULL_LOGITS=1."""
    if os.environ.get(DISABLE_ENV, "0").lower() in ("1", "true", "yes"):
        return False
    from llamafactory.train.sft.trainer import CustomSeq2SeqTrainer

    if not getattr(CustomSeq2SeqTrainer.compute_loss, "sparse_logits", False):
        CustomSeq2SeqTrainer.compute_loss = wrap_compute_loss(CustomSeq2SeqTrainer.compute_loss)
    return True
