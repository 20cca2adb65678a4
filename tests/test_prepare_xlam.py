import copy
import json
import re
import subprocess
import sys

import pytest

from eval.toolcall import executable, parse_tool_calls, tools_by_name
from scripts import prepare_xlam as prep
from scripts.gen_xlam_sample import CATALOGUE, PLACEHOLDER, STAND_INS, generate
from scripts.prepare_xlam import CJK
from tests.conftest import REPO

TOOLS = [
    {"name": "get_weather", "description": "Weather for a city.", "parameters": {
        "city": {"description": "City name.", "type": "str", "default": ""},
        "days": {"description": "Forecast days.", "type": "int, optional", "default": 3},
    }},
    {"name": "stats", "description": "Statistics.", "parameters": {
        "nums": {"description": "Numbers.", "type": "List[int]", "default": ""},
        "weights": {"description": "Weights.", "type": "List[float], optional", "default": ""},
        "options": {"description": "Options.", "type": "Dict[str, Any], optional", "default": ""},
        "exact": {"description": "Exact?", "type": "bool", "default": ""},
        "scale": {"description": "Scale.", "type": "float", "default": ""},
    }},
]
GOOD = {
    "id": 7,
    "query": "Weather in Paris and Tokyo?",
    "tools": json.dumps(TOOLS),
    "answers": json.dumps([{"name": "get_weather", "arguments": {"city": "Paris"}},
                           {"name": "get_weather", "arguments": {"city": "Tokyo", "days": 2}}]),
}


def mutate(**fields):
    record = copy.deepcopy(GOOD)
    record.update(fields)
    return record


def test_good_row_becomes_one_function_call_turn_with_the_parallel_calls():
    row, unknown = prep.convert_row(GOOD)
    assert unknown == 0
    assert row["id"] == 7
    human, call = row["conversations"]
    assert human == {"from": "human", "value": "Weather in Paris and Tokyo?"}
    assert call["from"] == "function_call"
    assert json.loads(call["value"]) == json.loads(GOOD["answers"])
    assert len(row["conversations"]) == 2  # no invented observation or reply


def test_tools_become_openai_functions_with_json_schema_types_and_required():
    row, _ = prep.convert_row(GOOD)
    weather, stats = json.loads(row["tools"])
    assert weather == {"name": "get_weather", "description": "Weather for a city.", "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name."},
                       "days": {"type": "integer", "description": "Forecast days.", "default": 3}},
        "required": ["city"]}}
    props = stats["parameters"]["properties"]
    assert props["nums"]["type"] == "array" and props["nums"]["items"] == {"type": "integer"}
    assert props["weights"]["items"] == {"type": "number"}
    assert props["options"]["type"] == "object"
    assert props["exact"]["type"] == "boolean" and props["scale"]["type"] == "number"
    assert stats["parameters"]["required"] == ["nums", "exact", "scale"]


@pytest.mark.parametrize("xlam_type, schema", [
    ("str", {"type": "string"}), ("int", {"type": "integer"}), ("float", {"type": "number"}),
    ("bool", {"type": "boolean"}), ("List[str]", {"type": "array", "items": {"type": "string"}}),
    ("List[List[int]]", {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}}),
    ("List", {"type": "array"}), ("Tuple[int, int]", {"type": "array"}),
    ("Dict[str, Any]", {"type": "object"}), ("dict", {"type": "object"}),
    ("Union[int, float]", {"type": ["integer", "number"]}), ("Optional[str]", {"type": "string"}),
    ("Any", {}), ("Callable", None), ("datetime", None),
])
def test_type_mapping(xlam_type, schema):
    assert prep.type_schema(xlam_type) == schema


def test_optional_marker_and_unknown_types():
    prop, required, known = prep.convert_parameter("f", {"description": "Fn.", "type": "Callable, optional"}, "x")
    assert (required, known) == (False, False)
    assert prop == {"description": "Fn. (type: Callable)"}  # untyped, xlam's type kept for the model
    _, required, _ = prep.convert_parameter("s", {"description": "", "type": "Optional[str]"}, "x")
    assert required is False


