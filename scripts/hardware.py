"""What the machine computes natively, and the training precision that follows from it.

    python -m scripts.hardware precision RECIPE.yaml [auto|bf16|fp32]

prints the `key=value` override `make sft` / `make grpo` pass for a CPU recipe (`use_cpu: true`):
`bf16=true` where the CPU has native bf16 (avx512_bf16 or AMX: the CPU SFT recipe ran 1.43x faster
per step there), nothing where it has not (emulated bf16 is slower than fp32), `bf16=false` for
PRECISION=fp32. GPU recipes keep what they say. The choice and its reason go to stderr, so the log
shows which precision a run used.
"""
from __future__ import annotations

import sys
from pathlib import Path

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def read_cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def cpu_name(cpuinfo: str | None = None) -> str:
    """The CPU's model name, as benchmarks record it."""
    for line in (read_cpuinfo() if cpuinfo is None else cpuinfo).splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def cpu_bf16_flags(cpuinfo: str | None = None) -> list[str]:
    """The native-bf16 instruction sets this CPU reports (empty: bf16 would be emulated, and slower)."""
    if cpuinfo is None:
        cpuinfo = read_cpuinfo()
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags |= set(line.split(":", 1)[-1].split())
    return [flag for flag in BF16_CPU_FLAGS if flag in flags]


def training_precision(recipe: dict, requested: str = "auto", cpuinfo: str | None = None) -> tuple[str, str]:
    """(override or "", why) for a recipe."""
    if requested not in ("auto", "bf16", "fp32"):
        raise SystemExit(f"error: PRECISION={requested!r}: use auto, bf16 or fp32")
    if requested == "bf16":
        return "bf16=true", "bf16 (PRECISION=bf16)"
    if requested == "fp32":
        return "bf16=false", "fp32 (PRECISION=fp32)"
    if not recipe.get("use_cpu"):
        return "", "as the recipe says (a GPU recipe)"
    flags = cpu_bf16_flags(cpuinfo)
    if flags:
        return "bf16=true", f"bf16 (the CPU has {', '.join(flags)}; PRECISION=fp32 for fp32)"
    return "", "fp32 (the CPU has no avx512_bf16 or AMX, so bf16 would be emulated and slower)"


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "precision":
        sys.exit("usage: python -m scripts.hardware precision RECIPE.yaml [auto|bf16|fp32]")
    from scripts.recipes import read_recipe

    override, why = training_precision(read_recipe(Path(argv[1])), argv[2] if len(argv) > 2 else "auto")
    print(f"precision: {why}", file=sys.stderr)
    print(override)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
