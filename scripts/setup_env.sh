#!/usr/bin/env bash
# Create .venv from requirements.txt (a complete lock, installed with --no-deps).
# Usage: scripts/setup_env.sh [VENV_DIR]      (PYTHON=python3.11 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.venv}
python=${PYTHON:-python3.11}
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --no-deps -r requirements.txt

# llamafactory imports torchaudio at start-up; the PyPI wheel's native library needs CUDA libraries.
# Without it torchaudio imports as pure Python (only audio loading is lost, which no recipe here uses).
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
rm -f "$site/torchaudio/lib/_torchaudio.abi3.so"

# Fail here, not halfway through a training run, if the environment is unusable.
HF_HUB_OFFLINE=1 "$venv/bin/python" -c "import llamafactory.hparams.parser, trl, peft, deepspeed, jieba, rouge_chinese, nltk, jsonschema"
touch "$venv/.installed"
echo "setup: $venv ready ($("$venv/bin/python" -c 'import llamafactory; print("llamafactory", llamafactory.__version__)'))"
