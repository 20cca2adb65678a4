"""`make sft`: check an SFT recipe, decide resume / skip / start over, then hand it to llamafactory-cli.

    python -m scripts.sft RECIPE.yaml [key=value ...]

1. The recipe is read (one-line errors for a missing, empty, non-UTF-8 or malformed file) and every
   key is checked against LLaMA-Factory's own argument classes: an unknown key (with the closest known
   one) or a mistyped scalar is reported, all in one message, before any model is loaded.
2. output_dir (scripts/runs.py): a finished run is left alone (exit 0, and how to start over); a killed
   run resumes from its newest complete checkpoint; `overwrite_output_dir=true` starts over.
3. `llamafactory-cli train RECIPE key=value ...`, with resume_from_checkpoint / overwrite_output_dir added
   as step 2 decided. On one device (CPU, one GPU) it runs in this process with the LM head computed on
   the trained positions only (scripts/sparse_logits.py: the same loss, 1.36x faster a CPU step;
   SFT_FULL_LOGITS=1 turns it off); where LLaMA-Factory launches torchrun itself (several GPUs,
   FORCE_TORCHRUN=1) or runs its v1 trainer (USE_V1=1), `llamafactory-cli` replaces this process as it is.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from scripts.recipes import apply_overrides, check_library_keys, field_types, read_recipe
from scripts.runs import announce_plan


def llamafactory_fields() -> dict:
    from llamafactory.hparams.parser import _TRAIN_ARGS  # the dataclasses `llamafactory-cli train` parses into

    return field_types(*_TRAIN_ARGS)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        sys.exit("usage: python -m scripts.sft RECIPE.yaml [key=value ...]")
    recipe_path, overrides = Path(argv[0]), argv[1:]
    recipe = apply_overrides(read_recipe(recipe_path), overrides)
    if recipe.get("stage", "sft") != "sft":
        sys.exit(f"error: {recipe_path} is a '{recipe['stage']}' recipe: make sft trains stage: sft")
    check_library_keys(recipe, llamafactory_fields(), str(recipe_path), "not a LLaMA-Factory argument")
    if "output_dir" not in recipe:
        sys.exit(f"error: {recipe_path}: output_dir is missing")

    extra = []
    if recipe.get("resume_from_checkpoint") is None:  # an explicit resume_from_checkpoint is the user's choice
        plan = announce_plan(Path(recipe["output_dir"]), bool(recipe.get("overwrite_output_dir")), f"make sft RECIPE={recipe_path}", "sft")
        if plan is None:
            return 0
        extra = ([f"resume_from_checkpoint={plan.resume_from}", "overwrite_output_dir=false"] if plan.resume_from
                 else ["overwrite_output_dir=true"])  # nothing in output_dir is worth keeping

    cli_args = ["train", str(recipe_path), *overrides, *extra]
    if needs_its_own_process():
        cli = shutil.which("llamafactory-cli", path=str(Path(sys.executable).parent)) or "llamafactory-cli"
        os.execv(cli, [cli, *cli_args])
        return 1  # not reached
    from llamafactory.cli import main as llamafactory_cli

    from scripts import sparse_logits

    if sparse_logits.install():
        print("make sft: LM head on the trained positions only (scripts/sparse_logits.py; SFT_FULL_LOGITS=1 turns it off)")
    sys.argv = ["llamafactory-cli", *cli_args]
    llamafactory_cli()
    return 0


def needs_its_own_process() -> bool:
    """True where the wrapped SFT trainer would not be the one that trains: LLaMA-Factory's v1 trainer
    (USE_V1), or torchrun's worker processes (launcher.py's rule: forced, or several devices)."""
    from llamafactory.extras.misc import get_device_count, is_env_enabled, use_kt, use_ray

    return is_env_enabled("USE_V1") or is_env_enabled("USE_MCA") or is_env_enabled("FORCE_TORCHRUN") or (
        get_device_count() > 1 and not use_ray() and not use_kt())


if __name__ == "__main__":
    raise SystemExit(main())
