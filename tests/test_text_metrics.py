import json
import subprocess
import sys

import numpy as np
import pytest

from eval.text_metrics import corpus_scores, score_pair
from tests.conftest import REPO

PAIRS = [
    ("你好，我们先聊聊 Redis 持久化。", "你好，我们先从 Redis 持久化开始。"),
    ("不错。你提到了AOF，我继续追问：AOF 的刷盘策略有哪几种？", "很好，既然说到AOF，那么AOF 的刷盘策略有哪几种？"),
    ("", "好的，今天的面试就到这里。"),
    ("Completely unrelated English text.", "综合评分：72/100。"),
    ("综合评分：72/100。", "综合评分：72/100。"),
]


def test_identical_text_scores_100_and_empty_scores_0():
    assert score_pair("综合评分：72/100。", "综合评分：72/100。") == {
        "rouge-1": 100.0, "rouge-2": 100.0, "rouge-l": 100.0, "bleu-4": 100.0}
    assert score_pair("", "好的") == {"rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0, "bleu-4": 0.0}


def test_matches_llamafactory_compute_similarity():
    """Same numbers as LLaMA-Factory's own predict metric, fed through its real class."""
    from llamafactory.train.sft.metric import ComputeSimilarity

    class FakeTokenizer:  # ComputeSimilarity decodes token ids; hand it the texts through ids
        def __init__(self, texts):
            self.texts = texts
            self.pad_token_id = 0

        def batch_decode(self, ids, skip_special_tokens=True):
            return [self.texts[int(row[0])] for row in ids]

    preds, labels = [p for p, _ in PAIRS], [label for _, label in PAIRS]
    texts = preds + labels
    pred_ids = np.array([[i] for i in range(len(preds))])
    label_ids = np.array([[len(preds) + i] for i in range(len(labels))])

    class Pred:
        pass

    prediction = Pred()
    prediction.predictions, prediction.label_ids = pred_ids, label_ids
    theirs = ComputeSimilarity(tokenizer=FakeTokenizer(texts))(prediction, compute_result=True)
    ours = corpus_scores(PAIRS)
    for key in ("bleu-4", "rouge-1", "rouge-2", "rouge-l"):
        assert ours[key] == pytest.approx(theirs[key], abs=1e-3), key


def test_cli_prints_the_four_keys(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps({"predict": p, "label": label}, ensure_ascii=False) + "\n" for p, label in PAIRS),
                    encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "eval.text_metrics", "--predictions", str(path)], cwd=REPO,
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert set(result) == {"n", "bleu-4", "rouge-1", "rouge-2", "rouge-l"} and result["n"] == len(PAIRS)
    assert 0 < result["rouge-1"] < 100


def test_cli_names_the_bad_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"predict": "a", "label": "b"}\n{"predict": "a"}\n', encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "eval.text_metrics", "--predictions", str(path)], cwd=REPO,
                         capture_output=True, text=True)
    assert out.returncode != 0 and "line 2" in out.stderr
