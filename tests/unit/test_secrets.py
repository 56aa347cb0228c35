"""A configured API key never reaches a file the project writes, whatever its variable is called:
an endpoint reads `STUB_CRED` (no KEY/TOKEN/SECRET in the name) and a stub server echoes it back
in answers and in a 401 body; traces, checkpoints, results, memories, reports, views and OTLP
exports are then scanned byte for byte."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from rolegraph import Runtime
from rolegraph.evals import Benchmark, Case, EvalStore, Score, run_eval, write_report
from rolegraph.graphs import load_graph
from rolegraph.traces import Redactor, TraceStore
from rolegraph.traces._otlp import export
from rolegraph.traces._view import write_view

PLANT = f"plant-{uuid.uuid4().hex}"

GRAPH = '''
from typing import Any

from pydantic import BaseModel

import rolegraph as rg


class Question(BaseModel):
    question: str


class State(BaseModel):
    question: str
    draft: str = ""


class Answer(rg.RunResult):
    draft: str


writer = rg.Agent(name="writer", prompt="write", output=str)


async def write(state: State, runtime: rg.Runtime) -> dict[str, Any]:
    draft = await writer.run(runtime, question=state.question)
    await runtime.memory("notes").add(draft, role="writer")
    await runtime.memory("digest", kind="summary").add(draft)
    return {"draft": draft}


@rg.graph(input=Question, state=State, result=Answer, prompts="prompts", agents=[writer])
def leaky(g: rg.StateGraph) -> None:
    g.add_node(write)
    g.add_edge(rg.START, "write")
    g.add_edge("write", rg.END)
'''


class _Stub(BaseHTTPRequestHandler):
    """OpenAI-style chat completions that echo the caller's key; a question containing "deny"
    gets a 401 whose body echoes the Authorization header."""

    def log_message(self, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        auth = self.headers.get("Authorization", "")
        prompt = json.dumps(body["messages"])
        if "deny" in prompt:
            self._send(401, {"error": {"message": f"bad credentials: {auth}", "type": "invalid_request_error"}})
            return
        text = f"my key is {auth.removeprefix('Bearer ')}, json-escaped {json.dumps(auth)}"
        self._send(200, {"id": "c1", "object": "chat.completion", "created": 0, "model": body.get("model", "m"),
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": text}}],
                         "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}})

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def stub_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def _leaky_work(work: Path, graph_file: str, stub_url: str) -> Path:
    """A work folder with the leaky graph, its prompt, and a rolegraph.toml whose endpoint reads its
    key from STUB_CRED; returns the config's path."""
    (work / "prompts").mkdir(parents=True)
    (work / "prompts" / "write.j2").write_text("{% block user %}Answer: {{ question }}{% endblock %}")
    (work / graph_file).write_text(GRAPH)
    config = work / "rolegraph.toml"
    config.write_text(f"""
[traces]
dir = "{(work / 'runs').as_posix()}"
[memory]
dir = "{(work / 'memory').as_posix()}"
[endpoints.stub]
base_url = "{stub_url}"
api_key_env = "STUB_CRED"
dialect = "openai"
retries = 1
[roles.default]
endpoint = "stub"
model = "stub-model"
""")
    return config


def _leaks(root: Path) -> list[str]:
    forms = [PLANT.encode(), json.dumps(PLANT)[1:-1].encode()]
    return [str(p.relative_to(root)) for p in sorted(root.rglob("*"))
            if p.is_file() and any(f in p.read_bytes() for f in forms)]