@pytest.mark.parametrize("record, field, reason", [
    (mutate(answers="[{'name': 'get_weather'}]"), "answers", "not valid JSON"),
    (mutate(tools='[{"name": "get_weather",'), "tools", "not valid JSON"),
    (mutate(query=""), "query", "missing or empty"),
    (mutate(query="   "), "query", "missing or empty"),
    ({k: v for k, v in GOOD.items() if k != "query"}, "query", "missing or empty"),
    (mutate(answers=json.dumps([{"name": "book_flight", "arguments": {}}])), "answers[0].name",
     "unknown function 'book_flight'"),
    (mutate(answers=json.dumps([{"name": "get_weather", "arguments": ["Paris"]}])), "answers[0].arguments",
     "arguments must be an object"),
    (mutate(answers=json.dumps([{"name": "get_weather", "arguments": {"city": "Paris", "lang": "fr"}}])),
     "answers[0].arguments.lang", "argument 'lang' is not declared"),
    (mutate(answers="{}"), "answers", "expected a list of calls"),
    (mutate(answers="[]", response=""), "response", "non-empty string"),
    (mutate(answers="[]", response=["text"]), "response", "non-empty string"),
    (mutate(answers="[]", response='Action: get_weather\nAction Input: {"city": "Paris"}'), "response",
     "contains a tool call"),
    (mutate(answers=json.dumps([{"name": "get_weather", "arguments": {"city": "X"}}, "nope"])), "answers[1]",
     "must be an object"),
    (mutate(tools=json.dumps({"name": "x"})), "tools", "JSON list"),
    (mutate(tools=json.dumps([{"description": "no name"}])), "tools[0]", "non-empty 'name'"),
    ({k: v for k, v in GOOD.items() if k != "tools"}, "tools", "missing"),
    (["not", "an", "object"], "<record>", "expected a JSON object"),
])
def test_each_rejection_reason(record, field, reason):
    with pytest.raises(prep.RowError) as error:
        prep.convert_row(record)
    assert error.value.field == field
    assert reason in error.value.reason


def test_rejections_are_counted_with_id_and_the_run_goes_on(tmp_path, capsys):
    rows = [GOOD, mutate(id=8, query=""), mutate(id=9, answers="{bad"), mutate(id=10)]
    src = tmp_path / "xlam.json"
    src.write_text(json.dumps(rows), encoding="utf-8")
    code = prep.main(["--input", str(src), "--output-dir", str(tmp_path / "out"),
                      "--dataset-info", str(tmp_path / "dataset_info.json")])
    captured = capsys.readouterr()
    assert code == 0
    assert "4 rows read, 2 converted, 2 rejected" in captured.out
    assert "row 1 (id 8): field 'query': missing or empty" in captured.err
    assert "row 2 (id 9): field 'answers': not valid JSON" in captured.err
    info = json.loads((tmp_path / "dataset_info.json").read_text(encoding="utf-8"))
    assert info["fc_train"]["columns"] == {"messages": "conversations", "tools": "tools"}
    assert info["fc_val"]["tags"]["function_tag"] == "function_call"
    assert info["fc_val"]["tags"]["observation_tag"] == "observation"


def test_jsonl_input_and_a_damaged_line(tmp_path, capsys):
    """JSONL converts; a line that is not JSON is a damaged file: the run stops naming the line and
    writes nothing (a record that parses but breaks the schema is rejected and the run goes on)."""
    src = tmp_path / "xlam.jsonl"
    src.write_text(json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "query": ""}) + "\n", encoding="utf-8")
    prep.main(["--input", str(src), "--output-dir", str(tmp_path / "out"), "--val-ratio", "0",
               "--dataset-info", str(tmp_path / "di.json")])
    assert "2 rows read, 1 converted, 1 rejected" in capsys.readouterr().out
    assert len(json.loads((tmp_path / "out/train.json").read_text(encoding="utf-8"))) == 1

    src.write_text(json.dumps(GOOD) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"xlam.jsonl: line 2: not valid JSON .*truncated"):
        prep.main(["--input", str(src), "--output-dir", str(tmp_path / "out2"), "--dataset-info", str(tmp_path / "d2.json")])
    assert not (tmp_path / "out2").exists() and not (tmp_path / "d2.json").exists()


