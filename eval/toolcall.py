"""The one tool-call parser and scorer. eval/fc_metrics.py and reward/fc.py both call it.

Parsing model text into calls [{"name": str, "arguments": dict}] accepts:
  - Qwen format: one or more `<tool_call>{json}</tool_call>` blocks (parallel calls);
  - a bare JSON object or list of {"name", "arguments"} inside other text;
  - LLaMA-Factory's default format: `Action: NAME` / `Action Input: {json}` (repeatable);
  - arguments given as a JSON string ("arguments": "{\"a\": 1}");
  - Python call syntax, the whole text (BFCL's prompting format): `[get_weather(city="Paris"), math.pow(x=2)]`
    or one call; keyword arguments only (positional ones are dropped, as BFCL drops them); literals are
    read from the syntax tree, never evaluated: a name is its text (a variable), and an expression that
    is not a literal (`2 * 3`, `data['x']`) is its source text; at most MAX_PYTHON_CHARS characters.
Malformed JSON is unparseable: nothing is repaired. Untrusted text is bounded (MAX_CHARS, MAX_DEPTH)
and checked before json.loads, so a huge or deeply nested input is rejected quickly; no function here
raises on any input.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections import Counter
from functools import lru_cache
from typing import Any

MAX_CHARS = 200_000  # model outputs and references are far shorter; anything longer is unparseable
MAX_DEPTH = 64  # JSON nesting allowed in a call
MAX_CALLS = 64
MAX_DECODE_ATTEMPTS = 32  # embedded-JSON search: bounded, so adversarial text cannot make it quadratic
MAX_PYTHON_CHARS = 20_000  # Python call syntax: ast.parse builds a tree of the whole text, so less of it

TOOL_CALL_BLOCK = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
ACTION = re.compile(r"Action:\s*([^\n]+?)\s*\nAction Input:\s*", re.DOTALL)
PYTHON_CALLS = re.compile(r"\[?\s*[A-Za-z_][\w.]*\s*\(.*\)\s*\]?", re.DOTALL)  # all of the text, or not tried

Call = dict  # {"name": str, "arguments": dict}


STRUCTURE = re.compile(r'[\[\]{}"\\]')  # the only characters that change nesting or string state


def _depth_ok(text: str) -> bool:
    """Bracket nesting outside strings stays within MAX_DEPTH. One pass over the structural
    characters only (a regex finds them), so long plain text costs almost nothing."""
    depth, in_string, escaped_at = 0, False, -2
    for match in STRUCTURE.finditer(text):
        ch, at = match.group(), match.start()
        if in_string:
            if ch == "\\":
                if escaped_at != at - 1:  # a backslash not itself escaped escapes the next character
                    escaped_at = at
            elif ch == '"' and escaped_at != at - 1:
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def loads_bounded(text: str) -> tuple[bool, Any]:
    """(True, value) for valid JSON within the bounds, else (False, None)."""
    if not isinstance(text, str) or len(text) > MAX_CHARS or not _depth_ok(text):
        return False, None
    try:
        return True, json.loads(text)
    except (ValueError, RecursionError):
        return False, None


def _as_call(obj: Any) -> Call | None:
    """A {"name", "arguments"} object (arguments may be a JSON string) or None."""
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or not obj["name"].strip():
        return None
    arguments = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(arguments, str):
        ok, arguments = loads_bounded(arguments)
        if not ok:
            return None
    if not isinstance(arguments, dict):
        return None
    return {"name": obj["name"].strip(), "arguments": arguments}


def _as_calls(obj: Any) -> list[Call] | None:
    items = obj if isinstance(obj, list) else [obj]
    if not items or len(items) > MAX_CALLS:
        return None
    calls = [_as_call(item) for item in items]
    return None if any(c is None for c in calls) else calls


CALL_START = re.compile(r'\{\s*"|\[\s*\{')


def _first_json_value(text: str) -> tuple[bool, Any]:
    """The first JSON object or list of objects embedded in text (raw_decode from the first
    MAX_DECODE_ATTEMPTS places that look like the start of one)."""
    for attempt, match in enumerate(CALL_START.finditer(text)):
        if attempt >= MAX_DECODE_ATTEMPTS:
            break
        ok, value = _decode_at(text, match.start())
        if ok:
            return True, value
    return False, None


def _decode_at(text: str, start: int) -> tuple[bool, Any]:
    try:
        return True, json.JSONDecoder().raw_decode(text, start)[0]
    except (ValueError, RecursionError):
        return False, None


def parse_tool_calls(text: Any) -> list[Call]:
    """Calls found in model output; [] when nothing parses. Never raises."""
    try:
        return _parse(text)
    except Exception:  # a parser of untrusted text must not take a training run down
        return []


def _parse(text: Any) -> list[Call]:
    if not isinstance(text, str) or len(text) > MAX_CHARS or not _depth_ok(text):
        return []
    blocks = TOOL_CALL_BLOCK.findall(text)
    if blocks:
        calls = []
        for block in blocks:
            ok, obj = loads_bounded(block.strip())
            parsed = _as_calls(obj) if ok else None
            if parsed is None:
                return []
            calls += parsed
        return calls[:MAX_CALLS]
    actions = list(ACTION.finditer(text))
    if actions:
        calls = []
        for match in actions:
            ok, arguments = _decode_at(text, match.end())  # Action Input's JSON starts right there
            call = _as_call({"name": match.group(1), "arguments": arguments}) if ok else None
            if call is None:
                return []
            calls.append(call)
        return calls[:MAX_CALLS]
    ok, obj = loads_bounded(text.strip())
    if not ok:
        ok, obj = _first_json_value(text)
    calls = _as_calls(obj) if ok else None
    return calls or _python_calls(text.strip("`\n "))  # JSON inside a Python string argument is not a call


def _python_calls(text: str) -> list[Call]:
    """Calls written in Python syntax, the whole text: `f(a=1)` or `[f(a=1), g.h(b="x")]`; [] otherwise."""
    if len(text) > MAX_PYTHON_CHARS or not PYTHON_CALLS.fullmatch(text):
        return []
    try:
        tree = ast.parse(text, mode="eval").body
        elements = tree.elts if isinstance(tree, (ast.List, ast.Tuple)) else [tree]
        if not elements or len(elements) > MAX_CALLS or not all(isinstance(e, ast.Call) for e in elements):
            return []
        calls = [_python_call(e, 0) for e in elements]
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # ValueError: nested deeper than MAX_DEPTH
        return []
    return [] if any(c is None for c in calls) else calls


def _python_call(node: ast.Call, depth: int) -> Call | None:
    parts, func = [], node.func
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        return None
    arguments = {}
    for keyword in node.keywords:
        if keyword.arg is None:  # **spread: not a literal
            return None
        arguments[keyword.arg] = _python_value(keyword.value, depth + 1)
    return {"name": ".".join([func.id, *reversed(parts)]), "arguments": arguments}


def _python_value(node: ast.AST, depth: int) -> Any:
    """A literal's value from the syntax tree (never evaluated); a name or any other expression: its text."""
    if depth > MAX_DEPTH:
        raise ValueError("nested too deep")
    number = node.operand if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) else node
    if isinstance(number, ast.Constant) and (type(number.value) is int
                                             or type(number.value) is float and math.isfinite(number.value)):
        return -number.value if number is not node and isinstance(node.op, ast.USub) else number.value
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, bool, type(None))):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [_python_value(item, depth + 1) for item in node.elts]
    if isinstance(node, ast.Dict) and all(key is not None for key in node.keys):
        return {_python_key(key, depth + 1): _python_value(value, depth + 1) for key, value in zip(node.keys, node.values)}
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call) and node.keywords:  # a call as a value: {name: arguments}, as BFCL reads it
        inner = _python_call(node, depth + 1)
        if inner is not None:
            return {inner["name"]: inner["arguments"]}
    return ast.unparse(node)


