"""Faults, and what happens: bad input files and recipes, concurrent `make data`, hostile chat input,
killed and rerun trainings. Each row of the README's fault table is a test here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scripts import prepare_followup, prepare_interview, prepare_xlam
from scripts.runs import FINISHED, checkpoints, plan_run
from tests.conftest import REPO

CONVERTERS = {"prepare_xlam": prepare_xlam, "prepare_interview": prepare_interview,
              "prepare_followup": prepare_followup}
HUNDRED_MB = 100 * 1024 * 1024


def bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """{case: (file, what the one-line error must say)} for every bad input of the fault table."""
    def write(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    record = b'{"id": "a", "query": "q"}'
    return {
        "missing": (tmp_path / "nope.json", "not found"),
        "empty": (write("empty.json", b""), "the file is empty"),
        "blank": (write("blank.jsonl", b"\n \n"), "the file is empty"),
        "not_utf8": (write("latin1.jsonl", record[:-1] + b', "x": "caf\xe9"}\n'), "line 1: not UTF-8"),
        "bom": (write("bom.json", b"\xef\xbb\xbf[" + record + b"]"), "byte-order mark"),
        "truncated_list": (write("cut.json", b"[" + record + b", {\"id\": \"b\", \"qu"), "not valid JSON"),
        "truncated_jsonl": (write("cut.jsonl", record + b"\n" + record[:12]), "truncated"),
        "object": (write("object.json", b'{\n  "rows": [' + record + b"]\n}\n"), "one JSON object"),
        "huge_line": (write("huge.jsonl", b'{"id": "' + b"x" * HUNDRED_MB + b'"}\n'), "MiB a record may take"),
    }


CASES = ["missing", "empty", "blank", "not_utf8", "bom", "truncated_list", "truncated_jsonl", "object", "huge_line"]


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    return bad_files(tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize("script", sorted(CONVERTERS))
@pytest.mark.parametrize("case", CASES)
def test_converter_bad_file_is_one_line_and_writes_nothing(script, case, bad, tmp_path):
    path, expected = bad[case]
    out, info = tmp_path / "out", tmp_path / "dataset_info.json"
    with pytest.raises(SystemExit) as exit_info:
        CONVERTERS[script].main(["--input", str(path), "--output-dir", str(out), "--dataset-info", str(info)])
    message = str(exit_info.value.code)
    assert message.startswith("error: ") and "\n" not in message
    assert str(path) in message and expected in message
    assert not out.exists() and not info.exists()


def test_a_second_bad_input_stops_the_run_before_the_first_is_written(bad, tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"id": 1, "query": "q", "tools": "[]", "answers": "[]"}) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="byte-order mark"):
        prepare_xlam.main(["--input", str(good), str(bad["bom"][0]), "--output-dir", str(tmp_path / "out"),
                           "--dataset-info", str(tmp_path / "info.json")])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("script", sorted(CONVERTERS))
def test_every_row_rejected_exits_1_and_registers_nothing(script, tmp_path, capsys):
    src = tmp_path / "rows.jsonl"
    src.write_text('{"id": "a"}\n{"id": "b"}\n', encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        CONVERTERS[script].main(["--input", str(src), "--output-dir", str(tmp_path / "out"),
                                 "--dataset-info", str(tmp_path / "info.json")])
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert "2 rows read, 0 converted, 2 rejected; nothing written" in captured.out
    assert captured.err.count("REJECTED") == 2
    assert not (tmp_path / "out").exists() and not (tmp_path / "info.json").exists()


@pytest.mark.parametrize("module, flag", [("eval.text_metrics", "--predictions"), ("eval.fc_metrics", "--predictions"),
                                          ("eval.decision_metrics", "--predictions"),
                                          ("eval.interview_policy", "--transcripts")])
@pytest.mark.parametrize("case", ["missing", "empty", "not_utf8", "bom", "truncated_jsonl", "huge_line"])
def test_metric_cli_bad_file_is_one_line_without_traceback(module, flag, case, bad):
    path, expected = bad[case]
    result = subprocess.run([sys.executable, "-m", module, flag, str(path)], cwd=REPO,
                            capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0] and expected in lines[0]


def test_converter_cli_bad_file_has_no_traceback(bad, tmp_path):
    path, _ = bad["not_utf8"]
    result = subprocess.run([sys.executable, "-m", "scripts.prepare_xlam", "--input", str(path), "--output-dir",
                             str(tmp_path / "out"), "--dataset-info", str(tmp_path / "info.json")], cwd=REPO,
                            capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {path}: line 1: not UTF-8 text (byte 35: b'\\xe9')"]


# ---------------------------------------------------------------- recipes

RECIPE_LAUNCHERS = {
    "sft": ("scripts.sft", "configs/fc_smollm2_lora_sft_cpu.yaml"),
    "grpo": ("scripts.grpo", "configs/fc_smollm2_grpo_cpu.yaml"),
    "classifier": ("scripts.train_classifier", "configs/followup_classifier_cpu.yaml"),
}


def recipe_variants(tmp_path: Path, base: Path) -> dict[str, tuple[Path, str]]:
    text = (REPO / base).read_text(encoding="utf-8")
    variants = {
        "missing": (None, "recipe not found"),
        "empty": (b"", "the file is empty"),
        "not_utf8": (text.encode() + b"# caf\xe9\n", "not UTF-8"),
        "bom": (b"\xef\xbb\xbf" + text.encode(), "byte-order mark"),
        "bad_yaml": (text.encode() + b"learning_rate: [1\n", "not valid YAML"),
        "unknown_key": (text.encode() + b"lerning_rate: 0.1\n", "unknown key(s) lerning_rate (did you mean learning_rate?)"),
        "mistyped": (text.encode() + b"learning_rate: 1e-3\n", "learning_rate: expected float, got '1e-3'"),
    }
    files = {}
    for case, (data, expected) in variants.items():
        path = tmp_path / f"{case}.yaml"
        if data is not None:
            path.write_bytes(data)
        files[case] = (path, expected)
    return files


@pytest.mark.parametrize("launcher", sorted(RECIPE_LAUNCHERS))
def test_bad_recipe_is_one_line_before_anything_runs(launcher, tmp_path):
    import importlib

    module, base = RECIPE_LAUNCHERS[launcher]
    main = importlib.import_module(module).main
    for case, (path, expected) in recipe_variants(tmp_path, Path(base)).items():
        with pytest.raises(SystemExit) as exit_info:
            main([str(path)])
        message = str(exit_info.value.code)
        assert message.startswith("error: ") and "\n" not in message, (case, message)
        assert str(path) in message and expected in message, (case, message)


# ---------------------------------------------------------------- fuzz: converters never raise

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20)
FIELDS = {"prepare_xlam": ["id", "query", "tools", "answers"],
          "prepare_interview": ["id", "job", "topics", "system", "conversations", "score", "review"],
          "prepare_followup": ["id", "question", "answer", "context", "label", "reason", "features"]}


@st.composite
def records(draw, fields):
    """Records near the schema: the expected keys with arbitrary values, some dropped, some extra."""
    keys = draw(st.lists(st.sampled_from(fields), unique=True)) + draw(st.lists(st.text(max_size=6), max_size=2))
    return {key: draw(JSON) for key in keys}


@pytest.mark.parametrize("script", sorted(CONVERTERS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_converters_reject_or_convert_every_record_and_never_raise(script, data, tmp_path):
    rows = data.draw(st.lists(records(FIELDS[script]) | JSON, min_size=1, max_size=6))
    as_jsonl = data.draw(st.booleans())
    src = tmp_path / ("in.jsonl" if as_jsonl else "in.json")
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) if as_jsonl else json.dumps(rows)
    src.write_text(text, encoding="utf-8")
    extra = (True,) if script == "prepare_followup" else ()  # with_reason
    converted, rejections, read = CONVERTERS[script].convert_files([src], *extra)[:3]
    blank_lines = sum(1 for line in text.split("\n")[:-1] if not line.strip()) if as_jsonl else 0
    assert read == len(rows) - blank_lines == len(converted) + len(rejections)
    for rejection in rejections:
        assert str(src) in str(rejection) and rejection.field and rejection.reason


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_fuzz_any_bytes_are_converted_or_one_error_line(data, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(data)
    try:
        prepare_xlam.convert_files([src])
    except SystemExit as exit_info:
        assert str(exit_info.code).startswith("error: ") and "\n" not in str(exit_info.code)


# ---------------------------------------------------------------- concurrency

WRITER = """
import os, sys
from scripts import prepare_xlam
for _ in range(int(sys.argv[4])):  # until the reader has seen enough (the stop file), at most argv[4] times
    prepare_xlam.main(["--input", sys.argv[1], "--output-dir", sys.argv[2], "--dataset-info", sys.argv[3],
                       "--name", sys.argv[5]])
    if os.path.exists(sys.argv[6]):
        break