def test_missing_input_file_exits_nonzero_naming_it(tmp_path):
    missing = tmp_path / "nope.json"
    result = subprocess.run([sys.executable, "-m", "scripts.prepare_xlam", "--input", str(missing),
                             "--output-dir", str(tmp_path / "out"), "--dataset-info", str(tmp_path / "di.json")],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode != 0
    assert str(missing) in result.stderr


def test_same_input_and_seed_give_byte_identical_files(tmp_path):
    src = tmp_path / "xlam.json"
    src.write_text(json.dumps(generate(200, seed=3)), encoding="utf-8")
    outputs = []
    for run in ("a", "b"):
        prep.main(["--input", str(src), "--output-dir", str(tmp_path / run), "--dataset-info", str(tmp_path / "di.json")])
        outputs.append([(tmp_path / run / f).read_bytes() for f in ("train.json", "val.json")])
    assert outputs[0] == outputs[1]
    assert len(json.loads(outputs[0][1])) == 20


def test_sample_generator_contract():
    rows = generate(1200, seed=0)
    assert rows == generate(1200, seed=0)
    assert len(CATALOGUE) >= 30
    assert any(t.name == "schedule_interview" for t in CATALOGUE)
    calls = [json.loads(r["answers"]) for r in rows]
    assert sum(len(c) > 1 for c in calls) > 200  # parallel calls
    assert len({c["name"] for cs in calls for c in cs}) == len(CATALOGUE)  # every tool is used
    no_call = [r for r, c in zip(rows, calls) if not c]
    assert 0.10 * len(rows) <= len(no_call) <= 0.15 * len(rows)  # relevance rows: 10-15% of the sample
    assert any(CJK.search(r["query"]) for r in no_call) and any(not CJK.search(r["query"]) for r in no_call)
    asking = [r for r in no_call if "I need the following" in r["response"] or "还缺少" in r["response"]]
    assert asking and len(asking) < len(no_call)  # both kinds: asks for what is missing, and declines
    for row, row_calls in zip(rows, calls):
        converted, unknown = prep.convert_row(row)  # every sample row converts cleanly...
        assert unknown == 0
        answer = converted["conversations"][1]
        if not row_calls:  # a no-call row ends with its text reply, which holds no call
            assert answer == {"from": "gpt", "value": row["response"]} and not parse_tool_calls(answer["value"])
            continue
        # ...and its reference calls are type-correct and parse back through the shared core
        assert executable(row_calls, tools_by_name(converted["tools"]))
        assert parse_tool_calls(answer["value"]) == row_calls


@pytest.mark.parametrize("name, rows, seed", [("xlam_sample.json", 1200, 0), ("xlam_grpo_sample.json", 600, 1)])
def test_committed_samples_are_what_the_generator_writes(name, rows, seed, tmp_path):
    """The Makefile's arguments (SFT's sample, seed 0; GRPO's prompts, seed 1) rebuild the committed bytes."""
    from scripts.gen_xlam_sample import main as gen_main

    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert f"gen_xlam_sample --output $@ --rows {rows} --seed {seed}\n" in makefile
    assert gen_main(["--output", str(tmp_path / name), "--rows", str(rows), "--seed", str(seed)]) == 0
    assert (tmp_path / name).read_bytes() == (REPO / "data/raw" / name).read_bytes()


def test_unserved_rows_offer_neither_the_tool_nor_a_stand_in():
    """A declined query built from a tool's template never comes with that tool or one that could replace it."""
    for row in generate(1200, seed=0):
        if json.loads(row["answers"]) or "I need" in row["response"] or "还缺少" in row["response"]:
            continue
        offered = {t["name"] for t in json.loads(row["tools"])}
        for tool in CATALOGUE:
            group = set().union({tool.name}, *(g for g in STAND_INS if tool.name in g))
            # if the query is one of this tool's templates filled in, no tool of its group is offered
            if any(re.fullmatch(PLACEHOLDER.sub(".+?", re.escape(t).replace("\\{", "{").replace("\\}", "}")),
                                row["query"]) for t in tool.templates):
                assert not offered & group, (row["query"], offered)


def test_no_call_rows_convert_to_a_text_reply_in_the_query_language():
    english, _ = prep.convert_row(mutate(query="What is the capital of France?", answers="[]"))
    assert english["conversations"][1] == {"from": "gpt", "value": prep.decline_reply("x", ["get_weather", "stats"])}
    assert "get_weather, stats" in english["conversations"][1]["value"]
    chinese, _ = prep.convert_row(mutate(query="法国的首都是哪里？", answers=[]))
    assert chinese["conversations"][1]["value"].startswith("抱歉")
    asked, _ = prep.convert_row(mutate(query="Weather?", answers="[]", response="Which city?"))
    assert asked["conversations"][1] == {"from": "gpt", "value": "Which city?"}
    assert json.loads(asked["tools"])[0]["name"] == "get_weather"  # the tools stay: the model must see them


def test_no_call_rows_load_through_llamafactory_as_an_assistant_reply():
    from llamafactory.data.converter import SharegptDatasetConverter
    from llamafactory.data.parser import DatasetAttr
    from llamafactory.hparams import DataArguments

    attr = DatasetAttr("file", "x.json", formatting="sharegpt", messages="conversations", tools="tools",
                       **prep.TAGS)
    row, _ = prep.convert_row(mutate(answers="[]"))
    out = SharegptDatasetConverter(attr, DataArguments())(row)
    assert out["_response"] == [{"role": "assistant", "content": row["conversations"][1]["value"]}]
    assert json.loads(out["_tools"]) == json.loads(row["tools"])


def test_converted_rows_load_through_llamafactory(tmp_path):
    """LLaMA-Factory's own ShareGPT converter accepts the rows and keeps the tools."""
    from llamafactory.data.converter import SharegptDatasetConverter
    from llamafactory.data.parser import DatasetAttr
    from llamafactory.hparams import DataArguments

    attr = DatasetAttr("file", "x.json", formatting="sharegpt", messages="conversations", tools="tools",
                       **prep.TAGS)
    row, _ = prep.convert_row(GOOD)
    out = SharegptDatasetConverter(attr, DataArguments())(row)
    assert out["_prompt"] == [{"role": "user", "content": GOOD["query"]}]
    assert out["_response"][0]["role"] == "function"
    assert json.loads(out["_tools"]) == json.loads(row["tools"])


OPENAI_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                   "required": ["city"]}}}
BFCL_TOOL = {"name": "geometry.area", "description": "Area of a polygon.",
             "parameters": {"type": "dict", "properties": {
                 "points": {"type": "array", "items": {"type": "tuple", "items": {"type": "float"}}},
                 "unit": {"type": "string", "enum": ["m", "cm"]}, "extra": {"type": "any"},
                 "options": {"type": "dict", "properties": {"round": {"type": "boolean"}}}},
                 "required": ["points"]}}


