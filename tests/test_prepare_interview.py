import copy
import json
import subprocess
import sys
from collections import Counter

import pytest

from scripts import prepare_interview as prep
from scripts.common import split_train_val
from scripts.gen_interview_data import generate
from scripts.prompts import INTERVIEWER_SYSTEM_PROMPT
from tests.conftest import REPO

GOOD = {
    "id": "redis-1",
    "job": "后端开发工程师",
    "messages": [
        {"role": "candidate", "content": "您好，我来面试后端开发。"},
        {"role": "interviewer", "content": "Redis 的持久化机制有哪些？"},
        {"role": "candidate", "content": "不太了解。"},
        {"role": "interviewer", "content": "好，本次面试到此结束。\n综合评分：42/100。\n点评：基础不足。"},
    ],
    "score": 42,
    "review": "基础不足。",
}
TASK = {
    "task": "generate_follow_up",
    "context": {"job_title": "后端工程师", "current_question": "你用过Redis吗？", "current_topic": "缓存技术"},
    "user_answer": "用过，我在项目中用Redis做缓存。",
    "speech_analysis": {"hesitation_score": 0.2, "filler_count": 1},
    "expected_output": "很好！能具体说说你用Redis缓存了哪些数据吗？",
}


def mutate(fn):
    record = copy.deepcopy(GOOD)
    fn(record)
    return record


def test_good_dialogue_converts_to_sharegpt():
    row, problem = prep.convert_record(GOOD)
    assert problem is None
    assert row["system"] == INTERVIEWER_SYSTEM_PROMPT + "\n岗位：后端开发工程师"  # the persona, then the plan
    assert [t["from"] for t in row["conversations"]] == ["human", "gpt", "human", "gpt"]
    assert row["conversations"][-1]["value"].endswith("点评：基础不足。")
    first, closing = prep.window_rows({**row, "split": "train"})
    assert first["id"] == "redis-1#0" and closing["id"] == "redis-1#1" and closing["split"] == "train"
    assert first["system"].endswith("当前轮次：第 1 轮（最多 10 轮）") and "第 2 轮" in closing["system"]
    assert closing["conversations"] == [
        {"from": "human", "value": "面试官：Redis 的持久化机制有哪些？\n候选人：不太了解。"},
        {"from": "gpt", "value": GOOD["messages"][-1]["content"]}]


def test_generation_task_converts_with_rendered_prompt():
    row, problem = prep.convert_record(TASK)
    assert problem is None
    human, gpt = row["conversations"]
    assert "岗位：后端工程师" in human["value"] and "候选人回答：用过" in human["value"]
    assert "犹豫度 0.20" in human["value"] and "填充词 1 个" in human["value"]
    assert gpt == {"from": "gpt", "value": TASK["expected_output"]}


@pytest.mark.parametrize("record, field, reason", [
    (mutate(lambda r: r.pop("score")), "score", "'score' is a required property"),
    (mutate(lambda r: r["messages"][1].update(role="hr")), "messages[1].role", "is not one of"),
    (mutate(lambda r: r["messages"][2].update(content="  ")), "messages[2].content", "does not match"),
    (mutate(lambda r: r.update(score=101)), "score", "greater than the maximum"),
    (mutate(lambda r: r["messages"].pop(0)), "messages[0].role", "candidate speaks first"),
    (mutate(lambda r: r["messages"].pop(2)), "messages[2].role", "in a row"),
    (mutate(lambda r: r["messages"].append({"role": "candidate", "content": "谢谢"})), "messages[4].role",
     "interviewer speaks last"),
    (mutate(lambda r: r["messages"][3].update(content="好，今天就到这里。")), "messages[3].content",
     "does not state the score 42/100"),
    (mutate(lambda r: r["messages"][3].update(content="综合评分：142/100")), "messages[3].content", "42/100"),
    ("just a string", "<record>", "expected a JSON object"),
    ({"question": "q"}, "<record>", "neither a dialogue"),
    ({**TASK, "user_answer": None}, "user_answer", "is not of type 'string'"),
    ({k: v for k, v in TASK.items() if k != "user_answer"}, "user_answer", "'user_answer' is a required property"),
    ({**TASK, "task": "chat"}, "task", "is not one of"),
])
def test_bad_rows_name_field_and_reason(record, field, reason):
    row, problem = prep.convert_record(record)
    assert row is None
    assert problem[0] == field
    assert reason in problem[1]


def test_more_than_ten_interviewer_rounds_is_rejected():
    pair = [{"role": "interviewer", "content": "下一个问题？"}, {"role": "candidate", "content": "好的。"}]
    greeting, closing = GOOD["messages"][0], GOOD["messages"][-1]
    eleven = dict(GOOD, messages=[greeting] + pair * 10 + [closing])
    assert prep.convert_record(eleven)[1] == ("messages", "11 interviewer turns; at most 10")
    ten = dict(GOOD, messages=[greeting] + pair * 9 + [closing])
    assert prep.convert_record(ten)[1] is None


