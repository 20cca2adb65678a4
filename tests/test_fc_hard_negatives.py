import json
import random

import pytest

from eval.toolcall import parse_tool_calls
from scripts import fc_hard_negatives as hard
from scripts import prepare_xlam as prep
from scripts.gen_xlam_sample import STAND_INS, generate
from tests.conftest import REPO


def converted(rows: int, seed: int) -> list[dict]:
    return [prep.convert_row(record)[0] for record in generate(rows, seed)]


@pytest.fixture(scope="module")
def split():
    rows = converted(400, 3)
    random.Random(0).shuffle(rows)
    return rows[:340], rows[340:]


def test_each_row_re_asks_a_training_call_query_with_near_tools_that_cannot_serve_it(split):
    train, val = split
    made, candidates = hard.hard_negatives(train, val, rows=60, seed=1)
    assert len(made) == 60 < candidates
    by_id = {f"hard-{row['id']}": row for row in train}
    pool = hard.tool_pool(train)
    val_queries = {row["conversations"][0]["value"] for row in val}
    for row in made:
        source = by_id[row["id"]]
        query, reply = row["conversations"]
        assert query == source["conversations"][0] and query["value"] not in val_queries
        needed = hard.called_tools(source)
        offered = json.loads(row["tools"])
        names = [tool["name"] for tool in offered]
        assert 1 <= len(names) <= 4 and len(set(names)) == len(names)
        assert all(tool == pool[tool["name"]] for tool in offered)  # training-split definitions only
        excluded = needed.union(*(group for group in STAND_INS if group & needed))
        assert not excluded & set(names)  # neither a needed tool nor one that stands in for it
        wanted = set().union(*(hard.parameter_names(pool[name]) for name in needed))
        assert any(hard.parameter_names(tool) & wanted for tool in offered)  # a neighbour: it shares a parameter
        assert reply == {"from": "gpt", "value": prep.decline_reply(query["value"], names)}
        assert parse_tool_calls(reply["value"]) == []


def test_text_rows_and_val_queries_are_never_candidates(split):
    train, _ = split
    text_rows = [row for row in train if hard.called_tools(row) is None]
    assert text_rows  # the sample has no-call rows: they must not be re-asked
    made, candidates = hard.hard_negatives(train, train, rows=10, seed=1)  # every query is a val query
    assert (made, candidates) == ([], 0)
    made, _ = hard.hard_negatives(train, [], rows=10_000, seed=1)
    assert not {row["id"] for row in made} & {f"hard-{row['id']}" for row in text_rows}


def test_stand_ins_are_never_offered_for_the_tools_they_replace():
    def row(row_id, query, tools, calls):
        return {"id": row_id, "conversations": [{"from": "human", "value": query},
                                                {"from": "function_call", "value": json.dumps(calls)}],
                "tools": json.dumps(tools)}
    tool = lambda name, *params: {"name": name, "description": name, "parameters": {  # noqa: E731
        "type": "object", "properties": {p: {"type": "string"} for p in params}, "required": list(params)}}
    train = [row(1, "Weather in Oslo?", [tool("get_weather", "city")], [{"name": "get_weather", "arguments": {}}]),
             row(2, "x", [tool("forecast", "city"), tool("find_restaurants", "city"), tool("pow", "x")],
                 [{"name": "pow", "arguments": {}}])]
    made, candidates = hard.hard_negatives(train, [], rows=5, seed=0, stand_ins=[{"get_weather", "forecast"}])
    assert candidates == 1
    offered = {t["name"] for t in json.loads(made[0]["tools"])}
    assert "find_restaurants" in offered and not offered & {"get_weather", "forecast"}


def test_same_seed_same_rows_and_another_seed_other_rows(split):
    train, val = split
    first = hard.hard_negatives(train, val, rows=40, seed=5)
    assert first == hard.hard_negatives(train, val, rows=40, seed=5)
    assert first[0] != hard.hard_negatives(train, val, rows=40, seed=6)[0]


def test_main_writes_byte_identical_files_and_registers_them_where_told(tmp_path, split):
    train, val = split
    (tmp_path / "train.json").write_text(json.dumps(train, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "val.json").write_text(json.dumps(val, ensure_ascii=False), encoding="utf-8")
    info = tmp_path / "info.json"
    info.write_text("{}", encoding="utf-8")
    args = ["--train", str(tmp_path / "train.json"), "--val", str(tmp_path / "val.json"), "--rows", "30"]
    outputs = []
    for name in ("a.json", "b.json"):
        assert hard.main(args + ["--output", str(tmp_path / "out" / name), "--dataset-info", str(info)]) == 0
        outputs.append((tmp_path / "out" / name).read_bytes())
    assert outputs[0] == outputs[1] and len(json.loads(outputs[0])) == 30
    entry = json.loads(info.read_text(encoding="utf-8"))["fc_hard_neg"]
    assert entry["file_name"] == "out/b.json"
    assert entry["columns"] == {"messages": "conversations", "tools": "tools"}
    assert entry["tags"]["assistant_tag"] == "gpt"
    # outside the repo and no --dataset-info: written, registered nowhere (the repo's registry untouched)
    before = (REPO / "dataset_info.json").read_bytes()
    assert hard.main(args + ["--output", str(tmp_path / "c.json")]) == 0
    assert (tmp_path / "c.json").read_bytes() == outputs[0]
    assert (REPO / "dataset_info.json").read_bytes() == before


def test_a_row_the_converter_did_not_write_is_named_by_file_row_and_id(tmp_path, split, capsys):
    train, val = split
    broken = [*train[:3], {"id": "odd", "conversations": [], "tools": "[]"}]
    (tmp_path / "train.json").write_text(json.dumps(broken), encoding="utf-8")
    (tmp_path / "val.json").write_text(json.dumps(val), encoding="utf-8")
    code = hard.main(["--train", str(tmp_path / "train.json"), "--val", str(tmp_path / "val.json"),
                      "--output", str(tmp_path / "out.json")])
    message = capsys.readouterr().err
    assert code == 1 and "train.json: row 3 (id odd)" in message
    assert not (tmp_path / "out.json").exists()


def test_stand_in_file_must_be_lists_of_names(tmp_path, split, capsys):
    train, val = split
    for name, rows in (("train.json", train), ("val.json", val)):
        (tmp_path / name).write_text(json.dumps(rows), encoding="utf-8")
    groups = tmp_path / "groups.json"
    groups.write_text('{"a": 1}', encoding="utf-8")
    code = hard.main(["--train", str(tmp_path / "train.json"), "--val", str(tmp_path / "val.json"),
                      "--output", str(tmp_path / "out.json"), "--stand-ins", str(groups)])
    assert code == 1 and "lists of tool names" in capsys.readouterr().err
