import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eval.toolcall import argument_f1, combined, executable, parse_tool_calls, schema_hit, score, tools_by_name, type_ok

TOOLS = json.dumps([
    {"name": "schedule_interview", "description": "book a slot", "parameters": {"type": "object", "properties": {
        "candidate": {"type": "string"}, "day": {"type": "integer"}, "remote": {"type": "boolean"},
        "panel": {"type": "array", "items": {"type": "string"}}, "score": {"type": "number"}},
        "required": ["candidate", "day"]}},
    {"name": "get_time", "description": "now", "parameters": {"type": "object", "properties": {}, "required": []}},
])
CALL = {"name": "schedule_interview", "arguments": {"candidate": "张三", "day": 3}}


@pytest.mark.parametrize("text", [
    '<tool_call>{"name": "schedule_interview", "arguments": {"candidate": "张三", "day": 3}}</tool_call>',
    'Sure. {"name": "schedule_interview", "arguments": {"candidate": "张三", "day": 3}} done',
    '[{"name": "schedule_interview", "arguments": {"candidate": "张三", "day": 3}}]',
    'Action: schedule_interview\nAction Input: {"candidate": "张三", "day": 3}',
    '{"name": "schedule_interview", "arguments": "{\\"candidate\\": \\"张三\\", \\"day\\": 3}"}',
    'schedule_interview(candidate="张三", day=3)',
    "```\n[schedule_interview(candidate='张三', day=+3)]\n```",
])
def test_every_accepted_format_parses_to_the_same_call(text):
    assert parse_tool_calls(text) == [CALL]


def test_parallel_calls():
    two = '<tool_call>{"name": "get_time", "arguments": {}}</tool_call>\n<tool_call>' + json.dumps(CALL) + "</tool_call>"
    assert [c["name"] for c in parse_tool_calls(two)] == ["get_time", "schedule_interview"]
    actions = "Action: get_time\nAction Input: {}\nAction: get_time\nAction Input: {}"
    assert len(parse_tool_calls(actions)) == 2
    assert len(parse_tool_calls(json.dumps([CALL, CALL]))) == 2
    assert [c["name"] for c in parse_tool_calls('[get_time(), geo.area.of(shape="circle", r=-1.5)]')] == ["get_time", "geo.area.of"]


def test_python_syntax_is_read_never_evaluated():
    """Literals come from the syntax tree; names and other expressions are their text, never run."""
    (call,) = parse_tool_calls('f(a=[1, (2, 3)], b={"k": None}, c=True, d=data, e=2 * 3, g=x["y"], '
                               'h=__import__("os").system("exit 1"), i=g(j=1), k=1e400, m=-True)')
    assert call["arguments"] == {"a": [1, [2, 3]], "b": {"k": None}, "c": True, "d": "data", "e": "2 * 3",
                                 "g": "x['y']", "h": "__import__('os').system('exit 1')", "i": {"g": {"j": 1}},
                                 "k": "1e309", "m": "-True"}
    assert parse_tool_calls("f(1, 2)") == [{"name": "f", "arguments": {}}]  # positional: dropped, as BFCL does
    assert parse_tool_calls(f"f(n={10 ** 400}, m=-{10 ** 400})")[0]["arguments"]["m"] == -10 ** 400


@pytest.mark.parametrize("text", [
    '<tool_call>{"name": "schedule_interview", "arguments": {"candidate": "张三",}}</tool_call>',  # trailing comma
    '{"name": "x", "arguments": [1, 2]}',  # arguments not an object
    '{"arguments": {}}', '{"name": "", "arguments": {}}', "no calls here", "", None, 42,
    '<tool_call>{"name": "ok", "arguments": {}}</tool_call><tool_call>{bad}</tool_call>',
    "Action: get_time\nAction Input: not json",
    "Sure: get_time()", "get_time() is what I would call", "f(**options)", "[f(a=1), 3]", "f(a=1", "(lambda: 1)()",
])
def test_malformed_is_unparseable(text):
    assert parse_tool_calls(text) == []


@pytest.mark.parametrize("text", [
    "x" * 5_000_000,
    "[" * 100_000 + "]" * 100_000,
    '{"name": "a", "arguments": ' + '{"a":' * 100_000 + "1" + "}" * 100_001,
    '"' + '[{"a":' * 100_000,
    "Action: a\nAction Input: " + "[" * 100_000,
    "f(a=" + "(" * 100_000 + "1" + ")" * 100_000 + ")",
    "f(a=" + "1+" * 99_000 + "1)",
    "[" + ",".join(["f(a=1)"] * 28_000) + "]",
])
def test_huge_or_deep_input_is_unparseable_quickly(text):
    start = time.perf_counter()
    assert parse_tool_calls(text) == []
    assert score(text, json.dumps([CALL]), TOOLS)["parse"] == 0.0
    assert time.perf_counter() - start < 1.0


