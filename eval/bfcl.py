"""BFCL v4, offline: the single-turn AST categories of the Berkeley Function Calling Leaderboard, scored by
BFCL's AST rules on the repo's one tool-call parser (eval/toolcall.py).

    make bfcl RECIPE=configs/fc_smollm2_lora_sft_cpu.yaml [BFCL_ARGS="--max-per-category 20"]
    python -m eval.bfcl --recipe R [--max-per-category N] [--categories a,b] [--output-dir DIR]
    python -m eval.bfcl --predictions FILE.jsonl [--verdicts OUT.jsonl]      # score predictions only

Data: the questions and possible answers ship inside the `bfcl-eval` wheel (PyPI, Apache-2.0) under
bfcl_eval/data/ and bfcl_eval/data/possible_answer/. `make bfcl-data` installs the pinned wheel with
--no-deps; only its data files are read (its modules import many API clients; only tests/test_bfcl.py
imports one, its ast_checker, alone, to compare verdicts).

Prompts: the recipe's template and tool format (as in training), BFCL's functions converted to JSON
schema (dict -> object, float -> number, tuple -> array, any -> untyped: eval.toolcall.json_schema); a
system turn of the question becomes the system prompt. Greedy decoding.

The AST rules: BFCL's ast_checker for Python, rule for rule (a test compares the verdicts with BFCL's own
checker on ~9,400 answers, most of them altered), per call against one possible-answer entry:
  - the function name is the answer's (names may contain dots) and the function is offered;
  - every required parameter is given, and none the function does not declare or the answer does not list;
  - each value has the declared type (an int is accepted for a float, not a float for an int; array items
    are typed too, one level deep and strictly) or else the type of the answer's possible values (BFCL's
    "variable": `null`, or `"data['x']"` for an array, then compared exactly); it is one of the possible
    values; "" in the list means the parameter may be left out; strings are compared after BFCL's
    normalisation (lower-cased, without spaces and the characters ,./-_*^, single quotes as double),
    also as the items of a list and the values of a dict; lists element by element in order; dicts key
    by key;
  - simple and multiple: exactly one call, matching the one answer; parallel and parallel_multiple: as
    many calls as answers, matched in any order, first fit (each answer in turn takes the first call
    left that matches it, as BFCL does);
  - irrelevance, live_irrelevance: right when no call is decoded; live_relevance: right when at least one is.
Summary (as BFCL's overall table): non-live AST = mean of the four non-live categories; live AST = all
live AST examples pooled (BFCL weights live categories by size); relevance = live_relevance;
irrelevance = irrelevance and live_irrelevance pooled.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

from eval import stats
from eval.toolcall import json_schema, parse_tool_calls
from scripts.common import atomic_write_text, read_records, read_rows, relative_to_repo, write_json, write_jsonl

CATEGORIES = ["simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance", "live_simple",
              "live_multiple", "live_parallel", "live_parallel_multiple", "live_irrelevance", "live_relevance"]
NON_LIVE_AST = ["simple_python", "multiple", "parallel", "parallel_multiple"]
LIVE_AST = ["live_simple", "live_multiple", "live_parallel", "live_parallel_multiple"]
NO_CALL = {"irrelevance", "live_irrelevance"}
SOME_CALL = {"live_relevance"}
ONE_CALL = {"simple_python", "multiple", "live_simple", "live_multiple"}
VERSION = "BFCL_v4"
ID = re.compile(r"^(?P<category>[a-z_]+?)_\d+(?:-\d+)*$")
NORMALISE = re.compile(r"[ ,./\-_*^]")
# BFCL's Python type names and the type a value must have (ast_checker.PYTHON_TYPE_MAPPING)
PYTHON_TYPE = {"string": str, "integer": int, "float": float, "boolean": bool, "array": list, "tuple": list,
               "dict": dict, "any": str}
NESTED_TYPES = {"array", "tuple"}  # whose items' type is checked, one level deep


# ---------------------------------------------------------------- data

def data_dir() -> Path:
    """bfcl_eval/data of the installed wheel, found without importing the package."""
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("error: the bfcl-eval wheel is not installed: make bfcl-data (pip install --no-deps)")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def category_of(example_id: str) -> str | None:
    match = ID.match(example_id) if isinstance(example_id, str) else None
    return match.group("category") if match and match.group("category") in CATEGORIES else None


def load_category(category: str, directory: Path | None = None) -> list[dict]:
    """Each question of a category with its functions and (for AST categories) its possible answer."""
    directory = directory or data_dir()
    questions = read_rows(directory / f"{VERSION}_{category}.json")
    answer_file = directory / "possible_answer" / f"{VERSION}_{category}.json"
    answers = {row["id"]: row["ground_truth"] for row in read_rows(answer_file)} if answer_file.is_file() else {}
    for question in questions:
        question["category"] = category
        question["ground_truth"] = answers.get(question["id"])
    return questions


# ---------------------------------------------------------------- the AST rules (BFCL's ast_checker, Python)

def normalise(text: str) -> str:
    return NORMALISE.sub("", text).lower().replace("'", '"')


def standardised(value: Any) -> Any:
    return normalise(value) if isinstance(value, str) else value


def answer_type(options: list) -> type | None:
    """The type of the first possible value that is not "" (BFCL reads a variable's type from it)."""
    return next((type(o) for o in options if o != ""), None)


def type_fits(value: Any, options: list, expected: type | None, nested: type | None = None) -> tuple[bool, bool]:
    """(valid, is_variable), as BFCL's type_checker: the value has the declared type or, failing that, the
    type of the possible values (a "variable": `true` or `"x"` where the schema says string or array);
    arrays check their items one level deep against each possible list in turn, strictly (an int item is
    not a float)."""
    possible = answer_type(options)
    is_variable = possible is not None and possible is not expected
    if expected is not None and type(value) is expected:
        if nested is None:
            return True, is_variable
        for option in options:
            if not isinstance(option, list) or all(type_fits(item, option, nested)[0] for item in value):
                return True, is_variable
        return False, is_variable
    if possible is not None and type(value) is possible:
        return True, True
    return False, is_variable


def _as_list(options: Any) -> list:
    return list(options) if isinstance(options, (list, str)) else [options]


def list_fits(value: list, options: list) -> bool:
    """BFCL's list_checker: strings of the list normalised, the list equal to one possible list (an "" among
    the possible values reads as an empty list there)."""
    candidates = [[standardised(o) for o in option] for option in options if isinstance(option, (list, str))]
    return [standardised(v) for v in value] in candidates


def dict_fits(value: dict, options: list) -> bool:
    """BFCL's dict_checker: one possible dict whose keys cover the value's, each value among that key's
    possible values (strings normalised), every key left out marked optional by ""."""
    for option in options:
        if not isinstance(option, dict):
            continue
        keys_ok = all(key in option and standardised(v) in [standardised(o) for o in _as_list(option[key])]
                      for key, v in value.items())
        if keys_ok and all(key in value or "" in _as_list(allowed) for key, allowed in option.items()):
            return True
    return False


def list_of_dicts_fits(value: list, options: list) -> bool:
    """BFCL's list_dict_checker: as many dicts as one possible list, each fitting its dict in order."""
    return any(isinstance(option, (list, str)) and len(option) == len(value)
               and all(isinstance(v, dict) and dict_fits(v, [o]) for v, o in zip(value, option))
               for option in options)


def value_fits(value: Any, options: list, declared: str | None, items_declared: str | None) -> str | None:
    """None when a parameter's value passes BFCL's type check and value check, else why not."""
    expected = PYTHON_TYPE.get(declared) if isinstance(declared, str) else None
    nested = PYTHON_TYPE.get(items_declared) if declared in NESTED_TYPES and isinstance(items_declared, str) else None
    if declared == "float" and type(value) is int:  # BFCL: an int is accepted for a float
        value = float(value)
    fits, is_variable = type_fits(value, options, expected, nested)
    if not fits:
        return f"is not of type {declared}"
    if is_variable or expected in (None, int, float, bool):
        ok = value in options  # compared as Python does: 1 == 1.0 == True
    elif expected is dict:
        ok = dict_fits(value, options)
    elif expected is list and nested is dict:
        ok = list_of_dicts_fits(value, options)
    elif expected is str:
        ok = normalise(value) in [normalise(o) for o in options if isinstance(o, str)]
    else:
        ok = list_fits(value, options)
    return None if ok else f"= {json.dumps(value, ensure_ascii=False)[:80]} is not a possible value"


def check_call(call: dict, answer: dict, functions: dict[str, dict]) -> str | None:
    """None when the call matches the answer entry {name: {param: [possible values]}} under the answer's
    function description (BFCL's simple_function_checker), else the reason."""
    (name, expected), = answer.items()
    if call["name"] != name:
        return f"function {call['name']!r}, expected {name!r}"
    function = functions.get(name)
    if not isinstance(function, dict):
        return f"function {name!r} is not offered"
    params = function.get("parameters") or {}
    properties = params.get("properties") or {}
    arguments = call["arguments"]
    for required in params.get("required") or []:
        if required not in arguments:
            return f"{name}: required parameter {required!r} missing"
    for key, value in arguments.items():
        if key not in properties or key not in expected:
            return f"{name}: unexpected parameter {key!r}"
        details = properties[key] if isinstance(properties[key], dict) else {}
        items = details.get("items") if isinstance(details.get("items"), dict) else {}
        reason = value_fits(value, _as_list(expected[key]), details.get("type"), items.get("type"))
        if reason:
            return f"{name}: parameter {key!r} {reason}"
    for key, options in expected.items():
        if key not in arguments and "" not in _as_list(options):
            return f"{name}: parameter {key!r} missing"
    return None


def match_all(calls: list[dict], answers: list[dict], functions: dict[str, dict]) -> str | None:
    """As BFCL's parallel checker: as many calls as answers; each answer, in order, takes the first call not
    yet taken that matches it (first fit, not a best matching: BFCL's own rule)."""
    if len(calls) != len(answers):
        return f"{len(calls)} calls, expected {len(answers)}"
    taken: set[int] = set()
    for a, answer in enumerate(answers):
        reasons = []
        for c, call in enumerate(calls):
            if c in taken:
                continue
            reason = check_call(call, answer, functions)
            if reason is None:
                taken.add(c)
                break
            reasons.append(reason)
        else:
            return f"no call matches answer {a + 1} ({reasons[0] if reasons else 'no call left'})"
    return None


def judge(question: dict, predict: Any) -> tuple[bool, str | None]:
    """(valid, reason when invalid) for a model's text on a question; never raises."""
    try:
        calls = parse_tool_calls(predict)
        category = question["category"]
        if category in NO_CALL:
            return (not calls, None if not calls else f"{len(calls)} call(s) where none is relevant")
        if category in SOME_CALL:
            return (bool(calls), None if calls else "no call where one is relevant")
        if not calls:
            return False, "no call decoded"
        functions = {f["name"]: f for f in question["function"] if isinstance(f, dict) and "name" in f}
        answers = question["ground_truth"] or []
        if category in ONE_CALL:
            if len(calls) != 1:
                return False, f"{len(calls)} calls, expected exactly 1"
            reason = check_call(calls[0], answers[0], functions) if answers else "no possible answer"
        else:
            reason = match_all(calls, answers, functions)
        return reason is None, reason
    except Exception as error:  # a malformed question or answer file: reported, not raised
        return False, f"unscorable: {type(error).__name__}: {error}"


# ---------------------------------------------------------------- reports

def accuracies(verdicts: list[dict]) -> dict[str, list[float]]:
    by_category: dict[str, list[float]] = {}
    for v in verdicts:
        by_category.setdefault(v["category"], []).append(float(v["valid"]))
    return by_category


def summary_values(by_category: dict[str, list[float]]) -> dict[str, float | None]:
    def mean(values):
        return sum(values) / len(values) if values else None

    non_live = [mean(by_category[c]) for c in NON_LIVE_AST if by_category.get(c)]
    live = [x for c in LIVE_AST for x in by_category.get(c, [])]
    irrelevance = [x for c in ("irrelevance", "live_irrelevance") for x in by_category.get(c, [])]
    return {"non_live_ast": mean(non_live) if len(non_live) == len(NON_LIVE_AST) else None,
            "live_ast": mean(live), "relevance": mean(by_category.get("live_relevance", [])),
            "irrelevance": mean(irrelevance)}


def category_estimates(verdicts: list[dict], seed: int = stats.SEED) -> dict[str, dict]:
    """Per category: accuracy x100 with its 95% bootstrap interval, and n."""
    out = {}
    for category, values in sorted(accuracies(verdicts).items(), key=lambda kv: CATEGORIES.index(kv[0])):
        estimate = stats.intervals(stats.mean_statistic({"accuracy": values}, scale=100), len(values), seed=seed)
        out[category] = {"n": len(values), **estimate["accuracy"].as_dict(1)}
    return out


def score_predictions(predictions: list[dict], questions: dict[str, dict]) -> list[dict]:
    verdicts = []
    for row in predictions:
        question = questions.get(row.get("id"))
        if question is None:
            verdicts.append({"id": row.get("id"), "category": category_of(row.get("id")), "valid": False,
                             "reason": "not a question of the BFCL v4 data"})
            continue
        valid, reason = judge(question, row.get("predict"))
        verdicts.append({"id": row["id"], "category": question["category"], "valid": valid,
                         **({"reason": reason} if reason else {})})
    return verdicts


def read_predictions(path: Path) -> list[dict]:
    """The prediction rows; an unusable file (missing, not UTF-8, a damaged line) ends the run with one line
    (read_records), then every row without a BFCL v4 id is listed with its line."""
    rows, problems = [], []
    for index, row in read_records(path):
        where = f"{path}: line {index + 1}: field 'id'"
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            problems.append(f"{where}: a BFCL v4 id string is required")
        elif category_of(row["id"]) is None:
            problems.append(f"{where}: {row['id']!r} is not an id of {', '.join(CATEGORIES)}")
        else:
            rows.append(row)
    if problems:
        raise SystemExit("error: --predictions:\n  " + "\n  ".join(problems[:20]))
    return rows


def questions_for(categories: list[str]) -> dict[str, dict]:
    directory = data_dir()
    return {q["id"]: q for c in categories for q in load_category(c, directory)}


def score_file(path: Path, verdicts_path: Path | None) -> int:
    predictions = read_predictions(path)
    categories = sorted({category_of(r["id"]) for r in predictions}, key=CATEGORIES.index)
    verdicts = score_predictions(predictions, questions_for(categories))
    if verdicts_path:
        write_jsonl(verdicts_path, verdicts)
    by_category = accuracies(verdicts)
    result = {"n": len(verdicts), **{c: round(sum(v) / len(v), 4) for c, v in
                                     sorted(by_category.items(), key=lambda kv: CATEGORIES.index(kv[0]))},
              "summary": {k: None if v is None else round(v, 4) for k, v in summary_values(by_category).items()}}
    print(json.dumps(result))
    return 0


# ---------------------------------------------------------------- generate with a recipe's models

def prompt_of(question: dict):
    """An eval Example: the first turn list of the question, its system turn as system, the functions in
    JSON schema as the tools (a function whose types cannot be converted keeps BFCL's)."""
    from eval.datasets import Example

    turns = question["question"][0]
    system = "\n".join(t["content"] for t in turns if t.get("role") == "system")
    messages = [{"role": t["role"], "content": t["content"]} for t in turns if t.get("role") in ("user", "assistant")]
    tools = []
    for function in question["function"]:
        parameters = json_schema(function.get("parameters") or {}) or dict(function.get("parameters") or {})
        tools.append({"name": function["name"], "description": function.get("description", ""),
                      "parameters": renderable(parameters)})
    return Example(id=question["id"], system=system, messages=messages, label="",
                   tools=json.dumps(tools, ensure_ascii=False))


def renderable(parameters: dict) -> dict:
    """The schema as every template's tool formatter can print it: LLaMA-Factory's default one joins enum
    values as strings and reads items as one schema, so non-string enum values are shown as JSON and a
    tuple's list of item schemas as its first (display only: scoring reads BFCL's own schema)."""
    properties = {}
    for name, schema in (parameters.get("properties") or {}).items():
        schema = dict(schema) if isinstance(schema, dict) else {}
        if isinstance(schema.get("enum"), list):
            schema["enum"] = [v if isinstance(v, str) else json.dumps(v) for v in schema["enum"]]
        if isinstance(schema.get("items"), list):
            schema["items"] = schema["items"][0] if schema["items"] and isinstance(schema["items"][0], dict) else {}
        properties[name] = schema
    return {**parameters, "type": "object", "properties": properties}


def pick(questions: list[dict], limit: int | None, seed: int) -> list[dict]:
    import random

    if limit is None or limit >= len(questions):
        return questions
    chosen = sorted(random.Random(seed).sample(range(len(questions)), limit))
    return [questions[i] for i in chosen]


def markdown(report: dict) -> str:
    models = list(report["results"])
    lines = ["# BFCL v4 (offline, single-turn AST categories)", "",
             f"Recipe `{report['recipe']}`, template `{report['template']}`, greedy, {report['max_new_tokens']} new "
             f"tokens, {report['dtype']}. {report['sampling']}. Accuracy x100 with 95% bootstrap intervals; "
             "summary as BFCL's table (non-live AST: mean of the four categories; live AST and irrelevance: "
             "examples pooled).", "", "| category | n | " + " | ".join(models) + " |",
             "|---|---|" + "---|" * len(models)]
    for category in report["categories"]:
        cells = []
        for model in models:
            e = report["results"][model]["categories"].get(category)
            cells.append(f"{e['value']:.1f} [{e['low']:.1f}, {e['high']:.1f}]" if e else "n/a")
        n = report["results"][models[0]]["categories"].get(category, {}).get("n", 0)
        lines.append(f"| {category} | {n} | " + " | ".join(cells) + " |")
    for key in ("non_live_ast", "live_ast", "relevance", "irrelevance"):
        values = [report["results"][m]["summary"][key] for m in models]
        lines.append(f"| **{key}** | | " + " | ".join("n/a" if v is None else f"**{v:.1f}**" for v in values) + " |")
    for pair in report["differences"]:
        lines += ["", f"{pair['a']} - {pair['b']}, paired over the same questions: "
                  f"{pair['value']:+.1f} [{pair['low']:+.1f}, {pair['high']:+.1f}] (all categories pooled)"]
    return "\n".join(lines) + "\n\n![bfcl](bfcl.png)\n"


def run(args) -> int:
    from eval.figures import bar_chart
    from eval.generate import (
        complete_or_reuse,
        encode_prompt,
        get_template,
        load_model,
        pick_dtype,
        stop_token_ids,
    )
    from eval.run_eval import models_to_compare
    from scripts.recipes import read_recipe

    recipe = read_recipe(args.recipe)
    categories = [c for c in args.categories.split(",") if c]
    unknown = sorted(set(categories) - set(CATEGORIES))
    if unknown:
        raise SystemExit(f"error: --categories {', '.join(unknown)}: not one of {', '.join(CATEGORIES)}")
    models = models_to_compare(recipe, args.recipe, None)
    models = [("sft" if name == "tuned" else name, adapter) for name, adapter in models]
    directory = data_dir()
    questions = [q for c in categories for q in pick(load_category(c, directory), args.max_per_category, args.seed)]
    tokenizer, _ = load_model(recipe["model_name_or_path"], weights=False)
    template = get_template(tokenizer, recipe["template"])
    examples = [prompt_of(q) for q in questions]
    prompts = [encode_prompt(tokenizer, template, e) for e in examples]
    limit = args.max_prompt_tokens
    kept = [i for i, p in enumerate(prompts) if len(p) <= limit]
    too_long = len(prompts) - len(kept)
    questions, prompts = [questions[i] for i in kept], [prompts[i] for i in kept]
    dtype, why = pick_dtype(args.dtype)
    output = args.output_dir or Path(recipe["output_dir"]).parent / "bfcl"
    print(f"bfcl: {len(questions)} questions in {len(categories)} categories x {[m for m, _ in models]} "
          f"({too_long} longer than {limit} prompt tokens left out), {why}", file=sys.stderr)
    results, verdicts_of, seconds, reused = {}, {}, {}, []
    for name, adapter in models:
        texts = complete_or_reuse(recipe["model_name_or_path"], adapter, tokenizer, prompts, dtype=dtype,
                                  max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                                  stop_ids=stop_token_ids(tokenizer, template), name=name, seconds=seconds,
                                  reused=reused, program="bfcl", use_cache=not args.no_cache)
        predictions = [{"id": q["id"], "predict": t} for q, t in zip(questions, texts)]
        verdicts_of[name] = score_predictions(predictions, {q["id"]: q for q in questions})
        write_jsonl(output / f"predictions_{name}.jsonl", predictions)
        write_jsonl(output / f"verdicts_{name}.jsonl", verdicts_of[name])
        by_category = accuracies(verdicts_of[name])
        results[name] = {"categories": category_estimates(verdicts_of[name], args.seed),
                         "summary": {k: None if v is None else round(100 * v, 1)
                                     for k, v in summary_values(by_category).items()}}
    differences = []
    names = list(verdicts_of)
    for a, b in [(names[i], names[i - 1]) for i in range(1, len(names))]:
        values = {m: [float(v["valid"]) for v in verdicts_of[m]] for m in (a, b)}
        pair = stats.paired_differences(stats.mean_statistic({"accuracy": values[a]}, scale=100),
                                        stats.mean_statistic({"accuracy": values[b]}, scale=100),
                                        len(values[a]), seed=args.seed)["accuracy"]
        differences.append({"a": a, "b": b, **pair.as_dict(1)})
    sampling = (f"at most {args.max_per_category} questions per category (seeded sample, seed {args.seed})"
                if args.max_per_category else "every question") + \
        (f"; {too_long} left out as longer than {limit} prompt tokens" if too_long else "")
    report = {"recipe": relative_to_repo(args.recipe), "template": recipe["template"], "dtype": why,
              "max_new_tokens": args.max_new_tokens, "sampling": sampling, "categories":
              [c for c in categories if any(q["category"] == c for q in questions)],
              "n": len(questions), "results": results, "differences": differences}
    write_json(output / "report.json", report)
    write_json(output / "timings.json", {"generation_seconds": seconds, "reused_completions": reused})
    atomic_write_text(output / "report.md", markdown(report))
    bar_chart(output / "bfcl.png", {m: {c: e["value"] for c, e in r["categories"].items()} for m, r in results.items()},
              report["categories"], f"BFCL v4 offline: {args.recipe.stem} (95% CI)",
              {m: {c: (e["low"], e["high"]) for c, e in r["categories"].items()} for m, r in results.items()})
    print(markdown(report))
    print(f"bfcl: wrote {relative_to_repo(output)}/ (predictions_*.jsonl, verdicts_*.jsonl, report.json, report.md, bfcl.png)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--predictions", type=Path, help="score this JSONL of {id, predict} and print the rates")
    parser.add_argument("--verdicts", type=Path, help="with --predictions: one verdict per line, in input order")
    parser.add_argument("--recipe", type=Path, help="generate with the recipe's base, SFT (and GRPO) models")
    parser.add_argument("--categories", default=",".join(CATEGORIES))
    parser.add_argument("--max-per-category", type=int, help="a seeded sample per category (a short CPU run)")
    parser.add_argument("--max-new-tokens", type=int, default=192)
    parser.add_argument("--max-prompt-tokens", type=int, default=2048,
                        help="longer prompts are left out (counted in the report); BFCL's live tool lists are long")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", type=Path)
    parser.add_argument("--no-cache", action="store_true",
                        help="generate even where the same weights already completed these prompts (runs/.eval_cache)")
    args = parser.parse_args(argv)
    if bool(args.predictions) == bool(args.recipe):
        parser.error("give --predictions FILE (score) or --recipe R (generate and score)")
    if args.predictions:
        return score_file(args.predictions, args.verdicts)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
