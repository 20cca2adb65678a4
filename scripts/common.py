"""Small I/O helpers shared by the data scripts: atomic writes, checked input reading with row numbers,
a seeded train/val split, dataset_info.json registration under a lock, and rejection reports.

Input files are checked before anything is converted (read_input_text): a missing, empty, non-UTF-8 or
BOM-prefixed file, JSON that does not parse, an object where a list of records is expected, or a record
over MAX_RECORD_BYTES ends the run with one line naming the file (and row), before anything is written.
Records that parse but break the schema are rejected one by one and reported; the run goes on.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import random
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DATASET_INFO = REPO_ROOT / "dataset_info.json"
MAX_RECORD_BYTES = 8 * 1024 * 1024  # one record (a JSONL line); real rows are a few KB
BOM = "\ufeff"


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


class InputError(Exception):
    """A file that cannot be used at all: the message names the file (and line)."""


def read_input_text(path: Path, what: str = "input file") -> str:
    """The text of a UTF-8 input file; InputError for a missing, empty, BOM-prefixed or non-UTF-8 file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} not found: {path}" if not path.exists() else f"{path}: not a file")
    data = path.read_bytes()
    if not data.strip():
        raise InputError(f"{path}: the file is empty")
    if data.startswith(BOM.encode()):
        raise InputError(f"{path}: starts with a UTF-8 byte-order mark; save it as UTF-8 without BOM "
                         f"(sed -i '1s/^\\xEF\\xBB\\xBF//' {path})")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise InputError(f"{path}: line {line}: not UTF-8 text (byte {error.start}: "
                         f"{data[error.start:error.start + 1]!r})") from None


JSONL_SUFFIXES = (".jsonl", ".ndjson")


def load_records(path: Path) -> list[tuple[int, Any]]:
    """[(row, record)] of a JSON list or JSONL file (row: index in the list, or line index for JSONL),
    each record bounded in size. A .jsonl/.ndjson file is JSONL; any other is a JSON list, or JSONL when
    it is not one JSON document. InputError (file, line) for a file that is neither: bad JSON, a JSONL
    line that does not parse (a truncated or damaged file), one object spread over lines."""
    path = Path(path)
    text = read_input_text(path)
    if path.suffix.lower() not in JSONL_SUFFIXES:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            if text.lstrip().startswith("["):
                raise InputError(f"{path}: line {error.lineno}: not valid JSON ({error.msg}); "
                                 "a JSON list or JSONL file is expected") from None
            document = None  # not one document: JSONL
        except RecursionError:
            raise InputError(f"{path}: JSON nested too deeply") from None
        if isinstance(document, list):
            for row, record in enumerate(document):
                _check_record_size(path, row, len(json.dumps(record, ensure_ascii=False).encode()))
            return list(enumerate(document))
        if isinstance(document, dict) and "\n" in text.strip():
            raise InputError(f"{path}: one JSON object spread over lines; a JSON list of records or JSONL "
                             "(one record a line) is expected")
    records = []
    lines = text.split("\n")
    for row, line in enumerate(lines):
        if not line.strip():
            continue
        _check_record_size(path, row, len(line.encode()))
        try:
            records.append((row, json.loads(line)))
        except json.JSONDecodeError as error:
            cut = " (the file ends mid-record: truncated?)" if not any(x.strip() for x in lines[row + 1:]) else ""
            raise InputError(f"{path}: line {row + 1}: not valid JSON ({error.msg}){cut}") from None
        except RecursionError:
            raise InputError(f"{path}: line {row + 1}: JSON nested too deeply") from None
    return records


def _check_record_size(path: Path, row: int, size: int) -> None:
    if size > MAX_RECORD_BYTES:
        raise InputError(f"{path}: row {row}: {size / 1e6:.1f} MB, over the {MAX_RECORD_BYTES // 2**20} MiB a record "
                         "may take (is this the right file?)")


def read_rows(path: Path) -> list[Any]:
    """The records of a dataset file (a converter's output or a registered dataset), for a command line."""
    return [record for _, record in read_records(path)]


def read_records(path: Path) -> list[tuple[int, Any]]:
    """load_records for a command line: an unusable or empty file exits with one line naming it."""
    try:
        records = load_records(path)
    except InputError as error:
        sys.exit(f"error: {error}")
    if not records:
        sys.exit(f"error: {path}: no records in it")
    return records


def convert_records(paths: list[Path], convert, id_field: str | None = "id") -> tuple[list, list[Rejection], int]:
    """Run convert(record, where) -> (row, None) or (None, (field, reason)) over every record of the
    files (where: "FILE: row N", for messages that point at another row). Every file is read and checked
    first (read_records: an unusable file ends the run). Returns (rows, rejections, records read); a
    rejected record becomes a Rejection with its file and row, and the record's id_field where it has
    one. Nothing is dropped silently."""
    rows, rejections, read = [], [], 0
    for path, records in [(path, read_records(path)) for path in paths]:
        for index, record in records:
            read += 1
            row, problem = convert(record, f"{path}: row {index}")
            if problem is None:
                rows.append(row)
                continue
            record_id = record.get(id_field) if id_field and isinstance(record, dict) else None
            rejections.append(Rejection(str(path), index, *problem, record_id))
    return rows, rejections, read