"""
READS_WHILE_WRITING = 30


def test_concurrent_conversions_never_leave_a_half_written_file_or_lose_an_entry(tmp_path):
    from scripts.gen_xlam_sample import generate

    src = tmp_path / "xlam.json"
    src.write_text(json.dumps(generate(300, seed=1)), encoding="utf-8")
    info, out = tmp_path / "dataset_info.json", tmp_path / "fc"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    # two writers on the same files and registry, under different dataset names, while a reader reads;
    # the writers go on until the reader has read READS_WHILE_WRITING times (a fixed count of conversions
    # was over before the reader got going on a fast machine: 2 reads)
    stop = tmp_path / "stop"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(src), str(out), str(info), "2000", name,
                                 str(stop)], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
               for name in ("a", "b")]
    reads, problems = [0], []

    def reader():
        while any(w.poll() is None for w in writers):
            for path in (info, out / "train.json", out / "val.json"):
                if path.exists():
                    try:
                        json.loads(path.read_text(encoding="utf-8"))
                        reads[0] += 1
                    except (ValueError, FileNotFoundError) as error:
                        problems.append(f"{path.name}: {error}")
            if reads[0] >= READS_WHILE_WRITING:
                stop.touch()

    thread = threading.Thread(target=reader)
    thread.start()
    for writer in writers:
        assert writer.wait(timeout=600) == 0, writer.stderr.read().decode()[-2000:]
    thread.join()
    assert not problems and reads[0] >= READS_WHILE_WRITING
    assert set(json.loads(info.read_text(encoding="utf-8"))) == {"a_train", "a_val", "b_train", "b_val"}
    single = tmp_path / "single"
    prepare_xlam.main(["--input", str(src), "--output-dir", str(single), "--dataset-info", str(tmp_path / "i2.json")])
    assert (single / "train.json").read_bytes() == (out / "train.json").read_bytes()
    assert not list(out.glob("*.tmp")) and not list(tmp_path.glob("*.tmp"))


# ---------------------------------------------------------------- output_dir: resume, keep, start over

def fake_checkpoint(output_dir: Path, step: int, complete: bool = True) -> Path:
    path = output_dir / f"checkpoint-{step}"
    path.mkdir(parents=True)
    if complete:
        (path / "trainer_state.json").write_text("{}", encoding="utf-8")
    return path


def test_run_plans(tmp_path):
    run = tmp_path / "run"
    assert plan_run(run, False, "make sft").resume_from is None  # nothing there: from step 0
    fake_checkpoint(run, 10), fake_checkpoint(run, 20), fake_checkpoint(run, 30, complete=False)
    assert [p.name for p in checkpoints(run)] == ["checkpoint-10", "checkpoint-20"]
    assert plan_run(run, False, "make sft").resume_from == run / "checkpoint-20"  # killed mid-save at 30
    (run / FINISHED).write_text("{}", encoding="utf-8")
    assert plan_run(run, False, "make sft") is None  # finished: left alone
    (run / "adapter_model.safetensors").write_bytes(b"weights")
    fresh = plan_run(run, True, "make sft")  # the explicit choice: the old checkpoints go
    assert fresh.resume_from is None and "3 old checkpoint(s) removed" in fresh.message
    assert not list(run.glob("checkpoint-*")) and not (run / FINISHED).exists()


@pytest.mark.parametrize("launcher", ["grpo", "classifier"])
def test_grpo_and_classifier_leave_a_finished_run_alone(launcher, tmp_path, capsys):
    import importlib

    module, base = RECIPE_LAUNCHERS[launcher]
    out = tmp_path / "run"
    out.mkdir()
    (out / FINISHED).write_text("{}", encoding="utf-8")
    (out / "adapter_model.safetensors").write_bytes(b"the adapter")
    assert importlib.import_module(module).main([str(REPO / base), f"output_dir={out}"]) == 0
    assert "holds a finished run" in capsys.readouterr().out
    assert (out / "adapter_model.safetensors").read_bytes() == b"the adapter"


KILL_AFTER_SAVE = """
import os, signal, sys, yaml
from transformers import TrainerCallback
from llamafactory.train.tuner import run_exp

