"""Full fine-tune of a BERT-style sequence classifier for follow-up decisions (make classifier).

    python -m scripts.train_classifier configs/followup_classifier_cpu.yaml [key=value ...]

The input is the question and the answer, led by one token per feature - [D<depth>], [H<hesitation
tenth>], [F<fillers, max 5>], [L<length bucket>] - added to the tokenizer's vocabulary, so the encoder
reads the features as whole symbols rather than as digit characters; the target is the label. transformers' Trainer trains
every weight. The best checkpoint is chosen by macro-F1 on a dev split carved (seeded) out of
followup_train, so the val split that `make eval` reports stays unseen by model selection too; the
best model is saved to output_dir with its tokenizer and a classifier_report.json.

model_name_or_path: a local folder or hub id of a BERT-style encoder (bert-base-chinese in the GPU
recipe), or `local:tiny-bert` - built here, offline: a character vocabulary from the training split
and a small randomly initialised BERT (sizes under `tiny_bert:`), since no pretrained Chinese encoder
can be had without the hub. Deterministic for a seed on CPU.
"""

from __future__ import annotations

import json
import random
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from eval.classifier import FEATURE_TOKENS, classifier_text, predict_labels
from eval.decision_metrics import decision_scores
from scripts.common import read_rows, registered_dataset, write_json
from scripts.prompts import DECISION_LABELS as LABELS
from scripts.recipes import apply_overrides, field_types, read_recipe, split_recipe
from scripts.runs import announce_plan

LOCAL_TINY_BERT = "local:tiny-bert"
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@dataclass
class ClassifierArguments:
    """The launcher's own recipe keys; every other key is a transformers TrainingArguments field."""
    stage: str
    model_name_or_path: str
    dataset: str
    eval_dataset: str
    dataset_dir: str = "."
    tiny_bert: dict = field(default_factory=dict)
    max_length: int = 256
    dev_ratio: float = 0.1
    trust_remote_code: bool = False


def load_split(dataset_dir: str, name: str) -> list[dict]:
    path, _ = registered_dataset(dataset_dir, name)
    rows = read_rows(path)
    if not rows or not all({"question", "answer", "context", "label"} <= set(r) for r in rows):
        sys.exit(f"error: {path} has no follow-up decision rows (question/answer/context/label)")
    return rows




def build_char_tokenizer(texts: list[str], folder: Path):
    """A character-level BERT tokenizer (WordLevel over single characters) from the training texts."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    # the vocabulary sees text as the tokenizer will: NFKC (full-width punctuation -> ASCII), lower case
    chars = sorted({ch for text in texts for ch in unicodedata.normalize("NFKC", text).lower() if not ch.isspace()})
    vocab = {token: i for i, token in enumerate(SPECIAL + FEATURE_TOKENS + chars)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                 pre_tokenizers.Split("", behavior="isolated")])
    tok.add_special_tokens(FEATURE_TOKENS)  # matched whole, before the per-character split
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
                                                       special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                        sep_token="[SEP]", mask_token="[MASK]",
                                        model_input_names=["input_ids", "token_type_ids", "attention_mask"])
    tokenizer.save_pretrained(folder)
    return tokenizer


def build_model(launcher: ClassifierArguments, train_texts: list[str], work: Path, seed: int):
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        BertConfig,
        BertForSequenceClassification,
    )

    labels = {"id2label": dict(enumerate(LABELS)), "label2id": {label: i for i, label in enumerate(LABELS)}}
    name = launcher.model_name_or_path
    if name == LOCAL_TINY_BERT:
        tokenizer = build_char_tokenizer(train_texts, work / "tokenizer")
        sizes = {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 256,
                 **launcher.tiny_bert}
        torch.manual_seed(seed)
        config = BertConfig(vocab_size=len(tokenizer), max_position_embeddings=max(512, launcher.max_length),
                            pad_token_id=tokenizer.pad_token_id, num_labels=len(LABELS), **sizes, **labels)
        return tokenizer, BertForSequenceClassification(config)
    trust = launcher.trust_remote_code
    tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=trust)
    model = AutoModelForSequenceClassification.from_pretrained(name, num_labels=len(LABELS), trust_remote_code=trust,
                                                               **labels)
    if tokenizer.add_tokens(FEATURE_TOKENS, special_tokens=True):
        model.resize_token_embeddings(len(tokenizer))
    return tokenizer, model


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        sys.exit("usage: python -m scripts.train_classifier RECIPE.yaml [key=value ...]")
    recipe = apply_overrides(read_recipe(Path(argv[0])), argv[1:])
    if recipe.get("stage") != "classifier":
        sys.exit(f"error: {argv[0]} is not a classifier recipe (stage: classifier)")

    import numpy as np
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    launcher, settings = split_recipe(recipe, ClassifierArguments, field_types(TrainingArguments), argv[0])
    args = TrainingArguments(**settings)
    plan = announce_plan(Path(args.output_dir), args.overwrite_output_dir, "make classifier", "classifier")
    if plan is None:
        return 0
    rows = load_split(launcher.dataset_dir, launcher.dataset)
    order = list(range(len(rows)))
    random.Random(args.seed).shuffle(order)
    n_dev = max(1, round(len(rows) * launcher.dev_ratio))
    dev = [rows[i] for i in sorted(order[:n_dev])]
    train = [rows[i] for i in sorted(order[n_dev:])]
    val = load_split(launcher.dataset_dir, launcher.eval_dataset)

    out = Path(args.output_dir)
    tokenizer, model = build_model(launcher, [classifier_text(r) for r in train], out, args.seed)
    label_id = {label: i for i, label in enumerate(LABELS)}

    def encode(split: list[dict]) -> Dataset:
        enc = tokenizer([classifier_text(r) for r in split], truncation=True, max_length=launcher.max_length)
        return Dataset.from_dict({**enc, "labels": [label_id[r["label"]] for r in split]})

    def compute_metrics(prediction) -> dict:
        predicted = [LABELS[i] for i in np.argmax(prediction.predictions, axis=-1)]
        gold = [LABELS[i] for i in prediction.label_ids]
        scores = decision_scores(predicted, gold)
        return {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}

    from transformers import DataCollatorWithPadding

    trainer = Trainer(model=model, args=args, train_dataset=encode(train), eval_dataset=encode(dev),
                      data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=compute_metrics)
    result = trainer.train(resume_from_checkpoint=str(plan.resume_from) if plan.resume_from else None)
    trainer.save_model(str(out))  # load_best_model_at_end: this is the best checkpoint by dev macro-F1
    tokenizer.save_pretrained(str(out))
    best_dev = trainer.evaluate()
    predicted = predict_labels(out, [classifier_text(r) for r in val])
    val_scores = decision_scores(predicted, [r["label"] for r in val])
    write_json(out / "classifier_report.json", {"rows": {"train": len(train), "dev": len(dev), "val": len(val)},
                                                "best_checkpoint": trainer.state.best_model_checkpoint,
                                                "dev": {k: v for k, v in best_dev.items() if k.startswith("eval_")},
                                                "val": val_scores})
    trainer.save_metrics("train", result.metrics)  # train_results.json, written last: the run is finished
    print(json.dumps({"output_dir": str(out), "dev_macro_f1": best_dev.get("eval_macro_f1"),
                      "val_accuracy": val_scores["accuracy"], "val_macro_f1": val_scores["macro_f1"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
