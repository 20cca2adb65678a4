#!/usr/bin/env bash
# Create a venv from the lock in requirements/ (exact pins, installed with --no-deps: nothing is resolved).
# Usage: scripts/setup_env.sh [VENV_DIR]            main environment: common.txt + one torch build
#        scripts/setup_env.sh --vllm [VENV_DIR]     the separate GRPO-with-vLLM environment (vllm.txt)
# Variables: TORCH=auto|cpu|cu130|cuNNN (scripts/select_torch.py), PYTHON=python3.X,
#            TORCH_CPU_INDEX (where the CPU build is, besides local wheel folders pip is configured with).
set -euo pipefail
cd "$(dirname "$0")/.."
lock=main
if [[ "${1:-}" == "--vllm" ]]; then lock=vllm; shift; fi
venv=${1:-.venv}
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
TORCH_CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
TORCH_VERSION=2.13.0

# The Pythons the lock has wheels for (`python -m scripts.lock pythons`; tests/test_lock.py keeps these in step).
if [[ $lock == vllm ]]; then supported="3.11 3.12 3.13"; else supported="3.11 3.12 3.13 3.14"; fi
python_version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }
python_ok() { local v; v=$(python_version "$1") && [[ " $supported " == *" $v "* ]]; }
if [[ -n "${PYTHON:-}" ]]; then
  command -v "$PYTHON" >/dev/null || { echo "error: PYTHON=$PYTHON not found; the lock supports Python $supported" >&2; exit 2; }
  python_ok "$PYTHON" || { echo "error: PYTHON=$PYTHON is Python $(python_version "$PYTHON"); the lock has wheels for Python $supported only" >&2; exit 2; }
  python=$PYTHON
else
  python=
  for candidate in python3.11 python3.12 python3.13 python3.14 python3; do
    if command -v "$candidate" >/dev/null && python_ok "$candidate"; then python=$candidate; break; fi
  done
  [[ -n $python ]] || { echo "error: no supported Python found: install Python ${supported// /, } (e.g. apt-get install python3.11, or pyenv install 3.11) or name one with PYTHON=..." >&2; exit 2; }
fi

rm -rf "$venv"
"$python" -m venv "$venv"
pip() { "$venv/bin/python" -m pip "$@"; }
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# What every environment must import (fail here, not halfway through a training run); each adds its engine.
check="import trl, peft, deepspeed, llamafactory.hparams.parser, jieba, rouge_chinese, nltk, jsonschema"

if [[ $lock == vllm ]]; then
  pip install --quiet --no-deps -r requirements/vllm.txt
  build=vllm
  check="$check, vllm"
else
  build=$("$python" scripts/select_torch.py "${TORCH:-auto}")
  pip install --quiet --no-deps -r requirements/common.txt
  case $build in
    cpu)
      # Short timeout: an unreachable index should fall back in seconds, not minutes.
      if ! pip install --quiet --no-deps --timeout 20 --retries 1 --extra-index-url "$TORCH_CPU_INDEX" -r requirements/torch-cpu.txt; then
        if [[ "${TORCH:-auto}" != auto ]]; then
          echo "error: torch==$TORCH_VERSION+cpu is neither in a local wheel folder nor reachable at $TORCH_CPU_INDEX; set TORCH_CPU_INDEX, or TORCH=cu130 (PyPI's build, runs on the CPU too; a 5.5 GB venv)" >&2
          exit 1
        fi
        echo "setup: torch $TORCH_VERSION+cpu cannot be had here (no local wheel, $TORCH_CPU_INDEX unreachable): installing PyPI's build instead (CUDA 13 libraries, a 5.5 GB venv; torch runs on the CPU without a GPU)" >&2
        build=cu130
        pip install --quiet --no-deps -r requirements/torch-cu130.txt
      fi ;;
    cu130)
      pip install --quiet --no-deps -r requirements/torch-cu130.txt ;;
    cu*)
      # Other CUDA builds live on PyTorch's index with their own CUDA wheels; re-pin the shared packages after.
      pip install --quiet --index-url "https://download.pytorch.org/whl/$build" "torch==$TORCH_VERSION+$build"
      pip install --quiet --no-deps -r requirements/common.txt ;;
  esac
  # llamafactory imports torchaudio at start-up; the 2.11 wheel's native library is built for another
  # torch. Without it torchaudio imports as pure Python (only audio loading is lost; no recipe uses it).
  rm -f "$site/torchaudio/lib/_torchaudio.abi3.so"
  check="$check, torch, llamafactory.api.app, uvicorn, sse_starlette, openai"  # make serve and its clients
fi

HF_HUB_OFFLINE=1 "$venv/bin/python" -c "$check"
echo "$build" > "$venv/.torch-build"
touch "$venv/.installed"
echo "setup: $venv ready: $("$venv/bin/python" -c 'import sys, torch, llamafactory; print(f"Python {sys.version.split()[0]}, torch {torch.__version__}, llamafactory {llamafactory.__version__}")') ($build build, $(du -sh "$venv" | cut -f1))"