class KillAfterSave(TrainerCallback):  # SIGKILL right after the checkpoint of step N is on disk
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)

run_exp(args=yaml.safe_load(open(sys.argv[1], encoding="utf-8")), callbacks=[KillAfterSave()])
"""


def losses(output_dir: Path) -> dict[int, float]:
    state = json.loads((output_dir / "trainer_state.json").read_text(encoding="utf-8"))
    return {row["step"]: row["loss"] for row in state["log_history"] if "loss" in row}


@pytest.mark.slow
def test_killed_sft_resumes_to_the_same_losses_and_a_finished_one_is_kept(tiny_qwen3, tmp_path):
    config = yaml.safe_load((REPO / "configs/interview_qwen3_0.6b_lora_sft_12gb.yaml").read_text(encoding="utf-8"))
    for key in ("eval_dataset", "eval_strategy", "eval_steps", "val_size", "per_device_eval_batch_size"):
        config.pop(key, None)
    config.update(model_name_or_path=str(tiny_qwen3), max_steps=4, save_steps=2, logging_steps=1, cutoff_len=128,
                  per_device_train_batch_size=2, gradient_accumulation_steps=1, learning_rate=1e-3, use_cpu=True,
                  bf16=False, fp16=False, report_to="none", preprocessing_num_workers=1, dataloader_num_workers=0,
                  gradient_checkpointing=False, max_samples=64, plot_loss=False)
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))

    def recipe(name: str) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({**config, "output_dir": str(tmp_path / name)}), encoding="utf-8")
        return path

    def sft(path: Path) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "scripts.sft", str(path)], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        return result

    sft(recipe("straight"))
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_SAVE, str(recipe("killed")), "2"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9  # SIGKILL, right after checkpoint-2
    assert [p.name for p in checkpoints(tmp_path / "killed")] == ["checkpoint-2"]
    assert not (tmp_path / "killed" / FINISHED).exists()

    resumed = sft(recipe("killed"))
    assert "resuming the unfinished run from checkpoint-2" in resumed.stdout
    straight, again = losses(tmp_path / "straight"), losses(tmp_path / "killed")
    assert sorted(again) == sorted(straight) == [1, 2, 3, 4]
    assert again == pytest.approx(straight, rel=1e-4)

    adapter = tmp_path / "killed" / "adapter_model.safetensors"
    before = (adapter.read_bytes(), adapter.stat().st_mtime_ns)
    rerun = sft(recipe("killed"))
    assert "holds a finished run" in rerun.stdout and "overwrite_output_dir=true" in rerun.stdout
    assert (adapter.read_bytes(), adapter.stat().st_mtime_ns) == before


KILL_CLASSIFIER_AFTER_FIRST_SAVE = """
import os, signal, sys
import transformers