def test_json_schema_tools_openai_and_bfcl_forms_convert():
    calls = [{"name": "get_weather", "arguments": {"city": "Paris"}},
             {"name": "geometry.area", "arguments": {"points": [[0, 0.5], [1, 2]], "unit": "m"}}]
    row, unknown = prep.convert_row(mutate(tools=json.dumps([OPENAI_TOOL, BFCL_TOOL]), answers=json.dumps(calls)))
    weather, area = json.loads(row["tools"])
    assert unknown == 0
    assert weather == {"name": "get_weather", "description": "Weather for a city.",
                       "parameters": OPENAI_TOOL["function"]["parameters"]}
    params = area["parameters"]
    assert params["type"] == "object" and params["required"] == ["points"]
    assert params["properties"]["points"] == {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}
    assert params["properties"]["extra"] == {} and params["properties"]["unit"]["enum"] == ["m", "cm"]
    assert params["properties"]["options"]["type"] == "object"
    assert params["properties"]["options"]["properties"]["round"] == {"type": "boolean"}
    assert executable(parse_tool_calls(json.dumps(calls)), tools_by_name(row["tools"]))
    # an int is a valid float (number), a string is not
    bad = [{"name": "geometry.area", "arguments": {"points": [["a", 1]]}}]
    assert not executable(parse_tool_calls(json.dumps(bad)), tools_by_name(row["tools"]))


