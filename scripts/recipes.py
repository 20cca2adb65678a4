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

from scripts.common import InputError, read_input_text


def read_recipe(path: Path) -> dict:
    """The recipe as a dict; a clear one-line error (file, line) for a missing or malformed file."""
    import yaml

    path = Path(path)
    try:
        recipe = yaml.safe_load(read_input_text(path, "recipe"))
    except InputError as error:
        sys.exit(f"error: {error}")
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        sys.exit(f"error: {path}{where}: not valid YAML ({getattr(error, 'problem', None) or error})")
    if not isinstance(recipe, dict):
        sys.exit(f"error: {path}: a recipe is a mapping of key: value, not {type(recipe).__name__}")
    return recipe


def training_dataset(recipe: dict) -> str:
    """The recipe's (first) training dataset name: `dataset` may list several, comma-separated."""
    return str(recipe["dataset"]).split(",")[0].strip()


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


SIMPLE_TYPES = (bool, int, float, str)


def _library_type(annotation: Any) -> Any:
    """A library field's annotation when it is a plain scalar (or Optional of one), else Any: library
    fields also take enums, literals and dict-or-path unions, which their own parser converts."""
    arms = [a for a in typing.get_args(annotation) if a is not type(None)] \
        if typing.get_origin(annotation) in (typing.Union, types.UnionType) else [annotation]
    if len(arms) == 1 and arms[0] in SIMPLE_TYPES:
        return annotation
    return Any


def field_types(*configs: type) -> dict[str, Any]:
    """{field: checkable annotation} of library config dataclasses (LLaMA-Factory's argument classes,
    TrainingArguments, GRPOConfig): the keys a recipe may use beside the launcher's own."""
    types_ = {}
    for config in configs:
        hints = typing.get_type_hints(config)
        for f in dataclasses.fields(config):
            types_.setdefault(f.name, _library_type(hints.get(f.name, Any)))
    return types_


def _type_problem(key: str, value: Any, annotation: Any) -> str | None:
    if _type_ok(value, annotation):
        return None
    hint = " (YAML reads 1e-3 as text: write 1.0e-3)" if isinstance(value, str) and \
        float in (annotation, *typing.get_args(annotation)) else ""
    return f"{key}: expected {getattr(annotation, '__name__', annotation)}, got {value!r}{hint}"


def _unknown_problem(unknown: list[str], known: set[str], what: str) -> str:
    import difflib

    named = []
    for key in unknown:
        close = difflib.get_close_matches(key, known, n=1)
        named.append(f"{key} (did you mean {close[0]}?)" if close else key)
    return f"unknown key(s) {', '.join(named)} ({what})"


def key_problems(recipe: dict, known: dict[str, Any], what: str) -> list[str]:
    """Each key of a wrong scalar type, and the unknown ones with the closest known key (known: field ->
    annotation); empty when all is well."""
    problems = [p for k, v in recipe.items() if k in known and (p := _type_problem(k, v, known[k]))]
    unknown = sorted(k for k in recipe if k not in known)
    if unknown:
        problems.append(_unknown_problem(unknown, set(known), what))
    return problems


def check_library_keys(recipe: dict, library: dict[str, Any], source: str, what: str) -> None:
    """Every key a known library field of the right scalar type; all problems in one message."""
    problems = key_problems(recipe, library, what)
    if problems:
        sys.exit(f"error: {source}: " + "; ".join(problems))


def split_recipe(recipe: dict, launcher: type, library: dict[str, Any], source: str):
    """(launcher dataclass instance, the library's keyword arguments) from a flat recipe.

    Keys that are launcher fields fill the dataclass; the rest must be library fields (library:
    field_types(...)). Both are type-checked. All problems are collected and reported together; the
    exit names the recipe.
    """
    own = {f.name: f for f in dataclasses.fields(launcher)}
    problems = key_problems(recipe, {**library, **typing.get_type_hints(launcher)},
                            f"neither a {launcher.__name__} field nor a field of the library's config")
    missing = sorted(name for name, f in own.items() if f.default is dataclasses.MISSING
                     and f.default_factory is dataclasses.MISSING and name not in recipe)
    if missing:
        problems.append(f"missing key(s) {', '.join(missing)}")
    if problems:
        sys.exit(f"error: {source}: " + "; ".join(problems))
    launcher_args = launcher(**{k: v for k, v in recipe.items() if k in own})
    return launcher_args, {k: v for k, v in recipe.items() if k not in own}