def test_files_report_every_rejection_and_keep_the_rest(tmp_path):
    path = tmp_path / "raw.jsonl"
    dup = copy.deepcopy(GOOD)
    bad = mutate(lambda r: r.pop("review"))
    path.write_text("\n".join([json.dumps(GOOD, ensure_ascii=False), "", json.dumps(dup),
                               json.dumps(bad), json.dumps(TASK, ensure_ascii=False)]) + "\n", encoding="utf-8")
    rows, rejections, read = prep.convert_files([path])
    assert read == 4 and len(rows) == 2  # the blank line is no record; rows keep their line index
    assert [(r.row, r.field) for r in rejections] == [(2, "id"), (3, "review")]
    assert "duplicate id 'redis-1'" in rejections[0].reason and str(path) in str(rejections[0])


def test_cli_is_deterministic_and_registers_datasets(tmp_path):
    raw = tmp_path / "raw.jsonl"
    records = [dict(copy.deepcopy(GOOD), id=f"r{i}") for i in range(20)]
    raw.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    info = tmp_path / "dataset_info.json"
    info.write_text(json.dumps({"other": {"file_name": "x.json"}}), encoding="utf-8")
    outputs = []
    for run in range(2):
        out = tmp_path / f"out{run}"
        assert prep.main(["--input", str(raw), "--output-dir", str(out), "--dataset-info", str(info)]) == 0
        outputs.append(tuple((out / f"{stem}{split}.json").read_bytes()
                             for stem in ("", "window_") for split in ("train", "val")))
    assert outputs[0] == outputs[1]
    train, val, window_train, window_val = (json.loads(b) for b in outputs[0])
    assert len(train) == 18 and len(val) == 2 and len(window_train) == 36 and len(window_val) == 4
    assert not {r["id"] for r in train} & {r["id"] for r in val}
    # a dialogue's window rows follow it into its split
    assert {r["id"].split("#")[0] for r in window_val} == {r["id"] for r in val}
    registered = json.loads(info.read_text(encoding="utf-8"))
    assert set(registered) == {"other", "interview_train", "interview_val", "interview_window_train",
                               "interview_window_val", "interview_window_decisions_train",
                               "interview_window_decisions_val"}
    assert registered["interview_val"]["columns"] == {"messages": "conversations", "system": "system"}


def test_missing_input_file_exits_nonzero_naming_it(tmp_path):
    missing = tmp_path / "nope.jsonl"
    result = subprocess.run([sys.executable, "-m", "scripts.prepare_interview", "--input", str(missing),
                             "--output-dir", str(tmp_path / "o")], cwd=REPO, capture_output=True, text=True)
    assert result.returncode != 0
    assert str(missing) in result.stderr


def test_split_is_seeded_and_complete():
    rows = list(range(100))
    train, val = split_train_val(rows, 0.1, 42)
    assert sorted(train + val) == rows and len(val) == 10
    assert split_train_val(rows, 0.1, 42) == (train, val)
    assert split_train_val(rows, 0.1, 7)[1] != val


def test_generator_meets_the_data_contract():
    bank = json.loads((REPO / "data/bank/question_bank.json").read_text(encoding="utf-8"))
    dialogues = generate(bank, per_area=70, seed=0)
    assert len(dialogues) >= 500 and len({d["area"] for d in dialogues}) >= 8
    qualities = Counter(m.get("quality") for d in dialogues for m in d["messages"])
    assert all(qualities[q] > 100 for q in ("detailed", "partial", "hesitant", "unknown"))
    for d in dialogues:
        assert prep.convert_record(d)[1] is None, d["id"]
    # follow-ups quote the candidate; topic changes follow "不了解"
    interviewer_after = Counter()
    for d in dialogues:
        for prev, cur in zip(d["messages"], d["messages"][1:]):
            if cur["role"] == "interviewer" and prev.get("quality"):
                interviewer_after[(prev["quality"], "换" in cur["content"] or "跳过" in cur["content"]
                                   or "结束" in cur["content"] or "到这里" in cur["content"])] += 1
    assert interviewer_after[("unknown", False)] == 0
    assert generate(bank, per_area=3, seed=0) == generate(bank, per_area=3, seed=0)
    assert generate(bank, per_area=3, seed=0) != generate(bank, per_area=3, seed=1)


def test_shipped_raw_data_is_what_the_generator_writes(tmp_path):
    out = tmp_path / "dialogues.jsonl"
    subprocess.run([sys.executable, "-m", "scripts.gen_interview_data", "--output", str(out)], cwd=REPO, check=True,
                   capture_output=True)
    assert out.read_bytes() == (REPO / "data/raw/interview_dialogues.jsonl").read_bytes()


