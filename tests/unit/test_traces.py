"""Traces: events round-trip, replay is exact and offline, mismatches are readable, forks go
live at the right step, killed runs still load, secrets never reach the store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rolegraph import Runtime
from rolegraph.graphs import refinebot, replay_run
from rolegraph.graphs._run import run_graph
from rolegraph.models import ChatRequest, ChatResponse, Message, ScriptedModel, Usage
from rolegraph.prompts import PromptLibrary
from rolegraph.traces import (
    AgentRetry,
    BlobRef,
    ErrorEvent,
    ForkOrigin,
    Manifest,
    ModelCall,
    NodeFinished,
    NodeStarted,
    Redactor,
    ReplayMismatch,
    ReplayModel,
    RunFinished,
    RunStarted,
    ToolInvocation,
    Totals,
    TraceStore,
    parse_event,
)
from tests.unit.test_refinebot import MCQ_A, RIGHT, rewrite

ROOT = Path(__file__).resolve().parents[2]


def scripts() -> dict[str, list]:
    return dict(evaluator=[RIGHT, "Hmm. The answer is (a)"], reflector=["I matched 'ATP'."],
                rewriter=["not json", rewrite()], checker=[{"is_equivalent": True, "explanation": "same"}])


async def record(tmp_path: Path, **overrides: list) -> tuple[TraceStore, refinebot.RefineResult]:
    store = TraceStore(tmp_path / "runs")
    s = {**scripts(), **overrides}
    rt = Runtime.from_models({r: ScriptedModel(s[r], name=r) for r in refinebot.ROLES}, traces=store)
    result = await refinebot.run(MCQ_A, runtime=rt)
    await rt.aclose()
    return store, result


def test_every_event_kind_round_trips() -> None:
    req = ChatRequest(messages=(Message(role="user", content="hi"),), seed=1)
    resp = ChatResponse(text="yo", usage=Usage(prompt_tokens=2, completion_tokens=1), latency_s=0.1)
    events = [
        RunStarted(run_id="r", manifest=Manifest(graph="g", input={"a": 1}, prompts={"p": "abc"}),
                   parent=ForkOrigin(run_id="q", live_from=3)),
        NodeStarted(node="n", path=["n"], key="n@1", step=0, state={"x": [1, 2]}),
        NodeFinished(node="n", key="n@1", step=0, delta={"x": [3]}, duration_s=0.5),
        ModelCall(role="r", node_key="n@1", step=0, call_index=0, fingerprint=req.fingerprint, request=req,
                  response=resp, agent="a", attempt=0, parsed={"ok": True}),
        ToolInvocation(name="t", node_key=None, step=None, call_index=0, input={"q": 1},
                 output=BlobRef(blob="f" * 64, size=99).model_dump()),
        AgentRetry(agent="a", attempt=1, error="bad"),
        ErrorEvent(type="ValueError", message="boom"),
        RunFinished(status="ok", output={"y": 1}, totals=Totals(model_calls=1)),
    ]
    for event in events:
        assert parse_event(event.model_dump_json()) == event
        assert json.loads(event.model_dump_json())["format_version"] == 1


async def test_replay_is_exact_with_zero_model_calls(tmp_path: Path) -> None:
    store, original = await record(tmp_path)
    trace = store.load(original.run_id or "")
    assert trace.complete and trace.status == "ok"
    assert original.trace.run_id == trace.run_id  # the Python API: result.trace
    replayed = await replay_run(trace, store=store)  # no live model anywhere
    assert replayed.model_dump(exclude={"run_id", "trace_dir"}) == original.model_dump(exclude={"run_id", "trace_dir"})
    new = store.load(replayed.run_id)
    assert new.finished is not None and new.finished.totals.model_calls == 0
    assert new.finished.totals.replayed_calls == len(trace.of_kind(ModelCall)) == 6
    assert new.started.parent is not None and new.started.parent.run_id == trace.run_id


async def test_changed_prompt_raises_mismatch_showing_the_line(tmp_path: Path) -> None:
    store, original = await record(tmp_path)
    trace = store.load(original.run_id or "")
    prompts_dir = tmp_path / "prompts" / "refinebot"
    prompts_dir.mkdir(parents=True)
    source = (ROOT / "rolegraph" / "prompts" / "refinebot" / "evaluate.j2").read_text()
    (prompts_dir / "evaluate.j2").write_text(source.replace("Reason step by step, briefly.",
                                                            "Think it through carefully."))
    rt = Runtime.from_models({r: ReplayModel(trace) for r in refinebot.ROLES}, prompts=PromptLibrary(tmp_path / "prompts"))
    with pytest.raises(ReplayMismatch) as info:
        await run_graph(refinebot.refinebot, trace.started.manifest, rt)
    message = str(info.value)
    assert "role 'evaluator'" in message and "step 0" in message
    assert "-Reason step by step, briefly." in message and "+Think it through carefully." in message


async def test_fork_calls_live_models_for_exactly_the_remaining_calls(tmp_path: Path) -> None:
    store, original = await record(tmp_path)
    trace = store.load(original.run_id or "")
    # steps: 0 evaluate, 1 reflect, 2 rewrite (2 calls), 3 check, 4 evaluate; live from step 2
    live_scripts = dict(evaluator=["Still the answer is (c)"], reflector=[], rewriter=[rewrite()],
                        checker=[{"is_equivalent": True, "explanation": "same"}])
    live = Runtime.from_models({r: ScriptedModel(live_scripts[r], name=f"live-{r}") for r in refinebot.ROLES})
    forked = await replay_run(trace, store=store, live=live, live_from=2)
    await live.aclose()  # every live step was used, no more
    assert forked.exit_code is refinebot.ExitCode.FAIL_ITERATIONS
    new = store.load(forked.run_id)
    assert new.finished is not None
    assert (new.finished.totals.replayed_calls, new.finished.totals.model_calls) == (2, 3)
    calls = new.of_kind(ModelCall)
    assert [c.replayed for c in calls] == [True, True, False, False, False]
    assert new.started.parent == ForkOrigin(run_id=trace.run_id, live_from=2)


async def test_fork_with_a_changed_prompt_changes_only_the_live_part(tmp_path: Path) -> None:
    store, original = await record(tmp_path)
    trace = store.load(original.run_id or "")
    new_prompt = tmp_path / "check.j2"
    new_prompt.write_text("{% block user %}Same meaning? {{ question_stem_1 }} vs {{ question_stem_2 }}{% endblock %}")
    checker = ScriptedModel([{"is_equivalent": False, "explanation": "differs"}])
    live = Runtime.from_models({"checker": checker, "default": ScriptedModel([])})
    forked = await replay_run(trace, store=store, live=live, live_from=3, prompts={"checker": str(new_prompt)})
    assert forked.exit_code is refinebot.ExitCode.FAIL_REWRITE
    assert (checker.requests[0].messages[-1].content or "").startswith("Same meaning?")
    assert store.load(forked.run_id).started.parent.changes == {"prompt:checker": str(new_prompt)}  # type: ignore[union-attr]


async def test_concurrent_runs_never_mix(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "runs")
    mcqs = [MCQ_A.model_copy(update={"key": f"k{i}", "question": f"Question number {i}?"}) for i in range(6)]

    async def slow_wrong(request: ChatRequest) -> str:
        import asyncio

        await asyncio.sleep(0.01 * (hash(request.messages[-1].content) % 5))
        return "The answer is (a)"

    from rolegraph.models import FunctionModel

    rt = Runtime.from_models({"default": FunctionModel(slow_wrong)}, traces=store)
    results = [r async for r in refinebot.run_many(mcqs, runtime=rt, seeds=[0, 1], concurrency=6)]
    for r in results:
        trace = store.load(r.run_id or "")
        calls = trace.of_kind(ModelCall)
        assert len(calls) == 1
        assert f"Question number {r.key[1:]}?" in (calls[0].request.messages[-1].content or "")
        assert trace.started.manifest.input["key"] == r.key


def test_store_lists_and_resolves(tmp_path: Path) -> None:
    import asyncio

    store, result = asyncio.run(record(tmp_path))
    runs = store.list()
    assert [r.run_id for r in runs] == [result.run_id] and runs[0].status == "ok"
    assert store.resolve("last").name == result.run_id
    assert store.list(search="organelle makes ATP") and not store.list(search="chloroplast")
    assert store.resolve((result.run_id or "")[:18]).name == result.run_id


async def test_secrets_never_reach_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret, token = "sk-live-0123456789abcdef", "tok_SUPERSECRET_42"
    monkeypatch.setenv("MY_SERVICE_API_KEY", secret)
    monkeypatch.setenv("GITHUB_TOKEN", token)
    store = TraceStore(tmp_path / "runs", redactor=Redactor())
    leaky = MCQ_A.model_copy(update={"question": f"My key is {secret} and {token}; which organelle makes ATP?"})
    rt = Runtime.from_models({"default": ScriptedModel([f"Your key {secret}. The answer is (a)"])}, traces=store)
    await refinebot.run(leaky, runtime=rt)
    found = [p for p in (tmp_path / "runs").rglob("*") if p.is_file()
             and (secret.encode() in p.read_bytes() or token.encode() in p.read_bytes())]
    assert found == []
    assert "[REDACTED]" in (tmp_path / "runs").joinpath(store.list()[0].run_id, "events.jsonl").read_text()


KILLED_RUN = """
import asyncio, sys
from rolegraph import Runtime
from rolegraph.graphs import refinebot
from rolegraph.graphs._run import run_graph
from rolegraph.models import FunctionModel
from rolegraph.traces import TraceStore
from tests.unit.test_refinebot import MCQ_A