def _python_key(node: ast.AST, depth: int) -> str:
    key = _python_value(node, depth)
    return key if isinstance(key, str) else json.dumps(key)


# ---------------------------------------------------------------- scoring

def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def tools_by_name(tools: Any) -> dict[str, dict]:
    """{name: parameters schema} from a tools JSON string or list of OpenAI-style definitions.
    Treat the result as read-only: for a string it is cached (a GRPO group shares one tools string)."""
    if isinstance(tools, str):
        return _tools_from_string(tools)
    return _tools_from_list(tools)


@lru_cache(maxsize=4096)
def _tools_from_string(text: str) -> dict[str, dict]:
    ok, tools = loads_bounded(text)
    return _tools_from_list(tools) if ok else {}


def _tools_from_list(tools: Any) -> dict[str, dict]:
    out = {}
    for tool in tools if isinstance(tools, list) else []:
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict):
            tool = tool["function"]
        if isinstance(tool, dict) and isinstance(tool.get("name"), str):
            params = tool.get("parameters") if isinstance(tool.get("parameters"), dict) else {}
            out[tool["name"]] = params
    return out


# JSON-schema type names for the type names tool schemas use besides them (BFCL's "dict", "float", "tuple", ...).
SCHEMA_TYPES = {"string": "string", "str": "string", "integer": "integer", "int": "integer",
                "number": "number", "float": "number", "boolean": "boolean", "bool": "boolean",
                "array": "array", "list": "array", "tuple": "array", "object": "object", "dict": "object",
                "null": "null"}
