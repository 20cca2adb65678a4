"""BLEU-4 and ROUGE-1/2/L for generated text, defined exactly as LLaMA-Factory's own metric
(llamafactory.train.sft.metric.ComputeSimilarity), so numbers here and in its predict runs agree:
ROUGE F over jieba words, character-level BLEU-4 with NLTK smoothing method3, each times 100 and
rounded to 4 places per row, then the mean over rows.

    python -m eval.text_metrics --predictions FILE.jsonl    # lines with "predict" and "label"
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import jieba
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from rouge_chinese import Rouge

from scripts.common import read_jsonl_objects

jieba.setLogLevel(logging.WARNING)
KEYS = ("bleu-4", "rouge-1", "rouge-2", "rouge-l")


def score_pair(predict: str, label: str) -> dict[str, float]:
    hypothesis = list(jieba.cut(predict))
    reference = list(jieba.cut(label))
    if len(" ".join(hypothesis).split()) == 0 or len(" ".join(reference).split()) == 0:
        rouge = {"rouge-1": {"f": 0.0}, "rouge-2": {"f": 0.0}, "rouge-l": {"f": 0.0}}
    else:
        rouge = Rouge().get_scores(" ".join(hypothesis), " ".join(reference))[0]
    scores = {key: round(value["f"] * 100, 4) for key, value in rouge.items()}
    bleu = sentence_bleu([list(label)], list(predict), smoothing_function=SmoothingFunction().method3)
    scores["bleu-4"] = round(bleu * 100, 4)
    return scores


def per_row_values(pairs: list[tuple[str, str]]) -> dict[str, list[float]]:
    """{metric: [its score for each (predict, label) pair]}: what corpus_scores averages and make eval
    bootstraps."""
    rows = [score_pair(predict, label) for predict, label in pairs]
    return {key: [r[key] for r in rows] for key in KEYS}


def corpus_scores(pairs: list[tuple[str, str]]) -> dict[str, float]:
    """Mean of the per-row scores; an empty list scores 0 (and says n=0)."""
    values = per_row_values(pairs)
    out: dict[str, float] = {"n": len(pairs)}
    for key in KEYS:
        out[key] = round(sum(values[key]) / len(pairs), 4) if pairs else 0.0
    return out


def read_predictions(path: Path) -> list[tuple[str, str]]:
    return [(str(r["predict"]), str(r["label"])) for r in read_jsonl_objects(path, ("predict", "label"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="BLEU-4 / ROUGE as LLaMA-Factory computes them")
    parser.add_argument("--predictions", type=Path, required=True)
    args = parser.parse_args(argv)
    print(json.dumps(corpus_scores(read_predictions(args.predictions)), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
