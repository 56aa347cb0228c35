"""The trace commands as a user runs them: list, show, diff, view (in headless Chromium), replay."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from rolegraph.traces import TraceStore
from rolegraph.traces._diff import first_divergence
from tests.unit.test_traces import record

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rolegraph", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120, check=False, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin",
                                                                  "PYTHONPATH": str(ROOT)})


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[Path, str]:
    store, result = asyncio.run(record(tmp_path))
    return store.root, result.run_id or ""


def test_list_and_show(recorded: tuple[Path, str], tmp_path: Path) -> None:
    runs, run_id = recorded
    listing = cli("trace", "list", "--runs", str(runs), cwd=tmp_path)
    assert listing.returncode == 0 and run_id in listing.stdout and "ok" in listing.stdout
    shown = cli("trace", "show", run_id[:20], "--runs", str(runs), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    rows = [line for line in shown.stdout.splitlines() if re.match(r"^│\s+\d+ │", line)]
    assert [r.split("│")[2].strip() for r in rows] == ["evaluate", "reflect", "rewrite", "check", "evaluate"]
    assert "6 model calls" in shown.stdout and "1 retries" in shown.stdout
    calls = cli("trace", "show", run_id, "--runs", str(runs), "--calls", cwd=tmp_path)
    assert "not valid JSON" in calls.stdout  # the rejected rewrite attempt is visible
    step = cli("trace", "show", run_id, "--runs", str(runs), "--step", "2", cwd=tmp_path)
    assert "call 1: rewriter / rewriter attempt 1" in step.stdout and "state update" in step.stdout


def test_unknown_run_is_one_line(tmp_path: Path) -> None:
    result = cli("trace", "show", "nope", "--runs", str(tmp_path / "runs"), cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "no run 'nope'" in result.stderr


def test_replay_command_is_offline_and_identical(recorded: tuple[Path, str], tmp_path: Path) -> None:
    runs, run_id = recorded
    result = cli("replay", run_id, "--runs", str(runs), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "6 calls answered from the trace, 0 live" in result.stdout
    assert "output: identical to the recorded run" in result.stdout
    assert len(TraceStore(runs).list()) == 2


def test_diff_finds_the_first_divergence(tmp_path: Path) -> None:
    store_a, a = asyncio.run(record(tmp_path / "a"))
    store_b, b = asyncio.run(record(tmp_path / "b", reflector=["I noticed the word 'ATP'."]))
    ta, tb = store_a.load(a.run_id or ""), store_b.load(b.run_id or "")
    d = first_divergence(ta, tb)
    assert d is not None and d.step == 1 and d.what == "response"
    result = cli("trace", "diff", str(ta.dir), str(tb.dir), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "first divergence at step 1" in result.stdout and "I noticed the word" in result.stdout
    assert "reflections" in result.stdout  # the state summary names the field that differs
    same = cli("trace", "diff", str(ta.dir), str(ta.dir), cwd=tmp_path)
    assert "no divergence" in same.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium); .ci/run installs it")
def test_view_page_renders_in_chromium(recorded: tuple[Path, str], tmp_path: Path) -> None:
    runs, run_id = recorded
    result = cli("trace", "view", run_id, "--runs", str(runs), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    page = Path(result.stdout.strip())
    html = page.read_text()
    assert "<script src" not in html and "http" not in re.sub(r"<script>.*?</script>", "", html, flags=re.S)
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([CHROMIUM, *CHROME_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr",
                              "--virtual-time-budget=15000", "--dump-dom", page.as_uri()],
                             capture_output=True, text=True, timeout=120, check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-rendered="ok"' in dom.stdout and 'data-errors="0"' in dom.stdout
    console_errors = [line for line in dom.stderr.splitlines() if "CONSOLE" in line and "ERROR" in line.upper()]
    assert console_errors == []
    assert re.search(r'<b id="step-count">5</b>', dom.stdout)
    assert dom.stdout.count('class="step"') == 5 and "<svg" in dom.stdout  # the graph was drawn
    assert json.dumps("not json")[1:-1] in dom.stdout  # a rejected answer is there to expand


def test_export_otlp_to_a_file_and_an_endpoint(recorded: tuple[Path, str], tmp_path: Path) -> None:
    import http.server
    import threading

    runs, run_id = recorded
    target = tmp_path / "not" / "yet" / "spans.json"  # the folders are created
    result = cli("trace", "export", run_id, "--runs", str(runs), "--otlp", str(target), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    spans = json.loads(target.read_text())["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert len(spans) == 1 + 5 + 6  # the run, its 5 steps, its 6 model calls
    ids = {s["spanId"] for s in spans}
    assert all(s["parentSpanId"] in ids for s in spans[1:]) and spans[0]["parentSpanId"] == ""
    assert len({s["traceId"] for s in spans}) == 1 and len(spans[0]["traceId"]) == 32
    llm = [s for s in spans if {"key": "openinference.span.kind", "value": {"stringValue": "LLM"}} in s["attributes"]]
    assert len(llm) == 6
    attrs = {a["key"]: a["value"] for a in llm[0]["attributes"]}
    assert "gen_ai.usage.input_tokens" in attrs and "llm.input_messages.0.message.content" in attrs
    assert any(s["status"]["code"] == 1 for s in spans)

    received: list[bytes] = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            assert self.path == "/v1/traces"
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.handle_request, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    sent = cli("trace", "export", run_id, "--runs", str(runs), "--otlp", url, cwd=tmp_path)
    server.server_close()
    assert sent.returncode == 0, sent.stderr
    assert "HTTP 200" in sent.stdout and json.loads(received[0]) == json.loads(target.read_text())


def test_to_test_writes_a_passing_pytest_case(recorded: tuple[Path, str], tmp_path: Path) -> None:
    runs, run_id = recorded
    out = tmp_path / "generated"
    result = cli("trace", "to-test", run_id, "--runs", str(runs), "--step", "2", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    test_file = Path(result.stdout.strip())
    assert (out / "traces" / run_id / "events.jsonl").exists()
    ran = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
                         capture_output=True, text=True, cwd=out, timeout=120, check=False,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert ran.returncode == 0 and "1 passed" in ran.stdout, ran.stdout + ran.stderr
    # and it fails when the node's behaviour changes: break the recorded delta
    log = out / "traces" / run_id / "events.jsonl"
    lines = log.read_text().splitlines()
    for i, line in enumerate(lines):
        event = json.loads(line)
        if event["kind"] == "node_finished" and event["step"] == 2:
            event["delta"] = {"rewrites": []}
            lines[i] = json.dumps(event)
    log.write_text("\n".join(lines) + "\n")
    broken = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
                            capture_output=True, text=True, cwd=out, timeout=120, check=False,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert broken.returncode == 1
