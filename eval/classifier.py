"""The follow-up decision encoder classifier at inference: where it lives, its input text, loading and
labelling. `make classifier` (scripts/train_classifier.py) trains it; make eval and make chat use it."""
from __future__ import annotations

from pathlib import Path

DEFAULT_CLASSIFIER = Path("runs/followup_classifier_cpu")   # configs/followup_classifier_cpu.yaml's output_dir
LENGTH_BUCKETS = (20, 31, 61)  # the annotation guide's thresholds: < 20, 20-30, 31-60, > 60 characters
# One token per feature, added to the vocabulary, so the encoder reads features as whole symbols.
FEATURE_TOKENS = ([f"[D{i}]" for i in range(4)] + [f"[H{i}]" for i in range(10)] + [f"[F{i}]" for i in range(6)]
                  + [f"[L{i}]" for i in range(len(LENGTH_BUCKETS) + 1)])


def feature_tokens(context: dict) -> str:
    hesitation = min(int(float(context["hesitation_score"]) * 10), 9)
    length = sum(context["answer_length"] >= edge for edge in LENGTH_BUCKETS)
    return (f"[D{min(int(context['follow_up_depth']), 3)}][H{hesitation}]"
            f"[F{min(int(context['filler_count']), 5)}][L{length}]")


def classifier_text(row: dict) -> str:
    return f"{feature_tokens(row['context'])}问题：{row['question']}回答：{row['answer']}"


def find_classifier(model_dir: Path | None) -> Path | None:
    """model_dir when a trained classifier is there, else None."""
    return Path(model_dir) if model_dir and (Path(model_dir) / "config.json").is_file() else None


def load_classifier(model_dir: Path) -> tuple:
    """(tokenizer, model in eval mode) of a saved classifier."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if find_classifier(model_dir) is None:
        raise SystemExit(f"error: no classifier in {model_dir} (train it first: make classifier)")
    return (AutoTokenizer.from_pretrained(model_dir),
            AutoModelForSequenceClassification.from_pretrained(model_dir).eval())


def classify(classifier: tuple, texts: list[str], batch_size: int = 64) -> list[str]:
    """Labels for classifier_text() inputs from a load_classifier() result (make chat keeps one loaded)."""
    import torch

    tokenizer, model = classifier
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(texts[start:start + batch_size], truncation=True, max_length=512, padding=True,
                            return_tensors="pt")
            out += [model.config.id2label[int(i)] for i in model(**enc).logits.argmax(-1)]
    return out


def predict_labels(model_dir: Path, texts: list[str], batch_size: int = 64) -> list[str]:
    """Labels from a saved classifier (what make eval calls)."""
    return classify(load_classifier(model_dir), texts, batch_size)