def test_type_rules():
    assert type_ok(3, {"type": "number"}) and not type_ok(True, {"type": "integer"})
    assert not type_ok(True, {"type": "number"}) and not type_ok(3.5, {"type": "integer"})
    assert type_ok(["a"], {"type": "array", "items": {"type": "string"}})
    assert not type_ok(["a", 1], {"type": "array", "items": {"type": "string"}})
    assert not type_ok(float("nan"), {"type": "number"})


def test_schema_hit_and_exec():
    tools = tools_by_name(TOOLS)
    assert schema_hit([CALL], tools) and executable([CALL], tools)
    missing = [{"name": "schedule_interview", "arguments": {"candidate": "张三"}}]
    assert not schema_hit(missing, tools)
    unknown_tool = [{"name": "fire_everyone", "arguments": {}}]
    assert not schema_hit(unknown_tool, tools)
    extra = [{"name": "schedule_interview", "arguments": {"candidate": "张三", "day": 3, "mood": "good"}}]
    assert schema_hit(extra, tools) and not executable(extra, tools)
    wrong_type = [{"name": "schedule_interview", "arguments": {"candidate": "张三", "day": "3"}}]
    assert schema_hit(wrong_type, tools) and not executable(wrong_type, tools)
    bool_as_int = [{"name": "schedule_interview", "arguments": {"candidate": "张三", "day": True}}]
    assert not executable(bool_as_int, tools)
    assert not schema_hit([], tools)


def test_argument_f1_edge_cases():
    assert argument_f1([], [CALL]) == 0.0
    assert argument_f1([CALL], [CALL]) == 1.0
    half = [{"name": "schedule_interview", "arguments": {"candidate": "张三", "day": 4}}]
    assert argument_f1(half, [CALL]) == pytest.approx(0.5)
    no_args = [{"name": "get_time", "arguments": {}}]
    assert argument_f1(no_args, no_args) == 1.0
    assert argument_f1(no_args, [{"name": "other", "arguments": {}}]) == 0.0
    # canonical values: key order inside a value does not matter, 1 vs 1.0 vs "1" do
    a = [{"name": "f", "arguments": {"o": {"x": 1, "y": 2}}}]
    b = [{"name": "f", "arguments": {"o": {"y": 2, "x": 1}}}]
    assert argument_f1(a, b) == 1.0
    assert argument_f1([{"name": "f", "arguments": {"v": "1"}}], [{"name": "f", "arguments": {"v": 1}}]) == 0.0


def test_score_row():
    reference = json.dumps([CALL], ensure_ascii=False)
    perfect = score("<tool_call>" + json.dumps(CALL, ensure_ascii=False) + "</tool_call>", reference, TOOLS)
    assert perfect == {"parse": 1.0, "name": 1.0, "arg_f1": 1.0, "schema_hit": 1.0, "exec": 1.0, "exact": 1.0,
                       "no_call": None}
    reordered = score(json.dumps([{"name": "get_time", "arguments": {}}, CALL]),
                      json.dumps([CALL, {"name": "get_time", "arguments": {}}]), TOOLS)
    assert reordered["name"] == 1.0 and reordered["exact"] == 1.0
    assert score("garbage", reference, TOOLS) == {**dict.fromkeys(perfect, 0.0), "no_call": None}
    # no reference at all: the call metrics against nothing (a call is not "right")
    assert score("<tool_call>" + json.dumps(CALL) + "</tool_call>", None, TOOLS)["exact"] == 0.0


CALL_TEXT = "<tool_call>" + json.dumps(CALL, ensure_ascii=False) + "</tool_call>"


@pytest.mark.parametrize("reference", ["[]", [], "Sorry, none of the tools can do that.", "抱歉，无法完成。"])
def test_a_row_that_needs_no_call_is_right_only_when_no_call_is_made(reference):
    declined = score("Sorry, I cannot do that with these tools.", reference, TOOLS)
    assert declined == {"parse": None, "name": None, "arg_f1": None, "schema_hit": None, "exec": None,
                        "exact": 1.0, "no_call": 1.0}
    called = score(CALL_TEXT, reference, TOOLS)
    assert called["exact"] == called["no_call"] == 0.0 and called["parse"] is None
    assert combined(declined) == 1.0 and combined(called) == 0.0
    assert combined(declined, {"parse": 0.5, "exec": 0.2}) == pytest.approx(0.7)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=300), json_values.map(lambda v: json.dumps(v)),
                      json_values.map(lambda v: "<tool_call>" + json.dumps(v) + "</tool_call>")),
       tools=st.one_of(st.text(max_size=50), json_values.map(json.dumps)))