def read_jsonl_objects(path: Path, required: tuple[str, ...]) -> list[dict]:
    """Rows of a JSONL file of objects that each have the required fields (prediction files; read_records).
    Exits with file, line and field on the first bad line: a metric over a partly read file would lie."""
    records = read_records(path)
    for line, row in records:
        if not isinstance(row, dict):
            sys.exit(f"error: {path}: line {line + 1}: expected a JSON object, got {type(row).__name__}")
        missing = [k for k in required if k not in row]
        if missing:
            sys.exit(f"error: {path}: line {line + 1}: missing field(s) {', '.join(missing)}")
    return [row for _, row in records]


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


@contextlib.contextmanager
def dataset_lock(info_path: Path = DATASET_INFO):
    """Held while a converter writes its split and updates the registry: two `make data` at once (or
    `make -j data`, whose converters share dataset_info.json) take turns instead of losing an entry to
    a read-modify-write race. Readers need no lock: every file is replaced whole (atomic_write_text)."""
    lock_path = Path(info_path).parent / f".{Path(info_path).name}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def register_datasets(entries: dict[str, dict], info_path: Path = DATASET_INFO) -> None:
    """Add or replace entries in dataset_info.json, keeping the others; keys sorted so that the
    file does not depend on which prepare script ran first. Call it under dataset_lock."""
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


def exit_if_nothing_converted(script: str, read: int, rows: list, rejections: list[Rejection]) -> None:
    """Every row rejected: report them and exit 1 before anything is written or registered."""
    if not rows:
        report(script, read, 0, rejections, "; nothing written")
        sys.exit(1)


def split_arguments(parser: argparse.ArgumentParser, default_input: Path, default_output_dir: Path,
                    default_name: str) -> argparse.ArgumentParser:
    """The options every converter shares: inputs, output dir, split and the registry."""
    parser.add_argument("--input", type=Path, nargs="+", default=[default_input])
    parser.add_argument("--output-dir", type=Path, default=default_output_dir)
    parser.add_argument("--val-ratio", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--name", default=default_name, help="dataset names become NAME_train / NAME_val")
    parser.add_argument("--dataset-info", type=Path,
                        help="the registry to update (default: the repo's dataset_info.json when --output-dir is "
                             "inside the repo; outside it, nothing is registered unless this names a registry)")
    return parser


def write_split(rows: list[dict], args: argparse.Namespace, entry: dict, variant: str = "") -> str:
    """Train/val split written to args.output_dir and registered as NAME_train / NAME_val (entry: the
    dataset_info fields besides file_name); a variant ("window") writes VARIANT_train.json and registers
    NAME_VARIANT_train. A row with a "split" key ("train" / "val") goes there (the key is dropped); the
    others are split seeded (split_train_val). Returns the summary's split part."""
    fixed = {"train": [], "val": []}
    free = []
    for row in rows:
        if row.get("split") in fixed:
            fixed[row["split"]].append({k: v for k, v in row.items() if k != "split"})
        else:
            free.append(row)
    train, val = split_train_val(free, args.val_ratio, args.seed)
    train, val = fixed["train"] + train, fixed["val"] + val
    stem = f"{variant}_" if variant else ""
    paths = {split: args.output_dir / f"{stem}{split}.json" for split in ("train", "val")}
    info_path = write_registered({f"{args.name}_{stem}train": (paths["train"], train),
                                  f"{args.name}_{stem}val": (paths["val"], val)},
                                 entry, args.output_dir, args.dataset_info)
    summary = f"{len(train)} train -> {paths['train']}, {len(val)} val -> {paths['val']}"
    return summary if info_path else \
        f"{summary}; not registered (outside the repo: --dataset-info FILE registers them there)"


def write_registered(datasets: dict[str, tuple[Path, list]], entry: dict, output_dir: Path,
                     dataset_info: Path | None) -> Path | None:
    """Write each dataset's rows and register it under its name (entry: the dataset_info fields besides
    file_name) in the registry registry_for picks, under its lock. Returns that registry, None if none."""
    info_path = registry_for(output_dir, dataset_info)
    with dataset_lock(info_path) if info_path else contextlib.nullcontext():
        for path, rows in datasets.values():
            write_json(path, rows)
        if info_path:  # LLaMA-Factory reads file_name relative to the registry's folder (the recipe's dataset_dir)
            register_datasets(info_path=info_path, entries={
                name: {"file_name": os.path.relpath(Path(path).resolve(), Path(info_path).resolve().parent),
                       **entry} for name, (path, _) in datasets.items()})
    return info_path


def registry_for(output_dir: Path, dataset_info: Path | None) -> Path | None:
    """The registry a converter updates: the one named, else the repo's when the output is inside the repo
    (a scratch conversion elsewhere must not re-point the repo's datasets at it), else none."""
    if dataset_info is not None:
        return Path(dataset_info)
    try:
        Path(output_dir).resolve().relative_to(REPO_ROOT)
    except ValueError:
        return None
    return DATASET_INFO
