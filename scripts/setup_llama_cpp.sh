#!/usr/bin/env bash
# llama.cpp for `make gguf`, from PyPI only: the llama-cpp-python sdist vendors llama.cpp.
#  - its convert_hf_to_gguf.py (+ conversion/ and gguf-py/) is unpacked into tools/llama.cpp/;
#  - llama-cpp-python itself is compiled from the same sdist into the venv (its quantize and inference
#    are what `make gguf` uses); about 4 minutes on 2 cores, pip's wheel cache makes a rebuild instant.
# Usage: scripts/setup_llama_cpp.sh [VENV_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.venv}
version=0.3.36
sha256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
cache=.cache/llama-cpp-python
sdist=$cache/llama_cpp_python-$version.tar.gz
export PIP_DISABLE_PIP_VERSION_CHECK=1

mkdir -p "$cache"
if [ ! -f "$sdist" ]; then
  "$venv/bin/python" -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$version" -d "$cache"
fi
echo "$sha256  $sdist" | sha256sum --check --quiet

rm -rf tools/llama.cpp && mkdir -p tools/llama.cpp
tar -xzf "$sdist" -C tools/llama.cpp --strip-components=3 \
  "llama_cpp_python-$version/vendor/llama.cpp/convert_hf_to_gguf.py" \
  "llama_cpp_python-$version/vendor/llama.cpp/conversion" \
  "llama_cpp_python-$version/vendor/llama.cpp/gguf-py"

# The converter tries SentencePiece first (and needs the module to find out it is not one);
# llama-cpp-python imports diskcache. Everything else is already in the lock (requirements/common.txt).
CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) "$venv/bin/python" -m pip install --quiet --no-deps \
  sentencepiece==0.2.1 diskcache==5.6.3 "$sdist"
"$venv/bin/python" -c "import llama_cpp; print('setup: llama-cpp-python', llama_cpp.__version__, '+ tools/llama.cpp/convert_hf_to_gguf.py')"
touch "$venv/.llama-cpp"
