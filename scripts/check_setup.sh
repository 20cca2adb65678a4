#!/usr/bin/env bash
# The README's setup as a machine with only PyPI would run it: a clean clone of HEAD, no local wheel
# folders and no pip configuration (PIP_CONFIG_FILE=/dev/null, no PIP_* variables), then `make setup`,
# `make model data`, one CPU training step of the default recipe and `make test-fast`.
# Usage: scripts/check_setup.sh [WORKDIR]     (make check-setup; TORCH=... picks the build as in make setup)
# Without WORKDIR the clone goes to a fresh temporary folder that is removed on exit, pass or fail: its
# venv holds a CUDA torch (~6 GB), and CI machines that run this on every push would fill their disk.
# A WORKDIR you name is kept for you to look into.
# Without a GPU and without PyTorch's CPU index (as on the development machines), TORCH=auto falls back
# to PyPI's CUDA build, which is also what a GPU machine with a recent driver installs.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -ge 1 ]; then
  work=$1 workdir_fate=""
else
  work=$(mktemp -d) workdir_fate=" (removed on exit)"
  trap 'rm -rf "$work"' EXIT
fi
rm -rf "$work/clone"
git clone -q "$repo" "$work/clone"
cd "$work/clone"
for var in $(compgen -e | grep '^PIP_' || true); do unset "$var"; done
export PIP_CONFIG_FILE=/dev/null
stage() { local name=$1; shift; local start=$SECONDS; "$@"; echo "check-setup: $name took $((SECONDS - start)) s"; }
stage "make setup" make setup
# The proof that nothing came from a local wheel folder: pip reports where torch came from.
.venv/bin/python - <<'PY'
import importlib.metadata as md, json
dist = md.distribution("torch")
url = json.loads(dist.read_text("direct_url.json")) if dist.read_text("direct_url.json") else None
print(f"check-setup: torch {dist.version} installed from {'an index' if url is None else url['url']}")
assert url is None, "torch came from a local file"
PY
stage "make model data" make model data
stage "make sft (1 step)" make sft ARGS="max_steps=1 save_steps=1 output_dir=runs/check_setup"
test -s runs/check_setup/adapter_model.safetensors
stage "make test-fast" make test-fast
echo "check-setup: passed in $SECONDS s; venv $(du -sh .venv | cut -f1) ($(cat .venv/.torch-build) build), workdir $work$workdir_fate"
