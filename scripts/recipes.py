"""Recipes: the one reader every entry point uses, command-line overrides, and the one validator of a
launcher's own keys.

A launcher (scripts/grpo.py, scripts/train_classifier.py) declares its own keys as a typed dataclass,
as TRL's scripts do; every other key of the recipe must be a field of the library's config
(GRPOConfig, TrainingArguments). `split_recipe` reports every unknown and every mistyped key in one
message, the way torchtune validates configs, instead of stopping at the first.
"""
from __future__ import annotations

import dataclasses
import sys
import types
import typing
from pathlib import Path
from typing import Any


def read_recipe(path: Path) -> dict:
    """The recipe as a dict; a clear one-line error (file, line) for a missing or malformed file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        sys.exit(f"error: recipe not found: {path}")
    try:
        recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        sys.exit(f"error: {path}: not UTF-8 text (byte {error.start})")
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        sys.exit(f"error: {path}{where}: not valid YAML ({getattr(error, 'problem', None) or error})")
    if not isinstance(recipe, dict):
        sys.exit(f"error: {path}: a recipe is a mapping of key: value, not {type(recipe).__name__}")
    return recipe


def apply_overrides(recipe: dict, overrides: list[str]) -> dict:
    """`key=value` command-line overrides (values read as YAML) on top of a recipe, for the launchers."""
    import yaml

    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            sys.exit(f"error: override '{item}' is not key=value")
        recipe[key.strip()] = yaml.safe_load(value)
    return recipe


def _type_ok(value: Any, annotation: Any) -> bool:
    """Is value acceptable for a launcher field's annotation (int for float allowed, None for Optional)."""
    if annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arm) for arm in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin is not None:
        annotation = origin
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def split_recipe(recipe: dict, launcher: type, library_fields: set[str], source: str):
    """(launcher dataclass instance, the library's keyword arguments) from a flat recipe.

    Keys that are launcher fields fill the dataclass (type-checked); the rest must be library fields.
    All problems are collected and reported together; the exit names the recipe.
    """
    hints = typing.get_type_hints(launcher)
    own = {f.name: f for f in dataclasses.fields(launcher)}
    problems = []
    for key, value in recipe.items():
        if key in own and not _type_ok(value, hints[key]):
            problems.append(f"{key}: expected {getattr(hints[key], '__name__', hints[key])}, got {value!r}")
    unknown = sorted(k for k in recipe if k not in own and k not in library_fields)
    if unknown:
        problems.append(f"unknown key(s) {', '.join(unknown)} (neither a {launcher.__name__} field nor a "
                        "field of the library's config)")
    missing = sorted(name for name, f in own.items() if f.default is dataclasses.MISSING
                     and f.default_factory is dataclasses.MISSING and name not in recipe)
    if missing:
        problems.append(f"missing key(s) {', '.join(missing)}")
    if problems:
        sys.exit(f"error: {source}: " + "; ".join(problems))
    launcher_args = launcher(**{k: v for k, v in recipe.items() if k in own})
    return launcher_args, {k: v for k, v in recipe.items() if k not in own}
