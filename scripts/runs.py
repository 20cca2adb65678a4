"""What a training launcher does with its output_dir: resume a killed run, leave a finished one alone,
start over only when asked. `make sft`, `make grpo` and `make classifier` all go through plan_run.

    finished  train_results.json is there (the Trainer writes it after the final model)
              -> nothing is trained, exit 0; the message says how to start over
    killed    complete checkpoint-N folders, no train_results.json -> resume from the newest one
    empty     (or only the logs of a run killed before its first checkpoint) -> train from step 0

Starting over is explicit: `overwrite_output_dir=true` replaces the run (its checkpoints are removed
first: a stale checkpoint-60 of the old run would otherwise be the one a later resume picks), or a
new `output_dir` keeps both.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

FINISHED = "train_results.json"  # Trainer.save_metrics("train", ...): written once the run has ended
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
STATE = "trainer_state.json"  # a checkpoint's last file: with it, the checkpoint is complete


@dataclass(frozen=True)
class RunPlan:
    resume_from: Path | None  # the checkpoint to resume from; None: from step 0
    message: str


def checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoint-N folders, oldest step first (one killed while being written is skipped)."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in output_dir.iterdir()
             if p.is_dir() and (m := CHECKPOINT.match(p.name)) and (p / STATE).is_file()]
    return [p for _, p in sorted(found)]


def is_finished(output_dir: Path) -> bool:
    return (Path(output_dir) / FINISHED).is_file()


def start_over_hint(command: str) -> str:
    return (f"To train again, `{command} ARGS=\"overwrite_output_dir=true\"` replaces it, "
            f"or `{command} ARGS=\"output_dir=runs/<new>\"` keeps both")


def plan_run(output_dir: Path, overwrite: bool, command: str) -> RunPlan | None:
    """The plan for a launcher, or None when the run has finished and nothing is to be done."""
    output_dir = Path(output_dir)
    if overwrite:
        old = [p for p in output_dir.glob("checkpoint-*") if p.is_dir()]  # complete or not
        for path in old:
            shutil.rmtree(path)
        (output_dir / FINISHED).unlink(missing_ok=True)
        removed = f" ({len(old)} old checkpoint(s) removed)" if old else ""
        return RunPlan(None, f"{output_dir}: overwrite_output_dir=true: starting over from step 0{removed}")
    if is_finished(output_dir):
        return None
    saved = checkpoints(output_dir)
    if saved:
        return RunPlan(saved[-1], f"{output_dir}: resuming the unfinished run from {saved[-1].name}")
    return RunPlan(None, f"{output_dir}: training from step 0")


def finished_message(output_dir: Path, command: str) -> str:
    return f"{output_dir} holds a finished run; its adapter is left as it is. {start_over_hint(command)}."


def announce_plan(output_dir: Path, overwrite: bool, command: str, who: str) -> RunPlan | None:
    """plan_run for a launcher, said on stdout: the plan, or (None) that the run has finished."""
    plan = plan_run(output_dir, overwrite, command)
    print(finished_message(Path(output_dir), command) if plan is None else f"{who}: {plan.message}", flush=True)
    return plan
