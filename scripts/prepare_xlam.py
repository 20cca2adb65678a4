"""Convert xlam-function-calling rows into LLaMA-Factory ShareGPT files with tools, and register them.

    python -m scripts.prepare_xlam [--input data/raw/xlam_sample.json] [--output-dir data/fc]
        [--val-ratio 0.1] [--seed 42] [--name fc] [--split random|tools] [--dataset-info FILE]

--split tools holds tools out: a val row offers at least one tool that no training row offers or calls.
An --output-dir outside the repo is not registered in the repo's dataset_info.json (it would re-point
fc_train at a scratch folder); --dataset-info FILE registers it there, file names relative to FILE.

Input: the xlam schema (a JSON list or JSONL) - {"id", "query", "tools", "answers"} with tools and
answers as JSON strings (or already decoded lists). A tool's parameters may be:
  - xlam's flat form, {name: {"description", "type", "default"}} with xlam's type strings ("str",
    "int, optional", "List[int]", "Dict[str, Any]", ...);
  - JSON schema, {"type": "object", "properties": {...}, "required": [...]}, as OpenAI writes it (also
    wrapped as {"type": "function", "function": {...}}) or as BFCL writes it ("type": "dict" and its type
    names float, tuple, any, converted to JSON schema's).

A row whose answers are an empty list needs no call (no offered tool serves the query, or the query lacks
what the tool needs): its optional "response" field is the text reply; without one the reply says, in the
query's language, that none of the offered tools can do it.

Output rows: {"id", "conversations": [human query, function_call], "tools": "<JSON string>"}; a no-call
row ends with a gpt turn (the text reply) instead of the function_call turn.
  - tools become OpenAI-style function definitions with a JSON-schema `parameters` object; a
    parameter is required unless its xlam type says optional; xlam types map to JSON-schema types
    (a type it cannot map, e.g. Callable, stays untyped and is counted in the summary);
  - the reference calls become ONE function_call turn holding the JSON list of calls, so parallel
    calls are one assistant action, as the model must emit them. No observation or final reply is
    invented: xlam has no tool results, and training on fake ones teaches the model to ignore them.
A row is rejected (reported with file, row, id, field and reason; the run goes on) when tools or
answers are not valid JSON, the query is missing or empty, answers is not a list, a no-call row's
response is not a non-empty string, a call names a tool the
row does not offer, its arguments are not an object, or it passes an argument the tool does not
declare. Same input and seed: byte-identical output.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path
from typing import Any

from eval.toolcall import executable, json_schema, parse_tool_calls, tools_by_name
from scripts.common import (
    Rejection,
    convert_records,
    exit_if_nothing_converted,
    report,
    split_arguments,
    write_split,
)

DEFAULT_INPUT = Path("data/raw/xlam_sample.json")
DEFAULT_OUTPUT_DIR = Path("data/fc")

SCALARS = {"str": "string", "string": "string", "int": "integer", "integer": "integer",
           "float": "number", "number": "number", "bool": "boolean", "boolean": "boolean"}
ARRAYS = {"list", "tuple", "set", "sequence"}
OBJECTS = {"dict", "mapping", "object"}
OPTIONAL = re.compile(r",\s*optional\s*$", re.IGNORECASE)
GENERIC = re.compile(r"^(\w+)\s*\[(.*)\]$", re.DOTALL)

# ShareGPT tags LLaMA-Factory needs to read function_call turns (the defaults, spelled out).
TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
        "observation_tag": "observation", "function_tag": "function_call"}


# The dataset_info.json fields of a converted file besides file_name (also scripts.fc_hard_negatives' rows).
DATASET_ENTRY = {"formatting": "sharegpt", "columns": {"messages": "conversations", "tools": "tools"}, "tags": TAGS}


class RowError(Exception):
    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field, self.reason = field, reason


def _split_top_level(text: str) -> list[str]:
    """'int, List[str]' -> ['int', 'List[str]'] (commas inside brackets stay)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def type_schema(xlam_type: str) -> dict | None:
    """JSON-schema fragment for an xlam type without its 'optional' marker; None when unmappable.
    {} means any value (xlam's Any)."""
    text = xlam_type.strip()
    lower = text.lower()
    if lower in SCALARS:
        return {"type": SCALARS[lower]}
    if lower == "any":
        return {}
    if lower in ARRAYS:
        return {"type": "array"}
    if lower in OBJECTS:
        return {"type": "object"}
    match = GENERIC.match(text)
    if not match:
        return None
    outer, inner = match.group(1).lower(), _split_top_level(match.group(2))
    if outer in ARRAYS:
        items = type_schema(inner[0]) if len(inner) == 1 else None  # Tuple[int, str]: no single item type
        return {"type": "array", "items": items} if items else {"type": "array"}
    if outer in OBJECTS:
        return {"type": "object"}
    if outer == "optional" and len(inner) == 1:
        return type_schema(inner[0])
    if outer == "union":
        members = [type_schema(part) for part in inner]
        if members and all(m and isinstance(m.get("type"), str) for m in members):
            return {"type": sorted({m["type"] for m in members})}
    return None


