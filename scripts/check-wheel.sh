#!/usr/bin/env bash
# CI: rolegraph as a user installs it. Builds the sdist and the wheel (`python -m build`), checks their
# metadata (`twine check --strict`), installs the wheel (not editable) into a fresh virtualenv with only
# its core dependencies (at their locked versions), and from a folder outside this checkout runs a
# user's own graph against a stub OpenAI-compatible server, `rolegraph --help`, `rolegraph trace view`
# (its page carries the packaged assets), `rolegraph setup embedded` and `rolegraph ui` (refused without
# the ui extra, serving with it). Prints how long each part took.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-.venv/bin/python}
start=$SECONDS
step() { echo "check-wheel: $* ($((SECONDS - start)) s)" >&2; }

work=$(mktemp -d)
stub_pid=""
ui_pid=""
cleanup() {
  for pid in $ui_pid $stub_pid; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

"$PY" -m build --sdist --wheel --outdir "$work/dist" . >"$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; exit 1; }
"$PY" -m twine check --strict "$work"/dist/*
wheel=$(ls "$work"/dist/rolegraph-*.whl)
step "built $(basename "$wheel") and its sdist"

built=$SECONDS
"$PY" -m venv "$work/venv"
V="$work/venv/bin"
pip_install() {  # quiet unless it fails
  "$V/python" -m pip install --disable-pip-version-check -q -c "$ROOT/requirements-lock.txt" "$@" >"$work/pip.log" 2>&1 \
    || { grep -v 'is ignored' "$work/pip.log" >&2; exit 1; }
}
pip_install "$wheel"
install_s=$((SECONDS - built))
step "installed the wheel and its core dependencies into a fresh virtualenv in ${install_s} s"

# a user's project: the own-graph example, its prompts and inputs, and a rolegraph.toml
project="$work/project"
mkdir -p "$project"
cp -r examples/own_graph/writer_critic.py examples/own_graph/prompts examples/own_graph/questions.jsonl "$project/"
cd "$project"
"$V/python" - <<'EOF'
import sys
from pathlib import Path
import rolegraph
here = Path(sys.prefix).resolve()
assert Path(rolegraph.__file__).resolve().is_relative_to(here), f"rolegraph imported from {rolegraph.__file__}, not the wheel"
EOF
"$V/rolegraph" --help >/dev/null
"$V/rolegraph" --version

# the stub server: a JSON review for the critic (its request asks for a schema), a sentence otherwise
"$V/python" - >"$work/stub.log" 2>&1 <<'EOF' &
import asyncio, json
from pathlib import Path
from rolegraph.models.servers.loadtest import LoadTestServer

def reply(body):
    return json.dumps({"ok": True, "feedback": ""}) if body.get("response_format") else "Light scatters off air."

async def main():
    async with LoadTestServer(delay_s=0.0, reply=reply) as server:
        Path("stub-url").write_text(server.base_url)
        await asyncio.Event().wait()

asyncio.run(main())
EOF
stub_pid=$!
for _ in $(seq 100); do [ -s stub-url ] && break; sleep 0.1; done
[ -s stub-url ] || { cat "$work/stub.log" >&2; echo "the stub server did not start" >&2; exit 1; }
cat >rolegraph.toml <<EOF
[endpoints.stub]
base_url = "$(cat stub-url)"
dialect = "openai"
[roles.default]
endpoint = "stub"
model = "stub-model"
EOF

"$V/rolegraph" run writer_critic.py:writer_critic --input questions.jsonl --out answers.jsonl >"$work/run.log" 2>&1 \
  || { cat "$work/run.log" >&2; exit 1; }
"$V/python" - <<'EOF'
import json
rows = [json.loads(line) for line in open("answers.jsonl")]
assert rows and all(r["status"] == "ok" and r["approved"] for r in rows), rows
EOF
"$V/rolegraph" trace view last --out view.html >/dev/null
"$V/python" - <<'EOF'
from pathlib import Path
import rolegraph.traces
assets = Path(rolegraph.traces.__file__).parent / "assets"
page = Path("view.html").read_text(encoding="utf-8")
for name in ("view.css", "mermaid.min.js"):
    head = (assets / name).read_text(encoding="utf-8")[:200].replace("</script", "<\\/script")
    assert head in page, f"trace view: {name} is not in the page"
EOF
step "ran a user graph against a stub server, --help, trace view with its assets"

# the embedded server for a pip user: from the cache `make setup` filled (never built here), or one
# error that names both ways to get one
if bash "$ROOT/rolegraph/models/servers/setup_embedded.sh" find >/dev/null; then
  "$V/rolegraph" setup embedded --no-build >"$work/setup.log" 2>&1 || { cat "$work/setup.log" >&2; exit 1; }
  grep -q "llama-server: $work/venv/lib/llama.cpp/llama-server" "$work/setup.log" || { cat "$work/setup.log" >&2; exit 1; }
  "$work/venv/lib/llama.cpp/llama-server" --version >/dev/null 2>&1
  step "rolegraph setup embedded: installed the cached llama-server and the model"
else
  if PATH=/usr/bin:/bin "$V/rolegraph" setup embedded --no-build >"$work/setup.log" 2>&1; then
    echo "rolegraph setup embedded --no-build succeeded with nothing to install" >&2; exit 1
  fi
  grep -q 'ROLEGRAPH_LLAMA_SERVER' "$work/setup.log" || { cat "$work/setup.log" >&2; exit 1; }
  step "rolegraph setup embedded: no cached llama-server, and the error names both ways"
fi

if "$V/rolegraph" ui --port 0 >"$work/ui-core.log" 2>&1; then
  echo "rolegraph ui started without the ui extra" >&2; exit 1
fi
grep -q "pip install 'rolegraph\[ui\]'" "$work/ui-core.log" || { cat "$work/ui-core.log" >&2; exit 1; }
pip_install "$wheel[ui]"
"$V/rolegraph" ui --port 0 >"$work/ui.log" 2>&1 &
ui_pid=$!
url=""
for _ in $(seq 200); do
  url=$(grep -o 'http://127.0.0.1:[0-9]*/' "$work/ui.log" || true)
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$work/ui.log" >&2; echo "rolegraph ui did not start" >&2; exit 1; }
"$V/python" -c "import sys, urllib.request; r = urllib.request.urlopen(sys.argv[1], timeout=10); assert r.status == 200 and b'writer_critic' in r.read()" "$url"
step "rolegraph ui: refused without the ui extra, served the runs with it"
echo "check-wheel: passed in $((SECONDS - start)) s (wheel install into a fresh virtualenv: ${install_s} s)" >&2
