#!/usr/bin/env bash
# CI's second resolution: rolegraph's core dependencies at the lowest versions pyproject.toml allows
# (uv's --resolution lowest-direct), in a virtualenv of their own, running the unit tests of the core:
# graphs, traces, replay, evaluations and the LangChain bridge (with the ui extra, which some of those
# tests drive). Prints the versions it used and how long it took. The locked set (requirements-lock.txt)
# runs every test through `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

if [ -x .venv/bin/uv ]; then UV=.venv/bin/uv; elif command -v uv >/dev/null 2>&1; then UV=uv; else
  echo "uv is needed: pip install 'uv>=0.13' (it is in rolegraph's dev extra)" >&2; exit 2
fi
CORE_TESTS=(
  tests/unit/test_graph_shapes.py tests/unit/test_hooks.py tests/unit/test_functional_api.py
  tests/unit/test_interrupts.py tests/unit/test_own_graph.py tests/unit/test_refinebot.py
  tests/unit/test_agent.py tests/unit/test_config.py tests/unit/test_checkpoint_values.py
  tests/unit/test_traces.py tests/unit/test_trace_cli.py tests/unit/test_model_call_event.py
  tests/unit/test_replay_value.py tests/unit/test_resume.py tests/unit/test_blame.py
  tests/unit/test_totest_shapes.py
  tests/unit/test_eval_runner.py tests/unit/test_eval_errors.py tests/unit/test_eval_timeouts.py
  tests/unit/test_langchain.py tests/unit/test_langgraph_internals.py
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export VIRTUAL_ENV="$work/venv"
"$UV" venv --quiet --python "${PYTHON:-3.11}" "$VIRTUAL_ENV"
# The test tools at their locked versions (exact pins stay as they are under lowest-direct).
mapfile -t tools < <(grep -E '^(pytest|pytest-asyncio|hypothesis)==' requirements-lock.txt)
"$UV" pip install --quiet --resolution lowest-direct -e ".[ui]" "${tools[@]}"
installed=$SECONDS

echo "lowest direct versions of rolegraph's core dependencies:" >&2
core=$("$VIRTUAL_ENV/bin/python" - <<'EOF'
import re
from importlib.metadata import requires, version
names = [re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0] for r in requires("rolegraph") or [] if "extra ==" not in r]
names += ["langgraph-checkpoint", "langchain-core"]  # what LangGraph brings, which rolegraph uses too
print(" ".join(f"{n}=={version(n)}" for n in names))
EOF
)
echo "  $core" >&2

"$VIRTUAL_ENV/bin/python" -m pytest -m "not embedded" -p no:cacheprovider -q "${CORE_TESTS[@]}"
echo "lowest-direct run: $((installed - start)) s to install, $((SECONDS - installed)) s of tests" >&2
