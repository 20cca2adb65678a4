"""Follow-up decisions: generator, converter, rule baseline, metrics, classifier pieces."""

import copy
import json
import subprocess
import sys
from collections import Counter

import pytest

from eval.decision_metrics import INVALID, decision_scores, extract_label
from eval.decision_rules import decide
from scripts import prepare_followup as prep
from scripts.gen_followup_data import generate
from scripts.prompts import DECISION_LABELS as LABELS
from scripts.speech import answer_length, filler_count
from tests.conftest import REPO

BANK = json.loads((REPO / "data/bank/question_bank.json").read_text(encoding="utf-8"))
GOOD = {"id": "x-1", "question": "你用过Redis吗？", "answer": "不太了解",
        "context": {"follow_up_depth": 1, "hesitation_score": 0.8, "filler_count": 5, "answer_length": 15},
        "label": "NEXT_TOPIC", "reason": "不了解，换话题。"}


def mutate(fn):
    record = copy.deepcopy(GOOD)
    fn(record)
    return record


def test_generator_is_deterministic_sized_and_mixed_about_2_2_1():
    rows = generate(BANK, 900, seed=0)
    assert rows == generate(BANK, 900, seed=0)
    counts = Counter(r["label"] for r in rows)
    assert len(rows) >= 500
    share = {label: counts[label] / len(rows) for label in LABELS}
    assert 0.33 <= share["FOLLOW_UP"] <= 0.47 and 0.33 <= share["NEXT_TOPIC"] <= 0.47 and 0.12 <= share["END"] <= 0.25


def test_generated_features_come_from_the_answer_text_and_validate():
    for row in generate(BANK, 300, seed=1):
        assert row["context"]["filler_count"] == filler_count(row["answer"])
        assert row["context"]["answer_length"] == answer_length(row["answer"])
        assert 0 <= row["context"]["hesitation_score"] <= 1
        assert prep.convert_record(row)[1] is None


def test_labels_are_not_a_function_of_the_features_so_rules_are_imperfect():
    rows = generate(BANK, 900, seed=0)
    by_features = {}
    for r in rows:
        by_features.setdefault(json.dumps(r["context"], sort_keys=True) + str("不" in r["answer"]), set()).add(r["label"])
    accuracy = sum(decide(r["answer"], r["context"]) == r["label"] for r in rows) / len(rows)
    assert 0.6 < accuracy < 0.95  # the guide gets most of it, not all


@pytest.mark.parametrize("answer, context, expected", [
    ("不太了解", {"follow_up_depth": 0, "hesitation_score": 0.2, "answer_length": 4}, "NEXT_TOPIC"),
    ("x" * 40, {"follow_up_depth": 1, "hesitation_score": 0.3, "answer_length": 40}, "FOLLOW_UP"),
    ("x" * 15, {"follow_up_depth": 1, "hesitation_score": 0.3, "answer_length": 15}, "NEXT_TOPIC"),
    ("x" * 40, {"follow_up_depth": 1, "hesitation_score": 0.75, "answer_length": 40}, "NEXT_TOPIC"),
    ("x" * 40, {"follow_up_depth": 3, "hesitation_score": 0.3, "answer_length": 40}, "END"),
    ("x" * 40, {"follow_up_depth": 3, "hesitation_score": 0.6, "answer_length": 40}, "NEXT_TOPIC"),
    ("x" * 25, {"follow_up_depth": 2, "hesitation_score": 0.6, "answer_length": 25}, "FOLLOW_UP"),
])
def test_rule_baseline_follows_the_annotation_guide(answer, context, expected):
    assert decide(answer, context) == expected


@pytest.mark.parametrize("record, field, reason", [
    (mutate(lambda r: r.update(label="ASK_AGAIN")), "label", "is not one of"),
    (mutate(lambda r: r["context"].update(follow_up_depth=4)), "context.follow_up_depth", "greater than the maximum"),
    (mutate(lambda r: r["context"].update(hesitation_score=1.5)), "context.hesitation_score", "greater than the maximum"),
    (mutate(lambda r: r["context"].update(filler_count=-1)), "context.filler_count", "less than the minimum"),
    (mutate(lambda r: r.pop("answer")), "answer", "required"),
    (mutate(lambda r: r["context"].pop("answer_length")), "context.answer_length", "required"),
    (mutate(lambda r: r.update(question="")), "question", "should be non-empty"),
])
def test_bad_rows_are_rejected_with_field_and_reason(record, field, reason):
    row, problem = prep.convert_record(record)
    assert row is None and problem[0] == field and reason in problem[1]