@pytest.mark.parametrize("stem", ["", "window_"])
def test_the_shipped_split_measures_generalisation(stem):
    """In both formats, val shares no bank question with train, and at most 10% of its interviewer turns
    appear verbatim in train (a random split of the same data: 86%); at least 500 dialogues in all."""
    train = json.loads((REPO / f"data/interview/{stem}train.json").read_text(encoding="utf-8"))
    val = json.loads((REPO / f"data/interview/{stem}val.json").read_text(encoding="utf-8"))
    dialogues = {row["id"].split("#")[0] for row in train + val}
    assert len(dialogues) >= 500 and len(val) >= 20
    assert not {r["id"].split("#")[0] for r in train} & {r["id"].split("#")[0] for r in val}

    def turns(rows):
        return [c["value"] for r in rows for c in r["conversations"] if c["from"] == "gpt"]

    train_turns = set(turns(train))
    val_turns = turns(val)
    assert sum(t in train_turns for t in val_turns) <= 0.10 * len(val_turns)
    bank = json.loads((REPO / "data/bank/question_bank.json").read_text(encoding="utf-8"))
    questions = [level["q"] for area in bank["areas"] for topic in area["topics"] for level in topic["chain"]]
    train_text, val_text = "\n".join(train_turns), "\n".join(val_turns)
    assert not [q for q in questions if q in val_text and q in train_text]
    assert all("split" not in row for row in train + val)


def test_window_rows_carry_plan_round_and_last_turns_and_every_closing():
    """One window row per interviewer turn; the last of each dialogue is its closing, written at the round
    the system prompt states."""
    raw = [json.loads(line) for line in (REPO / "data/raw/interview_dialogues.jsonl").read_text("utf-8").splitlines()]
    window = json.loads((REPO / "data/interview/window_train.json").read_text(encoding="utf-8"))
    by_id = {row["id"]: row for row in window}
    train = [d for d in raw if d["split"] == "train"]
    assert len(window) == sum(m["role"] == "interviewer" for d in train for m in d["messages"])
    for dialogue in train[:50]:
        rounds = sum(m["role"] == "interviewer" for m in dialogue["messages"])
        last = by_id[f"{dialogue['id']}#{rounds - 1}"]
        assert last["conversations"][-1]["value"] == dialogue["messages"][-1]["content"]
        assert "综合评分" in last["conversations"][-1]["value"] and f"第 {rounds} 轮" in last["system"]
        assert all(topic in last["system"] for topic in dialogue["topics"])
        assert last["conversations"][0]["value"].endswith(dialogue["messages"][-2]["content"])
        assert len(last["conversations"]) == 2  # one prompt, one target: every row trains one turn


def test_rows_with_a_split_go_where_it_says_and_the_rest_are_split_seeded(tmp_path):
    records = [dict(copy.deepcopy(GOOD), id=f"r{i}", **({"split": "val"} if i < 3 else {})) for i in range(20)]
    raw = tmp_path / "raw.jsonl"
    raw.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    prep.main(["--input", str(raw), "--output-dir", str(tmp_path / "out"), "--dataset-info", str(tmp_path / "i.json"),
               "--val-ratio", "0.1"])
    val = json.loads((tmp_path / "out/val.json").read_text(encoding="utf-8"))
    train = json.loads((tmp_path / "out/train.json").read_text(encoding="utf-8"))
    assert [r["id"] for r in val[:3]] == ["r0", "r1", "r2"] and len(val) == 3 + 2  # 10% of the 17 others
    assert len(train) == 15 and not {r["id"] for r in train} & {r["id"] for r in val}


def test_decision_rows_are_the_window_rows_that_close_or_change_topic():
    """window_decisions_train: the openings, closings and changes of topic of the window rows, nothing else."""
    window = json.loads((REPO / "data/interview/window_train.json").read_text(encoding="utf-8"))
    decisions = json.loads((REPO / "data/interview/window_decisions_train.json").read_text(encoding="utf-8"))
    by_id = {row["id"]: row for row in window}
    assert decisions and all(by_id[row["id"]] == row for row in decisions)  # the same rows, a subset
    dialogues = {row["id"].split("#")[0] for row in window}
    closings = [row for row in window if "综合评分" in row["conversations"][-1]["value"]]
    assert len(closings) == len(dialogues) and all(row["id"] in {d["id"] for d in decisions} for row in closings)
    chosen = {row["id"] for row in decisions}
    for row in window[:300]:
        target = row["conversations"][-1]["value"]
        progress = next(line for line in row["system"].splitlines() if line.startswith("话题进度："))
        not_yet = [part.split("（")[0] for part in progress.removeprefix("话题进度：").split("、") if "（未开始）" in part]
        opens_a_topic = "（进行中" in progress and any(topic in target for topic in not_yet)
        opening = row["id"].endswith("#0")
        assert (row["id"] in chosen) == ("综合评分" in target or opens_a_topic or opening), row["id"]
    assert 0.3 < len(decisions) / len(window) < 0.5
