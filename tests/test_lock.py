"""The lock is complete for every target, the checker finds what is missing, and setup picks a torch build
and a Python the lock supports (scripts/lock.py, scripts/select_torch.py, scripts/setup_env.sh)."""
from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import lock, select_torch

REPO = Path(__file__).resolve().parent.parent


def stored_metadata() -> dict:
    return json.loads(lock.METADATA_FILE.read_text(encoding="utf-8"))


def test_shipped_lock_is_complete_for_every_target_and_python():
    assert lock.check(stored_metadata()) == []


def test_every_pin_has_metadata_and_every_target_a_python():
    metadata = stored_metadata()
    for target, files in lock.TARGETS.items():
        for pin in lock.read_pins(files).values():
            assert f"{pin.name}=={pin.version}" in metadata, (target, pin)
        assert lock.supported_pythons(target, metadata), target


def test_stored_metadata_matches_the_installed_environment():
    """The snapshot is the real metadata: for every pin of this venv's target, the installed
    distribution has the pinned version and the same Requires-Dist."""
    metadata = stored_metadata()
    build = (Path(sys.prefix) / ".torch-build")
    target = build.read_text().strip() if build.exists() else "cpu"
    if target not in lock.TARGETS:
        pytest.skip(f"venv of build {target}")
    compared = 0
    for pin in lock.read_pins(lock.TARGETS[target]).values():
        try:
            dist = importlib.metadata.distribution(pin.name)
        except importlib.metadata.PackageNotFoundError:
            pytest.fail(f"{pin.name} is pinned but not installed")
        assert dist.version == pin.version, pin
        stored = metadata[f"{pin.name}=={pin.version}"]["requires_dist"]
        assert sorted(dist.requires or []) == stored, pin.name
        compared += 1
    assert compared > 80


def _fake_lock(tmp_path, monkeypatch, pins: dict[str, str], omitted: str = "") -> None:
    (tmp_path / "t.txt").write_text("".join(f"{n}=={v}\n" for n, v in pins.items()))
    (tmp_path / "omitted.txt").write_text(omitted)
    monkeypatch.setattr(lock, "REQUIREMENTS", tmp_path)
    monkeypatch.setattr(lock, "OMITTED_FILE", tmp_path / "omitted.txt")
    monkeypatch.setattr(lock, "TARGETS", {"t": ["t.txt"]})


def _meta(*requires, python=">=3.9"):
    return {"requires_python": python, "requires_dist": list(requires), "wheels": ["py3-none-any"], "sdist": False}


def test_checker_reports_missing_wrong_version_extras_markers_and_stale_omissions(tmp_path, monkeypatch):
    _fake_lock(tmp_path, monkeypatch, {"app": "1.0", "lib": "2.0", "extra-dep": "0.1"},
               omitted="app webui  not needed here\napp gone  stale line\n")
    metadata = {
        "app==1.0": _meta("lib>=3", "missing-pkg", "webui", "lib[fast]", "winonly; sys_platform == 'win32'",
                          "new-py; python_version >= '3.12'", "opt; extra == 'dev'"),
        "lib==2.0": _meta("extra-dep>=1; extra == 'fast'"),
        "extra-dep==0.1": _meta(),
    }
    problems = lock.check(metadata)
    text = "\n".join(problems)
    assert "requires 'lib>=3', the lock has lib==2.0" in text
    assert "requires 'missing-pkg': not in the lock" in text
    assert "lib==2.0 requires \"extra-dep>=1; extra == 'fast'\", the lock has extra-dep==0.1" in text  # extra followed
    assert "winonly" not in text and "opt;" not in text       # other platform / unrequested extra: skipped
    assert "py3.12: app==1.0 requires \"new-py" in text and "py3.11: app==1.0 requires \"new-py" not in text
    assert "app -> gone is met or not required" in text
    assert "webui" not in text                                  # omitted with a reason: accepted