class KillAfterSave(transformers.TrainerCallback):  # SIGKILL right after the first checkpoint is on disk
    def on_save(self, args, state, control, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

init = transformers.Trainer.__init__
def with_kill(self, *args, **kwargs):
    init(self, *args, **kwargs)
    self.add_callback(KillAfterSave())
transformers.Trainer.__init__ = with_kill
from scripts.train_classifier import main
main(sys.argv[1:])
"""


def history(output_dir: Path) -> tuple[dict, dict]:
    """({step: training loss}, {epoch: dev macro-F1}) from the newest checkpoint's trainer state."""
    state = json.loads((checkpoints(output_dir)[-1] / "trainer_state.json").read_text(encoding="utf-8"))
    return ({row["step"]: row["loss"] for row in state["log_history"] if "loss" in row},
            {row["epoch"]: row["eval_macro_f1"] for row in state["log_history"] if "eval_macro_f1" in row})


@pytest.mark.slow
def test_killed_classifier_resumes_to_the_same_losses(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    # logging every 17 steps: an epoch is 51 steps (1,620 rows / 32), so no logged window spans the resume
    small = [str(REPO / "configs/followup_classifier_cpu.yaml"), "num_train_epochs=3", "logging_steps=17",
             "max_length=96", "tiny_bert={hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, "
             "intermediate_size: 64}"]

    def run(name: str, *command: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *command, *small, f"output_dir={tmp_path / name}"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=900)

    assert run("straight", "-m", "scripts.train_classifier").returncode == 0
    killed = run("killed", "-c", KILL_CLASSIFIER_AFTER_FIRST_SAVE)
    assert killed.returncode == -9 and len(checkpoints(tmp_path / "killed")) == 1  # after epoch 1 of 3
    assert not (tmp_path / "killed" / FINISHED).exists()
    resumed = run("killed", "-m", "scripts.train_classifier")
    assert resumed.returncode == 0 and "resuming the unfinished run from checkpoint-" in resumed.stdout
    (losses_straight, f1_straight), (losses_again, f1_again) = history(tmp_path / "straight"), history(tmp_path / "killed")
    assert sorted(f1_again) == sorted(f1_straight) == [1.0, 2.0, 3.0]
    assert losses_again == pytest.approx(losses_straight, rel=1e-4) and f1_again == pytest.approx(f1_straight)


# ---------------------------------------------------------------- make chat under hostile input

@pytest.mark.slow
def test_chat_survives_hostile_stdin_and_keeps_its_transcript(tiny_qwen3, tmp_path):
    transcript = tmp_path / "t.json"
    hostile = ("好" * 50_000 + "\n").encode() + b"\x1b[31mred\x1b[0m \x00\x07bell\tand tab\n" \
        + b"caf\xe9 \xff\xfe not utf-8\n" + "不知道。\n".encode()
    command = [sys.executable, "-m", "scripts.chat", "--model", str(tiny_qwen3), "--template", "qwen3_nothink",
               "--max-new-tokens", "4", "--topics", "Redis 持久化,索引,GIL,TCP", "--transcript", str(transcript),
               "--rules", "--greedy"]
    result = subprocess.run(command, input=hostile, cwd=REPO, capture_output=True, timeout=600,
                            env=dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO)))
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]
    session = json.loads(transcript.read_text(encoding="utf-8"))
    answers = [t["content"] for t in session["turns"] if t["role"] == "candidate"][1:]
    assert answers[0] == "好" * 2000  # cut to MAX_ANSWER_CHARS, and the candidate was told
    assert answers[1] == "red bell and tab"  # escape sequences and control characters dropped
    assert answers[2] == "caf\ufffd \ufffd\ufffd not utf-8"  # bytes that are not UTF-8 became U+FFFD
    assert answers[3] == "不知道。" and session["ended_by"] == "eof"
    assert "只保留前 2000 字" in result.stderr.decode()


def test_recipes_keep_their_runs_and_gpu_recipes_checkpoint_every_30_minutes_at_most():
    """Every recipe resumes rather than overwrites and keeps a bounded number of checkpoints; on its GPU
    (configs/profiles.yaml), a kill loses at most ~30 minutes of make plan's estimated step time."""
    from scripts.plan import plan_for

    profiles = yaml.safe_load((REPO / "configs/profiles.yaml").read_text(encoding="utf-8"))
    for path in sorted((REPO / "configs").glob("*.yaml")):
        recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
        if path.name == "profiles.yaml":
            continue
        assert not recipe.get("overwrite_output_dir"), path.name
        if recipe.get("save_strategy") != "epoch":
            assert recipe.get("save_strategy", "steps") == "steps" and recipe["save_total_limit"] <= 2, path.name
        if path.name in profiles:
            plan, _, _ = plan_for(path)
            minutes = recipe["save_steps"] * plan.step_seconds / 60
            assert minutes <= 30, f"{path.name}: a checkpoint every {minutes:.0f} min"