def test_fuzz_never_raises_and_scores_are_in_range(text, tools):
    result = score(text, text, tools)
    assert all(v is None or 0.0 <= v <= 1.0 for v in result.values())
    assert (result["no_call"] is None) != (result["parse"] is None)  # a row either needs calls or needs none


def test_fc_metrics_cli(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    good = "<tool_call>" + json.dumps(CALL, ensure_ascii=False) + "</tool_call>"
    rows = [{"predict": good, "label": json.dumps([CALL]), "tools": TOOLS},
            {"predict": "I cannot help.", "label": json.dumps([CALL]), "tools": TOOLS}]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "eval.fc_metrics", "--predictions", str(path)], cwd=REPO,
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == {"n": 2, "n_no_call": 0, "parse_rate": 0.5, "name_acc": 0.5, "arg_f1": 0.5,
                                      "schema_hit_rate": 0.5, "exec_rate": 0.5, "exact_match": 0.5,
                                      "irrelevance_acc": None, "combined_reward": 0.5}
    # rows that need no call: call metrics over the call rows only, exact and irrelevance_acc over them too
    rows += [{"predict": "Sorry, none of these tools can do it.", "label": "[]", "tools": TOOLS},
             {"predict": good, "label": "Sorry, none of the tools (get_weather) can do this.", "tools": TOOLS},
             {"predict": "我做不到。", "label": "抱歉，现有的工具都无法完成这个请求。", "tools": TOOLS}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "eval.fc_metrics", "--predictions", str(path)], cwd=REPO,
                         capture_output=True, text=True, check=True)
    metrics = json.loads(out.stdout)
    assert metrics["n"] == 5 and metrics["n_no_call"] == 3
    assert metrics["parse_rate"] == 0.5 and metrics["exact_match"] == 0.6  # (1 + 0) + (1 + 0 + 1) of 5
    assert metrics["irrelevance_acc"] == round(2 / 3, 4) and metrics["combined_reward"] == 0.6
    path.write_text('{"predict": "x", "label": "[]"}\n', encoding="utf-8")
    bad = subprocess.run([sys.executable, "-m", "eval.fc_metrics", "--predictions", str(path)], cwd=REPO,
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "line 1" in bad.stderr and "tools" in bad.stderr


def test_fc_metrics_against_gives_the_paired_difference_on_the_same_rows(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    good = "<tool_call>" + json.dumps(CALL, ensure_ascii=False) + "</tool_call>"
    label = json.dumps([CALL])

    def write(name: str, predicts: list[str], labels: list[str]):
        path = tmp_path / name
        path.write_text("".join(json.dumps({"predict": p, "label": gold, "tools": TOOLS}, ensure_ascii=False) + "\n"
                                for p, gold in zip(predicts, labels)), encoding="utf-8")
        return str(path)

    labels = [label] * 10 + ["[]"] * 10
    # the new model fixes all 10 calls and keeps the declines; the old one gets half of each
    new = write("new.jsonl", [good] * 10 + ["Sorry."] * 10, labels)
    old = write("old.jsonl", [good] * 5 + ["no"] * 5 + ["Sorry."] * 5 + [good] * 5, labels)
    out = subprocess.run([sys.executable, "-m", "eval.fc_metrics", "--predictions", new, "--against", old],
                         cwd=REPO, capture_output=True, text=True, check=True)
    against = json.loads(out.stdout)["against"]
    assert against["exact_match"]["value"] == 50.0 and against["exact_match"]["significant"]
    assert against["irrelevance_acc"]["value"] == 50.0 and against["parse_rate"]["value"] == 50.0
    assert against["exact_match"]["low"] > 0 and against["exact_match"]["high"] <= 100
    same = subprocess.run([sys.executable, "-m", "eval.fc_metrics", "--predictions", new, "--against", new],
                          cwd=REPO, capture_output=True, text=True, check=True)
    assert all(d["value"] == 0 and not d["significant"] for d in json.loads(same.stdout)["against"].values())
    other = write("other.jsonl", [good] * 20, [label] * 20)  # other rows: not a paired comparison
    bad = subprocess.run([sys.executable, "-m", "eval.fc_metrics", "--predictions", new, "--against", other],
                         cwd=REPO, capture_output=True, text=True)
    assert bad.returncode != 0 and "same labels and tools" in bad.stderr and "Traceback" not in bad.stderr