def test_checker_passes_a_complete_lock_and_rejects_loose_pins(tmp_path, monkeypatch):
    _fake_lock(tmp_path, monkeypatch, {"app": "1.0", "lib": "2.0"})
    assert lock.check({"app==1.0": _meta("lib>=2,<3"), "lib==2.0": _meta()}) == []
    (tmp_path / "t.txt").write_text("app>=1.0\n")
    with pytest.raises(SystemExit, match="t.txt:1: not an exact pin"):
        lock.read_pins(["t.txt"])


@pytest.mark.parametrize("tag, python, fits", [
    ("py3-none-any", "3.13", True),
    ("cp311-cp311-manylinux_2_28_x86_64", "3.11", True),
    ("cp311-cp311-manylinux_2_28_x86_64", "3.12", False),
    ("cp38-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64", "3.12", True),
    ("cp313-cp313t-manylinux_2_28_x86_64", "3.13", False),    # free-threaded build
    ("cp312-cp312-musllinux_1_2_x86_64", "3.12", False),
    ("cp312-cp312-manylinux_2_28_aarch64", "3.12", False),
    ("cp312-cp312-win_amd64", "3.12", False),
])
def test_wheel_tags(tag, python, fits):
    assert lock.wheel_fits(tag, python) is fits


def test_setup_script_python_list_is_what_the_lock_supports():
    script = (REPO / "scripts/setup_env.sh").read_text()
    main, vllm = re.search(r'then supported="([^"]+)"; else supported="([^"]+)"', script).groups()[::-1]
    metadata = stored_metadata()
    assert main.split() == lock.supported_pythons("cu130", metadata)
    assert vllm.split() == lock.supported_pythons("vllm", metadata)


@pytest.mark.parametrize("requested, driver, build", [
    ("auto", None, "cpu"),
    ("auto", "580.65.06", "cu130"),
    ("auto", "595.10", "cu130"),
    ("auto", "570.124.06", "cu128"),
    ("auto", "535.104", "cu128"),
    ("auto", "470.57", "cpu"),
    ("cpu", "580.1", "cpu"),
    ("CU130", None, "cu130"),
    ("cu126", None, "cu126"),
])
def test_torch_build_selection(requested, driver, build):
    assert select_torch.select(requested, driver)[0] == build


def test_torch_build_selection_rejects_unknown():
    with pytest.raises(ValueError, match="use auto, cpu, cu130"):
        select_torch.select("rocm", None)


def _fake_bin(tmp_path, name, body):
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def test_auto_reads_the_driver_from_nvidia_smi(tmp_path):
    _fake_bin(tmp_path, "nvidia-smi", 'echo "580.82.07"\necho "580.82.07"\n')
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}")
    out = subprocess.run([sys.executable, "scripts/select_torch.py", "auto"], cwd=REPO, env=env,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "cu130" and "580.82.07" in out.stderr
    _fake_bin(tmp_path, "nvidia-smi", 'echo "NVIDIA-SMI has failed" >&2; exit 9\n')
    out = subprocess.run([sys.executable, "scripts/select_torch.py", "auto"], cwd=REPO, env=env,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "cpu"


def test_setup_fails_at_once_naming_the_python_to_install(tmp_path):
    venv = tmp_path / "venv"
    out = subprocess.run(["scripts/setup_env.sh", str(venv)], cwd=REPO, capture_output=True, text=True,
                         env=dict(os.environ, PYTHON="python3.99-missing"))
    assert out.returncode == 2 and "PYTHON=python3.99-missing not found" in out.stderr
    assert "3.11 3.12 3.13 3.14" in out.stderr
    old = _fake_bin(tmp_path, "python3.9", 'echo 3.9\n')
    out = subprocess.run(["scripts/setup_env.sh", str(venv)], cwd=REPO, capture_output=True, text=True,
                         env=dict(os.environ, PYTHON=str(old)))
    assert out.returncode == 2 and "is Python 3.9; the lock has wheels for Python 3.11 3.12 3.13 3.14 only" in out.stderr
    assert not venv.exists()