UNTYPED = {"any", ""}


def json_schema(schema: Any, depth: int = 0) -> dict | None:
    """A tool parameter schema in JSON schema's own type names: BFCL's dict -> object, float -> number,
    tuple -> array, any -> untyped, recursively through properties and items. None when a type is not
    known (the caller decides what that means); bounded by MAX_DEPTH."""
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return None
    out = dict(schema)
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not all(isinstance(k, str) for k in kinds):
            return None
        if any(k.lower() in UNTYPED for k in kinds):
            out.pop("type")
        else:
            mapped = [SCHEMA_TYPES.get(k.lower()) for k in kinds]
            if None in mapped:
                return None
            out["type"] = mapped[0] if len(mapped) == 1 else sorted(set(mapped))
    if isinstance(schema.get("properties"), dict):
        properties = {}
        for name, sub in schema["properties"].items():
            properties[name] = json_schema(sub, depth + 1)
            if properties[name] is None:
                return None
        out["properties"] = properties
    if "items" in schema:
        listed = schema["items"] if isinstance(schema["items"], list) else [schema["items"]]
        items = [json_schema(item, depth + 1) for item in listed]
        if None in items:
            return None
        out["items"] = items if isinstance(schema["items"], list) else items[0]
    return out


def type_ok(value: Any, schema: Any) -> bool:
    """JSON-schema type check for a value: an integer is a valid number, a boolean is not an integer."""
    if not isinstance(schema, dict) or "type" not in schema:
        return True
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    for kind in kinds:
        if kind == "string" and isinstance(value, str):
            return True
        if kind == "integer" and isinstance(value, int) and not isinstance(value, bool):
            return True
        if kind == "number" and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return True
        if kind == "boolean" and isinstance(value, bool):
            return True
        if kind == "null" and value is None:
            return True
        if kind == "object" and isinstance(value, dict):
            return True
        if kind == "array" and isinstance(value, list):
            items = schema.get("items")
            return all(type_ok(v, items) for v in value)
    return False


def schema_hit(calls: list[Call], tools: dict[str, dict]) -> bool:
    """Parsed, every call names a tool of the row and gives all its required parameters."""
    if not calls:
        return False
    for call in calls:
        if call["name"] not in tools:
            return False
        required = tools[call["name"]].get("required", [])
        if not all(name in call["arguments"] for name in required if isinstance(name, str)):
            return False
    return True


def executable(calls: list[Call], tools: dict[str, dict]) -> bool:
    """Schema hit, no undeclared parameter, every value of its declared type."""
    if not schema_hit(calls, tools):
        return False
    for call in calls:
        properties = tools[call["name"]].get("properties", {})
        for name, value in call["arguments"].items():
            if name not in properties or not type_ok(value, properties[name]):
                return False
    return True