@pytest.mark.parametrize("parameters, field, reason", [
    ({"type": "dict", "properties": {"x": {"type": "complex"}}}, "tools[0].parameters.properties", "not a JSON-schema"),
    ({"type": "dict", "properties": {"x": {"type": "float"}}, "required": ["y"]}, "tools[0].parameters.required",
     "undeclared parameters: y"),
    ({"type": "string", "properties": {}}, "tools[0].parameters.type", "must be an object schema"),
])
def test_json_schema_tool_errors_name_the_field(parameters, field, reason):
    record = mutate(tools=json.dumps([{"name": "f", "parameters": parameters}]),
                    answers=json.dumps([{"name": "f", "arguments": {"x": 1}}]))
    with pytest.raises(prep.RowError) as error:
        prep.convert_row(record)
    assert error.value.field == field and reason in error.value.reason


def test_output_outside_the_repo_leaves_the_repo_registry_alone(tmp_path, capsys):
    before = (REPO / "dataset_info.json").read_bytes()
    src = tmp_path / "xlam.json"
    src.write_text(json.dumps([GOOD, mutate(id=8)]), encoding="utf-8")
    assert prep.main(["--input", str(src), "--output-dir", str(tmp_path / "out")]) == 0
    assert "not registered" in capsys.readouterr().out
    assert (REPO / "dataset_info.json").read_bytes() == before
    assert (tmp_path / "out/train.json").is_file()
    # registered where asked, with file names relative to that registry (LLaMA-Factory's dataset_dir)
    info = tmp_path / "reg" / "dataset_info.json"
    assert prep.main(["--input", str(src), "--output-dir", str(tmp_path / "out"), "--dataset-info", str(info)]) == 0
    entry = json.loads(info.read_text(encoding="utf-8"))["fc_train"]
    assert entry["file_name"] == "../out/train.json" and (info.parent / entry["file_name"]).is_file()
    assert (REPO / "dataset_info.json").read_bytes() == before


def test_tool_disjoint_split_keeps_val_tools_out_of_training(tmp_path, capsys):
    out, info = tmp_path / "out", tmp_path / "di.json"
    assert prep.main(["--input", str(REPO / "data/raw/xlam_sample.json"), "--output-dir", str(out),
                      "--dataset-info", str(info), "--split", "tools", "--val-ratio", "0.1"]) == 0
    train = json.loads((out / "train.json").read_text(encoding="utf-8"))
    val = json.loads((out / "val.json").read_text(encoding="utf-8"))
    seen = {t["name"] for row in train for t in json.loads(row["tools"])}
    unseen = [{t["name"] for t in json.loads(row["tools"])} - seen for row in val]
    assert val and all(unseen) and len(val) >= 0.1 * (len(train) + len(val))
    assert not any("split" in row for row in train + val)
    held = capsys.readouterr().out.split("tools only in val: ")[1].rstrip(")\n").split(", ")
    assert set(held) == set().union(*unseen)
