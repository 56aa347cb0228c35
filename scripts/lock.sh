#!/usr/bin/env bash
# requirements-lock.txt: the exact versions `make setup` installs (so `make test`, `make demo` and CI
# run on them), resolved by uv from pyproject.toml's ranges with every extra, for CPython 3.11 on
# x86-64 Linux. pyproject.toml keeps ranges (rolegraph is a library); this file keeps one tested set.
#
#   make lock                        refresh it: keep every locked version that still fits the ranges
#   bash scripts/lock.sh --upgrade   take the newest versions the ranges allow (then run `make test`)
#   bash scripts/lock.sh --check     fail, saying what differs, if the lock no longer fits pyproject.toml
#
# torch is locked to its CPU build (scripts/lock-overrides.txt; PyPI's torch is a multi-GB CUDA build): uv finds it in
# $ROLEGRAPH_TORCH_WHEELS (default /opt/wheels) or else on PyTorch's CPU index; pip installs it the same
# way (on a machine without that folder: PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu).
set -euo pipefail
cd "$(dirname "$0")/.."

LOCK=requirements-lock.txt
TORCH_WHEELS=${ROLEGRAPH_TORCH_WHEELS:-/opt/wheels}

if [ -x .venv/bin/uv ]; then UV=.venv/bin/uv; elif command -v uv >/dev/null 2>&1; then UV=uv; else
  echo "uv is needed to resolve the lock: pip install 'uv>=0.13' (it is in rolegraph's dev extra)" >&2; exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -d "$TORCH_WHEELS" ]; then
  torch_source=(--find-links "$TORCH_WHEELS")
else
  torch_source=(--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
fi

compile() {  # compile OUTPUT [uv options]: an existing OUTPUT's versions are kept where they still fit
  local out=$1; shift
  "$UV" pip compile --quiet pyproject.toml --all-extras --python-version 3.11 \
    --python-platform x86_64-manylinux_2_28 --override scripts/lock-overrides.txt "${torch_source[@]}" \
    --custom-compile-command "make lock" -o "$out" "$@"
}

case "${1:-}" in
  "") compile "$LOCK" ;;
  --upgrade) compile "$LOCK" --upgrade ;;
  --check)
    cp "$LOCK" "$work/lock.txt"
    compile "$work/lock.txt"
    if ! diff -u "$LOCK" "$work/lock.txt" >"$work/diff.txt"; then
      echo "$LOCK no longer fits pyproject.toml; run \`make lock\` and commit the result:" >&2
      cat "$work/diff.txt" >&2
      exit 1
    fi
    echo "$LOCK fits pyproject.toml" >&2 ;;
  *) echo "usage: $0 [--upgrade | --check]" >&2; exit 2 ;;
esac
