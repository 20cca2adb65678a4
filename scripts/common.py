"""Small I/O helpers shared by the data scripts: atomic writes, record reading with row numbers,
a seeded train/val split, dataset_info.json registration and rejection reports."""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

REPO_ROOT = Path(__file__).resolve().parent.parent
DATASET_INFO = REPO_ROOT / "dataset_info.json"


def atomic_write_text(path: Path, text: str) -> None:
    """Write through a temporary sibling and rename, so readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dump_json(obj: Any) -> str:
    """The one JSON layout for files we write: UTF-8 text, stable indentation, trailing newline."""
    return json.dumps(obj, ensure_ascii=False, indent=2) + "\n"


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, dump_json(obj))


def write_jsonl(path: Path, rows: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


@dataclass(frozen=True)
class Rejection:
    file: str
    row: int  # 0-based index of the record in its file (line index for JSONL)
    field: str
    reason: str
    record_id: Any = None  # the record's own id, where it has one

    def __str__(self) -> str:
        where = f"row {self.row}" + (f" (id {self.record_id})" if self.record_id is not None else "")
        return f"{self.file}: {where}: field '{self.field}': {self.reason}"


def read_records(path: Path) -> Iterator[tuple[int, Any, Rejection | None]]:
    """Yield (row, record, None) for each record of a JSON list or JSONL file, or
    (row, None, Rejection) for a line that is not valid JSON. A file that cannot be read at all
    exits with a message naming it: there is nothing to convert."""
    path = Path(path)
    if not path.is_file():
        sys.exit(f"error: input file not found: {path}")
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            sys.exit(f"error: {path}: not valid JSON ({exc}); a JSON list or JSONL file is expected")
        for row, record in enumerate(records):
            yield row, record, None
        return
    for row, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        try:
            yield row, json.loads(line), None
        except json.JSONDecodeError as exc:
            yield row, None, Rejection(str(path), row, "<line>", f"not valid JSON: {exc.msg}")


def convert_records(paths: list[Path], convert, id_field: str | None = "id") -> tuple[list, list[Rejection], int]:
    """Run convert(record, where) -> (row, None) or (None, (field, reason)) over every record of the
    files (where: "FILE: row N", for messages that point at another row).
    Returns (rows, rejections, records read); a bad JSON line or a rejected record becomes a Rejection
    with its file and row, and the record's id_field where it has one. Nothing is dropped silently."""
    rows, rejections, read = [], [], 0
    for path in paths:
        for index, record, bad_line in read_records(path):
            read += 1
            if bad_line is not None:
                rejections.append(bad_line)
                continue
            row, problem = convert(record, f"{path}: row {index}")
            if problem is None:
                rows.append(row)
                continue
            record_id = record.get(id_field) if id_field and isinstance(record, dict) else None
            rejections.append(Rejection(str(path), index, *problem, record_id))
    return rows, rejections, read


def read_jsonl_objects(path: Path, required: tuple[str, ...]) -> list[dict]:
    """Rows of a JSONL file of objects that each have the required fields (prediction files).
    Exits with file, line and field on the first bad line: a metric over a partly read file would lie."""
    path = Path(path)
    if not path.is_file():
        sys.exit(f"error: file not found: {path}")
    rows = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            sys.exit(f"error: {path}: line {line_no}: not valid JSON ({exc.msg})")
        missing = [k for k in required if not isinstance(row, dict) or k not in row]
        if missing:
            sys.exit(f"error: {path}: line {line_no}: missing field(s) {', '.join(missing)}")
        rows.append(row)
    return rows


