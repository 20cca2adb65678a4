"""The layers run one way: shared leaf modules <- eval/ and reward/ libraries <- entry points <- bench/, tests/.
Read from the source (ast), so a new import that breaks the order fails here, not in a user's make merge."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Shared leaf modules: they import no other module of this repository but each other.
LEAVES = {"scripts.common", "scripts.prompts", "scripts.speech", "scripts.recipes", "scripts.hardware",
          "scripts.lock", "scripts.select_torch", "scripts.runs", "scripts.interview_format"}
# eval/ modules that are command-line entry points rather than libraries.
EVAL_ENTRY_POINTS = {"eval.run_eval", "eval.simulate", "eval.bfcl"}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


def repo_imports(path: Path) -> set[str]:
    """Modules of this repository that a file imports (module-level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name.split(".")[0] in {"eval", "reward", "scripts", "bench", "tests"} and (
                    REPO / (name.replace(".", "/") + ".py")).is_file():
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    files = [p for folder in ("eval", "reward", "scripts", "bench", "tests") for p in (REPO / folder).glob("*.py")]
    return {module_name(p): repo_imports(p) for p in files if p.name != "__init__.py"}


def layer(module: str) -> int:
    if module in LEAVES:
        return 0
    top = module.split(".")[0]
    if top in ("eval", "reward") and module not in EVAL_ENTRY_POINTS:
        return 1
    if top in ("scripts", "eval"):
        return 2
    return 3  # bench, tests


def test_imports_point_down_the_layers():
    wrong = [f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})"
             for module, targets in graph().items() for target in sorted(targets) if layer(target) > layer(module)]
    assert wrong == []


def test_no_import_cycle():
    edges = graph()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return path + [node, target]
            if target not in state and (cycle := visit(target, path + [node])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state:
            cycle = visit(start, [])
            assert cycle is None, " -> ".join(cycle)


def test_the_guard_sees_a_wrong_import(tmp_path):
    """The checker itself: a library importing an entry point is reported."""
    bad = tmp_path / "eval" / "bad.py"
    bad.parent.mkdir()
    bad.write_text("from scripts.grpo import main\n")
    assert "scripts.grpo" in repo_imports(bad) and layer("scripts.grpo") > layer("eval.bad")
