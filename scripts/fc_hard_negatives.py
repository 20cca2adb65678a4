"""Hard no-call rows for function calling: a training call row's query asked again with tools that share a
parameter name with the ones it needs (a city, a date, a text) but cannot serve it, and declined.

    python -m scripts.fc_hard_negatives [--train data/fc/train.json] [--val data/fc/val.json]
        [--output data/fc/hard_negatives.json] [--name fc_hard_neg] [--rows 110] [--seed 7]
        [--stand-ins FILE] [--dataset-info FILE] [--show N]

Why: the no-call rows of the converted data offer tools drawn at random, which are easy to decline; the
declines a small model misses are queries near an offered tool ("Italian food in Seoul" offered only
get_weather: both take a city). Adding 110 such rows to the CPU recipe took the declines from 13 / 10 to 14 / 14
of 17 and exact match from 80.00 / 74.17 to 83.33 / 83.33 at seeds 7 / 42 (docs/evaluation.md, run 12).

How a row is made: a training row that ends in calls, whose query is not also a val query, is a candidate
when some tool of the training split (neither a tool it calls nor a stand-in for one) declares a parameter
of the same name as a called tool. Seeded, --rows candidates are drawn; each offers 1-2 of those neighbours
and 0-2 other tools, shuffled, and the reply is the converter's decline (scripts.prepare_xlam.decline_reply,
in the query's language). Tools are taken from the training split only, so a --split tools val stays unseen.

A neighbour must not be able to serve the query, or the row teaches the model to decline a request it should
call. Stand-ins are groups of tools that can replace each other (schedule_interview / book_meeting_room);
the default groups are the offline sample's (scripts.gen_xlam_sample.STAND_INS). On other data (real xlam),
pass --stand-ins FILE, a JSON list of lists of tool names, and read some rows (--show N) before training.

Same input, seed and options: byte-identical output. Registered (as NAME) in the repo's dataset_info.json
when the output is inside the repo, or in --dataset-info FILE.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Iterable

from scripts.common import InputError, read_rows, relative_to_repo, write_registered
from scripts.gen_xlam_sample import STAND_INS
from scripts.prepare_xlam import DATASET_ENTRY, decline_reply

DEFAULT_TRAIN = Path("data/fc/train.json")
DEFAULT_VAL = Path("data/fc/val.json")
DEFAULT_OUTPUT = Path("data/fc/hard_negatives.json")


def tool_pool(rows: list[dict]) -> dict[str, dict]:
    """Every tool the rows offer, by name (the first definition of a name wins)."""
    pool: dict[str, dict] = {}
    for row in rows:
        for tool in json.loads(row["tools"]):
            pool.setdefault(tool["name"], tool)
    return pool


def parameter_names(tool: dict) -> set[str]:
    return set((tool.get("parameters") or {}).get("properties", {}))


def called_tools(row: dict) -> set[str] | None:
    """The names a row calls, or None for a row that ends in a text reply."""
    last = row["conversations"][-1]
    if last["from"] != "function_call":
        return None
    return {call["name"] for call in json.loads(last["value"])}


def hard_negatives(train: list[dict], val: list[dict], rows: int, seed: int,
                   stand_ins: Iterable[set[str]] = STAND_INS) -> tuple[list[dict], int]:
    """(the hard no-call rows, how many candidates there were)."""
    stand_ins = [set(group) for group in stand_ins]
    pool = tool_pool(train)
    params = {name: parameter_names(tool) for name, tool in pool.items()}
    val_queries = {row["conversations"][0]["value"] for row in val}
    candidates = []
    for row in train:
        needed = called_tools(row)
        if needed is None or row["conversations"][0]["value"] in val_queries:
            continue
        excluded = needed.union(*(group for group in stand_ins if group & needed))
        wanted = set().union(*(params[name] for name in needed if name in params))
        near = sorted(name for name in pool if name not in excluded and params[name] & wanted)
        if near:
            candidates.append((row, excluded, near))
    rng = random.Random(seed)
    made = []
    for row, excluded, near in rng.sample(candidates, min(rows, len(candidates))):
        offered = rng.sample(near, min(len(near), rng.randint(1, 2)))
        others = [name for name in pool if name not in excluded and name not in offered]
        offered += rng.sample(others, min(len(others), rng.randint(0, 2)))
        rng.shuffle(offered)
        query = row["conversations"][0]["value"]
        made.append({"id": f"hard-{row['id']}",
                     "conversations": [{"from": "human", "value": query},
                                       {"from": "gpt", "value": decline_reply(query, offered)}],
                     "tools": json.dumps([pool[name] for name in offered], ensure_ascii=False)})
    return made, len(candidates)


def read_split(path: Path) -> list[dict]:
    """A converted ShareGPT split (scripts.prepare_xlam's output); a row it did not write is an error that
    names the file, row and id (every row is checked before any is used)."""
    rows = read_rows(path)
    for i, row in enumerate(rows):
        try:
            tools, first, last = json.loads(row["tools"]), row["conversations"][0], row["conversations"][-1]
            shaped = isinstance(tools, list) and all(isinstance(t, dict) and isinstance(t.get("name"), str)
                                                     for t in tools) and isinstance(first["value"], str)
            calls = json.loads(last["value"]) if last["from"] == "function_call" else []
            shaped = shaped and isinstance(calls, list) and all(isinstance(c, dict) and "name" in c for c in calls)
        except (KeyError, IndexError, TypeError, json.JSONDecodeError):
            shaped = False
        if not shaped:
            row_id = row.get("id") if isinstance(row, dict) else None
            raise InputError(f"{path}: row {i} (id {row_id}): not a converted function-calling row "
                             "({id, conversations, tools} as scripts.prepare_xlam writes it)")
    return rows


def read_stand_ins(path: Path) -> list[set[str]]:
    try:
        groups = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read stand-in groups ({exc})") from None
    if not isinstance(groups, list) or not all(
            isinstance(g, list) and all(isinstance(n, str) for n in g) for g in groups):
        raise InputError(f"{path}: stand-ins must be a JSON list of lists of tool names")
    return [set(group) for group in groups]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, default=DEFAULT_TRAIN)
    parser.add_argument("--val", type=Path, default=DEFAULT_VAL, help="its queries are never re-asked")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--name", default="fc_hard_neg", help="the dataset_info.json entry")
    parser.add_argument("--rows", type=int, default=110, help="how many rows (fewer if fewer candidates)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stand-ins", type=Path, help="JSON list of lists of interchangeable tool names "
                                                       "(default: the offline sample's groups)")
    parser.add_argument("--dataset-info", type=Path, help="register here (file name relative to it)")
    parser.add_argument("--show", type=int, default=0, metavar="N", help="print the first N rows made")
    args = parser.parse_args(argv)
    if args.rows < 0:
        parser.error("--rows must be >= 0")
    try:
        stand_ins = read_stand_ins(args.stand_ins) if args.stand_ins else STAND_INS
        made, candidates = hard_negatives(read_split(args.train), read_split(args.val), args.rows, args.seed,
                                          stand_ins)
    except InputError as exc:
        print(f"fc_hard_negatives: error: {exc}", file=sys.stderr)
        return 1
    info_path = write_registered({args.name: (args.output, made)}, DATASET_ENTRY, args.output.parent,
                                 args.dataset_info)
    where = f"registered as {args.name} in {relative_to_repo(info_path)}" if info_path else \
        "not registered (outside the repo: --dataset-info FILE registers it there)"
    print(f"fc_hard_negatives: {len(made)} rows (of {candidates} candidates) -> {args.output}; {where}")
    for row in made[:args.show]:
        offered = ", ".join(tool["name"] for tool in json.loads(row["tools"]))
        print(f"  {row['id']}: {row['conversations'][0]['value'][:100]}\n    offered: {offered}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