def convert_parameter(name: str, spec: Any, where: str) -> tuple[dict, bool, bool]:
    """(property schema, required, type known) for one xlam parameter."""
    if not isinstance(spec, dict):
        raise RowError(where, f"parameter '{name}' is not an object")
    raw_type = spec.get("type", "")
    if not isinstance(raw_type, str):
        raise RowError(f"{where}.type", f"type of '{name}' is not a string")
    optional = bool(OPTIONAL.search(raw_type)) or raw_type.strip().lower().startswith("optional[")
    base = OPTIONAL.sub("", raw_type).strip()
    schema = type_schema(base) if base else {}
    known = schema is not None
    prop = dict(schema or {})
    description = spec.get("description", "")
    description = description if isinstance(description, str) else str(description)
    if not known:  # keep what xlam said, so the model still sees it
        description = f"{description} (type: {base})".strip()
    prop["description"] = description
    default = spec.get("default", "")
    if default not in ("", None):
        prop["default"] = default
    return prop, not optional, known


def convert_tools(tools: list, field: str = "tools") -> tuple[list[dict], int]:
    """xlam tools -> OpenAI-style function definitions; also the count of unmappable types."""
    functions, unknown = [], 0
    for i, tool in enumerate(tools):
        where = f"{field}[{i}]"
        if isinstance(tool, dict) and tool.get("type") == "function" and isinstance(tool.get("function"), dict):
            tool, where = tool["function"], f"{where}.function"  # OpenAI's {"type": "function", "function": {...}}
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or not tool["name"].strip():
            raise RowError(where, "a tool must be an object with a non-empty 'name'")
        params = tool.get("parameters") or {}
        if not isinstance(params, dict):
            raise RowError(f"{where}.parameters", "parameters must be an object")
        description = tool.get("description", "")
        description = description if isinstance(description, str) else str(description)
        if is_json_schema(params):
            functions.append({"name": tool["name"], "description": description,
                              "parameters": schema_parameters(params, f"{where}.parameters")})
            continue
        properties, required = {}, []
        for name, spec in params.items():
            prop, is_required, known = convert_parameter(name, spec, f"{where}.parameters.{name}")
            properties[name] = prop
            unknown += not known
            if is_required:
                required.append(name)
        functions.append({"name": tool["name"], "description": description,
                          "parameters": {"type": "object", "properties": properties, "required": required}})
    return functions, unknown


def is_json_schema(params: dict) -> bool:
    """Parameters already in JSON-schema form ({"type": "object" | "dict", "properties": {...}}), as OpenAI
    and BFCL write them; xlam's flat form maps parameter names to {"type": "str", ...} objects instead."""
    return isinstance(params.get("type"), str) and isinstance(params.get("properties"), dict)