async def slow(request):
    print("call", flush=True)
    await asyncio.sleep(0.2)
    return {"is_equivalent": True, "explanation": "ok"} if request.response_schema and "is_equivalent" in str(
        request.response_schema) else "The answer is (b)"

rt = Runtime.from_models({"default": FunctionModel(slow)}, traces=TraceStore(sys.argv[1]))
asyncio.run(refinebot.run(MCQ_A, runtime=rt, options=refinebot.RefineBotOptions(max_iters=50)))
"""


def test_sigkill_mid_run_leaves_a_trace_that_loads(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(tmp_path / "runs")], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for _ in range(4):  # let it get a few calls in
        proc.stdout.readline()
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = TraceStore(tmp_path / "runs")
    runs = store.list()
    assert len(runs) == 1 and runs[0].status == "incomplete"
    trace = store.load(runs[0].run_id)
    assert not trace.complete and trace.status == "incomplete"
    assert trace.of_kind(NodeStarted) and trace.of_kind(ModelCall)
    # a line cut in half by the kill is dropped, the rest still loads
    log = trace.dir / "events.jsonl"
    with log.open("a") as fh:
        fh.write('{"kind": "node_started", "node": "trunc')
    again = store.load(runs[0].run_id)
    assert again.dropped_tail and len(again.events) == len(trace.events)


async def test_fork_with_another_model_name_sends_it_to_the_same_endpoint(tmp_path: Path) -> None:
    import httpx2

    from rolegraph.models import Endpoint, OpenAICompatModel

    store, original = await record(tmp_path)
    trace = store.load(original.run_id or "")
    sent: list[dict] = []

    def server(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        sent.append(body)
        text = json.dumps({"is_equivalent": False, "explanation": "no"})
        return httpx2.Response(200, json={"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                                          "choices": [{"index": 0, "finish_reason": "stop",
                                                       "message": {"role": "assistant", "content": text}}],
                                          "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

    endpoint = Endpoint("http://127.0.0.1:9/v1", dialect="vllm",
                        http_client_factory=lambda: httpx2.AsyncClient(transport=httpx2.MockTransport(server)))
    live = Runtime.from_models({"checker": OpenAICompatModel(endpoint=endpoint, model="checker-lora"),
                                "default": ScriptedModel([])})
    forked = await replay_run(trace, store=store, live=live, live_from=3, models={"checker": "checker-lora-v2"})
    assert forked.exit_code is refinebot.ExitCode.FAIL_REWRITE
    assert [b["model"] for b in sent] == ["checker-lora-v2"]
    assert store.load(forked.run_id).started.parent.changes == {"model:checker": "checker-lora-v2"}  # type: ignore[union-attr]


def test_list_incomplete_filters_before_the_limit(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store = TraceStore(tmp_path / "runs")
    rows = [(f"done-{i}", "g", 100.0 + i, 101.0 + i, "ok", None, os.getpid(), 0, 0, "{}") for i in range(5)]
    rows += [(f"dead-{i}", "g", 10.0 + i, None, "running", None, dead.pid, 0, 0, "{}") for i in range(4)]
    rows.append(("live", "g", 50.0, None, "running", None, os.getpid(), 0, 0, "{}"))
    with store._index() as con:
        con.executemany("INSERT INTO runs (run_id, graph, started, finished, status, parent, pid, model_calls, "
                        "tokens, summary) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    runs = store.list(status="incomplete", limit=3)
    assert [r.run_id for r in runs] == ["dead-3", "dead-2", "dead-1"]
    assert {r.status for r in runs} == {"incomplete"}
    assert [r.run_id for r in store.list(limit=2)] == ["done-4", "done-3"]


def test_an_index_written_before_pairs_were_tagged_is_upgraded(tmp_path: Path) -> None:
    import sqlite3

    (tmp_path / "runs").mkdir()
    with sqlite3.connect(tmp_path / "runs" / "index.sqlite") as con:
        con.execute("CREATE TABLE runs (run_id TEXT PRIMARY KEY, graph TEXT, started REAL, finished REAL, status TEXT, "
                    "parent TEXT, pid INTEGER, model_calls INTEGER, tokens INTEGER, summary TEXT)")
        con.execute("INSERT INTO runs VALUES ('old', 'g', 1.0, 2.0, 'ok', NULL, 1, 0, 0, '{}')")
    store = TraceStore(tmp_path / "runs")
    assert [r.run_id for r in store.list()] == ["old"] and store.runs_for_pair("e/c/0") == []
    writer = store.writer("new")
    from rolegraph.traces import Manifest, RunStarted

    writer.write(RunStarted(run_id="new", manifest=Manifest(graph="g", tags={"pair": "e/c/0"})))
    writer.close()
    assert [r.run_id for r in store.runs_for_pair("e/c/0")] == ["new"]


def test_state_written_straight_to_json_matches_the_jsonable_form(tmp_path: Path) -> None:
    """A step's state and update go to the log in one serialization; the line must be the one
    the event would give with the value made JSON-ready first (odd values and a lone surrogate too)."""
    from pydantic_core import to_jsonable_python

    from rolegraph.traces._writer import _event_json, _event_json_raw

    odd = object()
    values = [{"t": (1, 2)}, {"s": {3}}, {"f": float("inf")}, {"b": b"xy"}, {"k": {1: "a"}}, {"o": odd},
              {"lone": "a\ud800b"}, {"u": "é\u2028\x00"}, MCQ_A, [MCQ_A, None], None, "text"]
    for value in values:
        raw = _event_json_raw(NodeStarted(node="n", path=["n"], key="n@1", step=0, ts=1.0), "state", value)
        ready = NodeStarted(node="n", path=["n"], key="n@1", step=0, ts=1.0,
                            state=to_jsonable_python(value, fallback=str))
        assert raw == _event_json(ready), value
        raw = _event_json_raw(NodeFinished(node="n", key="n@1", step=0, ts=1.0), "delta", value)
        assert raw == _event_json(NodeFinished(node="n", key="n@1", step=0, ts=1.0,
                                               delta=to_jsonable_python(value, fallback=str))), value
