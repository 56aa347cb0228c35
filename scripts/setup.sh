#!/usr/bin/env bash
# Create or refresh .venv with rolegraph, its test tools and the embedded CPU model server.
#
# Every package comes at the version requirements-lock.txt names (`make lock` refreshes it). The
# embedded server is llama.cpp's own `llama-server`, built once and cached by
# rolegraph/models/servers/setup_embedded.sh (the same steps `rolegraph setup embedded` runs for a
# pip-installed rolegraph). That build's shared libraries also serve the llama-cpp-python bindings
# (installed without a native build of their own), which count tokens with the model's own tokenizer.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${VENV:-.venv}

"$PY" -c 'import sys; assert sys.version_info >= (3, 11), "rolegraph needs Python 3.11 or newer"'
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }

SETUP_PYTHON="$VENV/bin/python"
# shellcheck source=../rolegraph/models/servers/setup_embedded.sh
source rolegraph/models/servers/setup_embedded.sh
build_llama_server
if ! ls "$BINDINGS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  # the Python bindings alone (seconds): their native library is the one built above
  llama_sdist
  CMAKE_ARGS="-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF" pip wheel --no-deps -w "$BINDINGS" "$SDIST"
fi

# Exactly the locked set (every extra), then rolegraph itself, editable, on top of it. torch is locked
# to its CPU build: from the wheel folder $ROLEGRAPH_TORCH_WHEELS (default /opt/wheels) where there is
# one, else from PyTorch's CPU index.
TORCH_WHEELS=${ROLEGRAPH_TORCH_WHEELS:-/opt/wheels}
if [ -d "$TORCH_WHEELS" ]; then torch_source=(--find-links "$TORCH_WHEELS")
else torch_source=(--extra-index-url https://download.pytorch.org/whl/cpu); fi
pip install --find-links "$BINDINGS" "${torch_source[@]}" -r requirements-lock.txt
pip install --no-deps -e .
install_model

# llama-server and its libraries into the environment; the bindings load the same libraries
install_llama_server "$VENV"
bindings_lib="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/llama_cpp/lib"
mkdir -p "$bindings_lib"
cp -a "$VENV"/lib/llama.cpp/lib*.so* "$bindings_lib/"

"$VENV/bin/python" -c 'import llama_cpp, rolegraph
from rolegraph.models.servers import find_default_gguf
from rolegraph.models.servers.embedded import find_llama_server
find_default_gguf(); find_llama_server()'
echo "ready: $VENV" >&2