def argument_f1(predicted: list[Call], reference: list[Call]) -> float:
    """F1 between the sets of (function, argument, canonical value); 0 when nothing parsed;
    1 when both sides have no arguments and the function names match."""
    if not predicted:
        return 0.0
    pred = {(c["name"], k, canonical(v)) for c in predicted for k, v in c["arguments"].items()}
    ref = {(c["name"], k, canonical(v)) for c in reference for k, v in c["arguments"].items()}
    if not pred and not ref:
        return 1.0 if names_match(predicted, reference) else 0.0
    hits = len(pred & ref)
    if hits == 0:
        return 0.0
    precision, recall = hits / len(pred), hits / len(ref)
    return 2 * precision * recall / (precision + recall)


def names_match(predicted: list[Call], reference: list[Call]) -> bool:
    return bool(predicted) and Counter(c["name"] for c in predicted) == Counter(c["name"] for c in reference)


def exact_match(predicted: list[Call], reference: list[Call]) -> bool:
    key = lambda calls: Counter((c["name"], canonical(c["arguments"])) for c in calls)  # noqa: E731
    return bool(predicted) and key(predicted) == key(reference)


@lru_cache(maxsize=4096)
def _reference_calls(text: str) -> list[Call]:
    """Reference calls from their JSON string, cached: every completion of a group is scored
    against the same one (read-only)."""
    return parse_tool_calls(text)


# GRPO's combined reward (reward/fc.py) and the eval report both weigh the per-row scores with this.
REWARD_WEIGHTS = {"parse": 0.25, "schema_hit": 0.25, "exec": 0.25, "arg_f1": 0.25}


def combined(row_scores: dict[str, float | None], weights: dict[str, float] | None = None) -> float:
    """Weighted sum of a row's scores (keys of score()); missing keys count 0. On a row that needs no call
    every component is the decision itself (no_call), so declining scores the full weight, calling 0."""
    weights = REWARD_WEIGHTS if weights is None else weights
    return float(sum(w * (component(row_scores, key) or 0.0) for key, w in weights.items()))


def component(row_scores: dict[str, float | None], key: str) -> float | None:
    """A call metric of a row for rewards: its value, or on a row that needs no call, whether no call was made."""
    value = row_scores.get(key)
    return row_scores.get("no_call") if value is None else value


CALL_METRICS = ("parse", "name", "arg_f1", "schema_hit", "exec")


def score(text: Any, reference: Any, tools: Any) -> dict[str, float | None]:
    """All per-row metrics for one prediction. reference: calls as a list or JSON string; a reference
    with no call (an empty list, or a text answer such as a no-call row's reply) means no call is right;
    None (no reference) scores the call metrics against nothing.

    On a row with reference calls: parse, name, arg_f1, schema_hit, exec, exact as defined above, and
    no_call None. On a row that needs no call: the five call metrics are None (they do not apply), exact
    and no_call are 1 when no call was parsed, else 0."""
    predicted = parse_tool_calls(text)
    needs_no_call = False
    if isinstance(reference, str):
        reference = _reference_calls(reference)
        needs_no_call = not reference
    elif isinstance(reference, list):
        needs_no_call = not reference
        reference = _as_calls(reference) or []
    else:  # no reference at all (a missing column): the call metrics against nothing, as for a wrong call
        reference = []
    if needs_no_call:
        declined = float(not predicted)
        return {**dict.fromkeys(CALL_METRICS), "exact": declined, "no_call": declined}
    schemas = tools_by_name(tools)
    return {
        "parse": float(bool(predicted)),
        "name": float(names_match(predicted, reference)),
        "arg_f1": argument_f1(predicted, reference),
        "schema_hit": float(schema_hit(predicted, schemas)),
        "exec": float(executable(predicted, schemas)),
        "exact": float(exact_match(predicted, reference)),
        "no_call": None,
    }