def schema_parameters(params: dict, where: str) -> dict:
    """JSON-schema parameters in JSON schema's own type names (eval.toolcall.json_schema: BFCL's dict, float,
    tuple, any), with `required` checked against the properties."""
    if params["type"].lower() not in ("object", "dict"):
        raise RowError(f"{where}.type", f"parameters must be an object schema, got type {params['type']!r}")
    converted = json_schema(params)
    if converted is None:
        raise RowError(f"{where}.properties", "a parameter has a type that is not a JSON-schema or BFCL type")
    required = params.get("required", [])
    if not isinstance(required, list) or not all(isinstance(n, str) for n in required):
        raise RowError(f"{where}.required", "required must be a list of parameter names")
    undeclared = [n for n in required if n not in params["properties"]]
    if undeclared:
        raise RowError(f"{where}.required", f"required names undeclared parameters: {', '.join(undeclared)}")
    return {**converted, "type": "object", "required": required}


def _json_field(record: dict, field: str) -> Any:
    value = record.get(field)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise RowError(field, f"not valid JSON ({exc.msg} at char {exc.pos})") from None
    if isinstance(value, list):  # already decoded, e.g. by a datasets export
        return value
    raise RowError(field, "missing" if value is None else f"expected a JSON string, got {type(value).__name__}")


CJK = re.compile(r"[\u4e00-\u9fff]")


def decline_reply(query: str, tool_names: list[str]) -> str:
    """The text answer of a row no offered tool serves, in the query's language."""
    names = ", ".join(tool_names)
    if CJK.search(query):
        return f"抱歉，现有的工具（{names}）都无法完成这个请求，我不能通过调用工具来回答。"
    return f"Sorry, none of the available tools ({names}) can do this, so I cannot answer it with a tool call."


def ask_for_arguments_reply(query: str, tool_name: str, required: list[str]) -> str:
    """The text answer of a row whose query lacks the arguments the right tool requires."""
    names = ", ".join(required)
    if CJK.search(query):
        return f"可以用 {tool_name} 来完成，但还缺少必要的信息：{names}。请补充后我再调用。"
    return f"I can do this with {tool_name}, but I need the following first: {names}. Please provide them."


def check_calls(answers: Any, functions: list[dict]) -> list[dict]:
    if not isinstance(answers, list):
        raise RowError("answers", "expected a list of calls ([] when no call is needed)")
    declared = {f["name"]: f["parameters"]["properties"] for f in functions}
    calls = []
    for i, call in enumerate(answers):
        where = f"answers[{i}]"
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            raise RowError(where, "a call must be an object with a 'name'")
        if call["name"] not in declared:
            raise RowError(f"{where}.name", f"unknown function '{call['name']}' (not in this row's tools)")
        arguments = call.get("arguments", {})
        if not isinstance(arguments, dict):
            raise RowError(f"{where}.arguments", f"arguments must be an object, got {type(arguments).__name__}")
        for name in arguments:
            if name not in declared[call["name"]]:
                raise RowError(f"{where}.arguments.{name}", f"argument '{name}' is not declared by '{call['name']}'")
        calls.append({"name": call["name"], "arguments": arguments})
    return calls


def no_call_reply(record: dict, query: str, functions: list[dict]) -> str:
    response = record.get("response")
    if response is None:
        return decline_reply(query, [f["name"] for f in functions])
    if not isinstance(response, str) or not response.strip():
        raise RowError("response", "the reply of a row that needs no call must be a non-empty string")
    if parse_tool_calls(response):
        raise RowError("response", "the reply of a row that needs no call contains a tool call")
    return response


def convert_row(record: Any) -> tuple[dict, int]:
    """(ShareGPT row, unmappable types) or RowError."""
    row, unknown, _, _ = convert_row_parts(record)
    return row, unknown