async def test_configured_key_reaches_no_file(tmp_path: Path, stub_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUB_CRED", PLANT)
    assert not any(m in "STUB_CRED" for m in ("KEY", "TOKEN", "SECRET"))
    work = tmp_path / "work"
    _leaky_work(work, "leaky_graph.py", stub_url)
    graph = load_graph(f"{work / 'leaky_graph.py'}:leaky")

    async def has_answer(case: Case, output: Any) -> Score:
        return Score(value=float(bool(output["draft"])))

    has_answer.name = "has_answer"  # type: ignore[attr-defined]
    cases = [Case(id="ok", input=graph.input({"question": "why?"})),
             Case(id="denied", input=graph.input({"question": "deny me"}))]
    bench = Benchmark(name="leaky", cases=lambda: iter(cases), solver=graph.solver(), scorers=[has_answer])
    store = EvalStore(work / "evals" / "e1" / "results.sqlite")
    runtime = Runtime.load(work / "rolegraph.toml")
    assert isinstance(runtime.traces, TraceStore) and runtime.redactor is runtime.traces.redactor
    async with runtime:
        summary = await run_eval(bench, runtime, store=store, progress=False)
    runtime.close()

    records = {r.case_id: r for r in store.records()}
    assert summary.ran == 2 and records["ok"].status == "ok" and records["denied"].status == "error"
    assert "401" in (records["denied"].error or "") and "[REDACTED]" in (records["denied"].error or "")
    assert "[REDACTED]" in records["ok"].output["draft"]  # the answer carried the key, redacted
    report = write_report(store)
    assert report.name == "report.html"
    runs = runtime.traces.list()
    assert sorted(r.status for r in runs) == ["error", "ok"]
    for folder in ("views", "otlp"):
        (work / folder).mkdir()
    for run in runs:  # the denied run failed, so its record has no trace id: take every recorded run
        trace = runtime.traces.load(run.run_id)
        write_view(trace, work / "views" / f"{run.status}.html")
        export(trace, str(work / "otlp" / f"{run.status}.json"))
    written = sorted(str(p.relative_to(work)) for p in work.rglob("*") if p.is_file())
    for expected in ("memory/memory.sqlite", "evals/e1/results.sqlite", "views/error.html", "otlp/error.json",
                     "evals/e1/report/report.html", "evals/e1/report/report.json"):
        assert expected in written, written
    assert sum(p.endswith("checkpoints.sqlite") for p in written) == 2
    assert sum(p.endswith("events.jsonl") for p in written) == 2
    assert _leaks(tmp_path) == []


def test_redactor_add_covers_raw_and_json_forms_and_skips_short_values() -> None:
    r = Redactor(env={})
    r.add("abc", None, "", 'we"ird\\value')
    assert r("abc") == "abc"  # under 6 characters: ordinary text, left alone
    assert r('we"ird\\value') == "[REDACTED]"
    assert r(json.dumps({"k": 'we"ird\\value'})) == '{"k": "[REDACTED]"}'
    assert r.mask_bytes(b'xx we"ird\\value') == b"xx " + b"*" * len('we"ird\\value')
    assert r.values == frozenset({'we"ird\\value'})


def test_cli_outputs_hold_no_key_the_model_echoed_or_an_input_held(
        tmp_path: Path, stub_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`rolegraph run FILE:NAME --out`, `rolegraph run refinebot --out` and `rolegraph eval FILE:NAME`:
    their results files, summaries and printed tables are redacted as the traces are."""
    from typer.testing import CliRunner

    from rolegraph.cli import app

    monkeypatch.setenv("STUB_CRED", PLANT)
    work = tmp_path / "work"
    config = _leaky_work(work, "cli_leaky_graph.py", stub_url)
    inputs = tmp_path / "inputs"  # the only files that may hold the key: scanned apart
    inputs.mkdir()
    (inputs / "questions.jsonl").write_text(json.dumps({"question": f"is {PLANT} your key?"}) + "\n")
    (inputs / "mcqs.jsonl").write_text(json.dumps({"question": f"Which key is {PLANT}?", "correct_index": 0,
                                                 "choices": ["this one", "another", "none", "all"]}) + "\n")
    graph = f"{work / 'cli_leaky_graph.py'}:leaky"
    runner = CliRunner()
    printed = []
    for args in (["run", graph, "--input", str(inputs / "questions.jsonl"), "--out", str(work / "out" / "run.jsonl")],
                 ["run", "refinebot", "--input", str(inputs / "mcqs.jsonl"), "--seeds", "0", "--max-iters", "1",
                  "--out", str(work / "out" / "refine.jsonl")],
                 ["eval", graph, "--data", str(inputs / "questions.jsonl"), "--out", str(work / "evals")]):
        done = runner.invoke(app, [*args, "--config", str(config)])
        assert done.exit_code == 0, done.output
        printed.append(done.output)

    rows = [json.loads(line) for name in ("run", "refine") for line in (work / "out" / f"{name}.jsonl").open()]
    assert "[REDACTED]" in rows[0]["draft"]  # the model's echo, redacted
    assert "[REDACTED]" in rows[1]["original"]["question"]  # the input's key, redacted where RefineBot copied it
    assert not [p for p in printed if PLANT in p or json.dumps(PLANT)[1:-1] in p]
    assert _leaks(work) == []