def schema_validator(path: Path):
    """A JSON Schema (draft 2020-12) validator for a schema file, the schema itself checked first."""
    from jsonschema import Draft202012Validator

    schema = json.loads(Path(path).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_problem(validator, record: Any) -> tuple[str, str] | None:
    """The most relevant violation as (field, message), the field written `messages[3].content` and a
    missing required field named itself; None when the record is valid."""
    from jsonschema.exceptions import best_match

    error = best_match(validator.iter_errors(record))
    if error is None:
        return None
    parts = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        parts.append(next(name for name in error.validator_value if name not in error.instance))
    field = ""
    for part in parts:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    return field or "<record>", error.message


def split_train_val(rows: list, val_ratio: float, seed: int) -> tuple[list, list]:
    """Seeded shuffle; the first round(n * val_ratio) shuffled rows (at least 1 when val_ratio > 0
    and n > 1) are validation. Same rows, same seed: same split."""
    if not 0.0 <= val_ratio < 1.0:
        raise ValueError(f"val_ratio must be in [0, 1), got {val_ratio}")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_val = round(len(rows) * val_ratio)
    if val_ratio > 0 and len(rows) > 1:
        n_val = max(n_val, 1)
    val_idx = set(order[:n_val])
    train = [rows[i] for i in order if i not in val_idx]
    val = [rows[i] for i in order[:n_val]]
    return train, val


def register_datasets(entries: dict[str, dict], info_path: Path = DATASET_INFO) -> None:
    """Add or replace entries in dataset_info.json, keeping the others; keys sorted so that the
    file does not depend on which prepare script ran first."""
    info_path = Path(info_path)
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else {}
    info.update(entries)
    write_json(info_path, dict(sorted(info.items())))


def registered_dataset(dataset_dir: str, name: str) -> tuple[Path, dict]:
    """(file, dataset_info entry) of a registered dataset; exits naming what is missing."""
    info_path = REPO_ROOT / dataset_dir / "dataset_info.json"
    info = json.loads(info_path.read_text(encoding="utf-8"))
    if name not in info:
        sys.exit(f"error: dataset '{name}' is not in {info_path} (run `make data`)")
    path = REPO_ROOT / dataset_dir / info[name]["file_name"]
    if not path.is_file():
        sys.exit(f"error: {path} not found (run `make data`)")
    return path, info[name]


def relative_to_repo(path: Path) -> str:
    """dataset_info.json lives at the repo root and recipes use `dataset_dir: .`, so file names
    are stored relative to the root."""
    path = Path(path).resolve()
    try:
        return path.relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


def report(script: str, read: int, converted: int, rejections: list[Rejection], extra: str = "") -> None:
    for rejection in rejections:
        print(f"REJECTED {rejection}", file=sys.stderr)
    print(f"{script}: {read} rows read, {converted} converted, {len(rejections)} rejected{extra}")


def split_arguments(parser: argparse.ArgumentParser, default_input: Path, default_output_dir: Path,
                    default_name: str) -> argparse.ArgumentParser:
    """The options every converter shares: inputs, output dir, split and the registry."""
    parser.add_argument("--input", type=Path, nargs="+", default=[default_input])
    parser.add_argument("--output-dir", type=Path, default=default_output_dir)
    parser.add_argument("--val-ratio", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--name", default=default_name, help="dataset names become NAME_train / NAME_val")
    parser.add_argument("--dataset-info", type=Path, default=DATASET_INFO, help="the registry to update")
    return parser


def write_split(rows: list[dict], args: argparse.Namespace, entry: dict) -> str:
    """Seeded train/val split written to args.output_dir and registered as NAME_train / NAME_val
    (entry: the dataset_info fields besides file_name). Returns the summary's split part."""
    train, val = split_train_val(rows, args.val_ratio, args.seed)
    paths = {"train": args.output_dir / "train.json", "val": args.output_dir / "val.json"}
    write_json(paths["train"], train)
    write_json(paths["val"], val)
    register_datasets(info_path=args.dataset_info, entries={
        f"{args.name}_{split}": {"file_name": relative_to_repo(path), **entry} for split, path in paths.items()
    })
    return f"{len(train)} train -> {paths['train']}, {len(val)} val -> {paths['val']}"