def convert_row_parts(record: Any) -> tuple[dict, int, list[dict], list[dict]]:
    """convert_row, plus the decoded calls and function definitions (for the summary's checks)."""
    if not isinstance(record, dict):
        raise RowError("<record>", f"expected a JSON object, got {type(record).__name__}")
    query = record.get("query")
    if not isinstance(query, str) or not query.strip():
        raise RowError("query", "missing or empty")
    tools = _json_field(record, "tools")
    if not isinstance(tools, list):
        raise RowError("tools", "expected a JSON list of tools")
    functions, unknown = convert_tools(tools)
    calls = check_calls(_json_field(record, "answers"), functions)
    if calls:
        answer = {"from": "function_call", "value": json.dumps(calls, ensure_ascii=False)}
    else:
        answer = {"from": "gpt", "value": no_call_reply(record, query, functions)}
    row = {
        "id": record.get("id"),
        "conversations": [{"from": "human", "value": query}, answer],
        "tools": json.dumps(functions, ensure_ascii=False),
    }
    return row, unknown, calls, functions


def convert_files(paths: list[Path]) -> tuple[list[dict], list[Rejection], int, dict]:
    stats = {"untyped_parameters": 0, "parallel": 0, "no_call": 0, "reference_not_type_correct": 0}

    def convert(record: Any, _where: str) -> tuple[dict | None, tuple[str, str] | None]:
        try:
            row, unknown, calls, functions = convert_row_parts(record)
        except RowError as error:
            return None, (error.field, error.reason)
        stats["untyped_parameters"] += unknown
        stats["parallel"] += len(calls) > 1
        stats["no_call"] += not calls
        # kept (the data is what it is) but counted: exec_rate of the reference itself is below 1
        stats["reference_not_type_correct"] += bool(calls) and not executable(calls, tools_by_name(functions))
        return row, None

    rows, rejections, read = convert_records(paths, convert)
    return rows, rejections, read, stats


def split_by_tools(rows: list[dict], val_ratio: float, seed: int) -> tuple[list[dict], list[str]]:
    """Rows marked "split": val when they offer a held-out tool, else train, so that no val tool is ever
    seen in training (offered or called). Tools are held out in seeded order until val holds at least
    val_ratio of the rows. Returns (rows, held-out tool names)."""
    offered = [{t["name"] for t in json.loads(row["tools"])} for row in rows]
    names = sorted(set().union(*offered)) if offered else []
    random.Random(seed).shuffle(names)
    held: set[str] = set()
    for name in names:
        if sum(bool(tools & held) for tools in offered) >= val_ratio * len(rows):
            break
        held.add(name)
    if len(held) == len(names):  # every tool held out: nothing would be left to train on
        raise SystemExit("error: --split tools: the rows share too few tools to hold some out "
                         f"({len(names)} distinct tools); use the default random split")
    marked = [{**row, "split": "val" if tools & held else "train"} for row, tools in zip(rows, offered)]
    return marked, sorted(held)


def main(argv: list[str] | None = None) -> int:
    parser = split_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]),
                             DEFAULT_INPUT, DEFAULT_OUTPUT_DIR, "fc")
    parser.add_argument("--split", choices=("random", "tools"), default="random",
                        help="tools: val rows offer tools training never sees (a generalisation split)")
    args = parser.parse_args(argv)
    rows, rejections, read, stats = convert_files(args.input)
    exit_if_nothing_converted("prepare_xlam", read, rows, rejections)
    held_out = []
    if args.split == "tools":
        rows, held_out = split_by_tools(rows, args.val_ratio, args.seed)
    split = write_split(rows, args, DATASET_ENTRY)
    report("prepare_xlam", read, len(rows), rejections,
           f" ({split}; {stats['parallel']} parallel, {stats['no_call']} needing no call, "
           f"{stats['untyped_parameters']} untyped parameters, "
           f"{stats['reference_not_type_correct']} references not type-correct"
           + (f"; {len(held_out)} tools only in val: {', '.join(held_out)}" if held_out else "") + ")")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