def test_converter_writes_label_first_answers_keeps_raw_fields_and_reports(tmp_path, capsys):
    src = tmp_path / "raw.jsonl"
    src.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in
                             [GOOD, mutate(lambda r: r.update(id="x-2", label="MAYBE")), GOOD]) + "\n", encoding="utf-8")
    assert prep.main(["--input", str(src), "--output-dir", str(tmp_path / "out"), "--val-ratio", "0",
                      "--dataset-info", str(tmp_path / "di.json")]) == 0
    out = capsys.readouterr()
    assert "3 rows read, 2 converted, 1 rejected" in out.out and "row 1 (id x-2): field 'label'" in out.err
    row = json.loads((tmp_path / "out/train.json").read_text(encoding="utf-8"))[0]
    assert row["conversations"][1]["value"] == "NEXT_TOPIC：不了解，换话题。"
    assert "犹豫度：0.80" in row["conversations"][0]["value"] and row["label"] == "NEXT_TOPIC"
    assert row["context"] == GOOD["context"]
    prep.main(["--input", str(src), "--output-dir", str(tmp_path / "bare"), "--val-ratio", "0", "--no-reason",
               "--dataset-info", str(tmp_path / "di.json")])
    assert json.loads((tmp_path / "bare/train.json").read_text(encoding="utf-8"))[0]["conversations"][1]["value"] == "NEXT_TOPIC"


@pytest.mark.parametrize("text, label", [
    ("NEXT_TOPIC：换话题", "NEXT_TOPIC"), ("我觉得应该 follow_up，而不是 END", "FOLLOW_UP"),
    ("END", "END"), ("The answer is next_topic", "NEXT_TOPIC"), ("继续追问", INVALID), ("", INVALID), (None, INVALID),
])
def test_the_first_label_named_in_the_text_is_the_prediction(text, label):
    assert extract_label(text) == label


def test_decision_scores_on_a_known_confusion():
    gold = ["FOLLOW_UP"] * 4 + ["NEXT_TOPIC"] * 4 + ["END"] * 2
    pred = ["FOLLOW_UP", "FOLLOW_UP", "FOLLOW_UP", INVALID, "NEXT_TOPIC", "NEXT_TOPIC", "NEXT_TOPIC", "FOLLOW_UP",
            "END", "NEXT_TOPIC"]
    s = decision_scores(pred, gold)
    assert s["n"] == 10 and s["accuracy"] == 0.7 and s["invalid"] == 1
    assert s["per_class"]["FOLLOW_UP"] == {"precision": 0.75, "recall": 0.75, "f1": 0.75}
    assert s["per_class"]["END"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667}
    assert s["confusion_matrix"]["FOLLOW_UP"][INVALID] == 1 and s["confusion_matrix"]["END"]["NEXT_TOPIC"] == 1
    assert s["macro_f1"] == round((0.75 + 0.75 + 0.6667) / 3, 4)


def test_decision_metrics_cli(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"predict": "END。", "label": "END"}\n{"predict": "嗯", "label": "FOLLOW_UP"}\n', encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "eval.decision_metrics", "--predictions", str(path)], cwd=REPO,
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert set(result) == {"n", "accuracy", "macro_f1", "per_class", "confusion_matrix", "invalid"}
    assert (result["n"], result["accuracy"], result["invalid"]) == (2, 0.5, 1)
    path.write_text('{"predict": "END", "label": "MAYBE"}\n', encoding="utf-8")
    bad = subprocess.run([sys.executable, "-m", "eval.decision_metrics", "--predictions", str(path)], cwd=REPO,
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "MAYBE" in bad.stderr


def test_classifier_feature_tokens_are_whole_symbols(tmp_path):
    from eval.classifier import classifier_text
    from scripts.train_classifier import build_char_tokenizer

    row = {"question": "Redis?", "answer": "嗯，用过", "context": GOOD["context"]}
    tokenizer = build_char_tokenizer([classifier_text(row)], tmp_path)
    tokens = tokenizer.convert_ids_to_tokens(tokenizer(classifier_text(row))["input_ids"])
    assert tokens[:6] == ["[CLS]", "[D1]", "[H8]", "[F5]", "[L0]", "问"]
    assert tokens[-1] == "[SEP]" and "[UNK]" not in tokens


@pytest.mark.parametrize("recipe", sorted((REPO / "configs").glob("followup_classifier_*.yaml")), ids=lambda p: p.name)
def test_classifier_recipes_build_training_arguments(recipe, monkeypatch, tmp_path):

    import transformers.training_args
    import yaml
    from transformers import TrainingArguments

    from scripts.recipes import field_types, split_recipe
    from scripts.train_classifier import ClassifierArguments

    monkeypatch.setattr(transformers.training_args, "is_torch_bf16_gpu_available", lambda *a, **k: True)
    config = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    assert config["stage"] == "classifier" and config.get("trust_remote_code") is False
    _, settings = split_recipe(config, ClassifierArguments, field_types(TrainingArguments), recipe.name)
    args = TrainingArguments(**{**settings, "output_dir": str(tmp_path)})
    assert args.load_best_model_at_end and args.metric_for_best_model == "macro_f1"
    info = json.loads((REPO / "dataset_info.json").read_text(encoding="utf-8"))
    assert config["dataset"] in info and config["eval_dataset"] in info
