"""Human input: a run that reaches LangGraph's `interrupt(value)` stops `interrupted` with its questions,
goes on from a person's answer (Python, the CLI), records the answer in its own trace, replays offline
answering from that trace, and forks with a changed answer; for every shape a question can come from (two
in one node, `Send` branches, a subgraph, a wrapped LangGraph app), a process killed while its run was
paused, and an evaluation with scripted answers."""

from __future__ import annotations

import asyncio
import json
import operator
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.graph import END, START
from langgraph.graph import StateGraph as PlainStateGraph
from langgraph.types import Command, Send, interrupt
from pydantic import BaseModel
from typer.testing import CliRunner

import rolegraph as rg
from rolegraph import HumanInputNeeded, Runtime, UserError
from rolegraph.cli import app as cli_app
from rolegraph.evals import Benchmark, Case, EvalStore, Score, run_eval
from rolegraph.graphs import AnswerBook, replay_run
from rolegraph.models import ChatRequest, FunctionModel, Message
from rolegraph.traces import HumanInput, ModelCall, NodeFinished, RunFinished, Trace, TraceStore, comparable
from rolegraph.traces._diff import first_divergence

ROOT = Path(__file__).resolve().parents[2]


class Ask(BaseModel):
    topic: str
    topics: list[str] = ["moss", "ferns"]


class Flow(TypedDict, total=False):
    topic: str
    topics: list[str]
    plan: str
    verdict: Any
    note: Any
    answer: Any
    notes: Annotated[list[str], operator.add]
    final: str


# -- A: two questions in one node, after a model call ---------------------------------------------------

async def plan(state: Flow, runtime: Runtime) -> dict[str, Any]:
    reply = await runtime.model("planner").chat(ChatRequest(messages=(Message(role="user", content=state["topic"]),)))
    return {"plan": reply.text}


async def approve(state: Flow) -> dict[str, Any]:
    verdict = interrupt(f"approve {state['plan']}?")
    note = interrupt("any note?")
    return {"verdict": verdict, "note": note}


async def settle(state: Flow) -> dict[str, Any]:
    return {"final": f"{state['verdict']} / {state['note']}"}


@rg.graph(input=Ask, state=Flow, roles=["planner"])
def approval(g: rg.StateGraph) -> None:
    g.add_node(plan)
    g.add_node(approve)
    g.add_node(settle)
    g.add_edge(START, "plan")
    g.add_edge("plan", "approve")
    g.add_edge("approve", "settle")
    g.add_edge("settle", END)


# -- B: one question in each of two Send branches, asked at once ------------------------------------------

async def split(state: Flow) -> dict[str, Any]:
    return {"notes": []}


async def review(state: dict[str, Any]) -> dict[str, Any]:
    topic = state["topic"]
    return {"notes": [f"{topic}: {interrupt(f'review {topic}?')}"]}


async def collect(state: Flow) -> dict[str, Any]:
    return {"final": "; ".join(sorted(state["notes"]))}


@rg.graph(input=Ask, state=Flow)
def branches(g: rg.StateGraph) -> None:
    g.add_node(split)
    g.add_node(review)
    g.add_node(collect)
    g.add_edge(START, "split")
    g.add_conditional_edges("split", lambda s: [Send("review", {"topic": t}) for t in s["topics"]], ["review"])
    g.add_edge("review", "collect")
    g.add_edge("collect", END)


# -- C: a question inside a subgraph ---------------------------------------------------------------------

async def ask(state: Flow) -> dict[str, Any]:
    return {"answer": interrupt(f"what about {state['topic']}?")}


async def finish(state: Flow) -> dict[str, Any]:
    return {"final": f"told {state['answer']}"}


@rg.graph(input=Ask, state=Flow)
def nested(g: rg.StateGraph) -> None:
    inner = rg.StateGraph(Flow)
    inner.add_node(ask)
    inner.add_edge(START, "ask")
    inner.add_edge("ask", END)
    g.add_node("inner", inner.compile())
    g.add_node(finish)
    g.add_edge(START, "inner")
    g.add_edge("inner", "finish")
    g.add_edge("finish", END)


# -- D: a LangGraph app written for plain LangGraph, wrapped -----------------------------------------------

def confirm(state: Flow) -> dict[str, Any]:  # a sync node: LangGraph runs it in a thread
    return {"final": f"sent? {interrupt('send ' + state['topic'] + '?')}"}


_plain = PlainStateGraph(Flow)
_plain.add_node("confirm", confirm)
_plain.add_edge(START, "confirm")
_plain.add_edge("confirm", END)
wrapped = rg.langchain.app(_plain.compile(), name="wrapped_confirm", input=Ask, roles=["default"])

SHAPES = {"two_in_one_node": approval, "send_branches": branches, "subgraph": nested, "wrapped_app": wrapped}
FINAL = {"two_in_one_node": "yes to approve plan for tides? / yes to any note?",
         "send_branches": "ferns: yes to review ferns?; moss: yes to review moss?",
         "subgraph": "told yes to what about tides?", "wrapped_app": "sent? yes to send tides?"}
QUESTIONS = {"two_in_one_node": [["approve plan for tides?"], ["any note?"]],
             "send_branches": [["review moss?", "review ferns?"]],
             "subgraph": [["what about tides?"]], "wrapped_app": [["send tides?"]]}


def planner(request: ChatRequest) -> str:
    return f"plan for {request.messages[-1].content}"


def reply(question: Any) -> str:
    return f"yes to {question}"


def runtime_at(runs: Path) -> tuple[Runtime, FunctionModel]:
    model = FunctionModel(planner)
    return Runtime.from_models({"default": model}, traces=TraceStore(runs)), model


async def answered(graph: rg.Graph[Any], runtime: Runtime, *, by_node: bool = False) -> tuple[Any, list[list[str]]]:
    """Run `graph` and answer each stop's questions (by interrupt id, or by node key) until it ends."""
    result = await graph.run(Ask(topic="tides"), runtime=runtime)
    asked: list[list[str]] = []
    while result.status == "interrupted":
        asked.append([q.value for q in result.interrupts])
        given = {(q.node_key if by_node else q.id): reply(q.value) for q in result.interrupts}
        result = await graph.resume(result.run_id, given, runtime=runtime)
    return result, asked


def cli(*args: str) -> Any:
    done = CliRunner().invoke(cli_app, list(args), env={"COLUMNS": "200"})
    assert done.exit_code == 0, (done.output, done.exception)
    return done


# -- stopping ---------------------------------------------------------------------------------------------

async def test_a_run_that_asks_stops_interrupted_with_its_questions_everywhere_it_is_shown(tmp_path: Path) -> None:
    runtime, _ = runtime_at(tmp_path / "runs")
    result = await approval.run(Ask(topic="tides"), runtime=runtime)
    assert result.status == "interrupted" and result.error is None
    (question,) = result.interrupts
    assert (question.value, question.node, question.node_key, question.step, question.index) == \
        ("approve plan for tides?", "approve", "approve@2", 1, 0)
    assert len(question.id) == 32 and "__interrupt__" not in result.state and result.state["plan"] == "plan for tides"

    trace = Trace.load(result.trace_dir or "")
    assert trace.status == "interrupted" and trace.interrupts == [question]
    assert isinstance(trace.events[-1], RunFinished) and trace.events[-1].interrupts == [question]
    paused = [e for e in trace.of_kind(NodeFinished) if e.interrupts]
    assert [(e.node, e.error) for e in paused] == [("approve", None)]  # a pause, not an error
    (info,) = TraceStore(tmp_path / "runs").list()
    assert info.status == "interrupted"
    assert [i.run_id for i in TraceStore(tmp_path / "runs").list(status="interrupted")] == [result.run_id]

    listed = cli("trace", "list", "--runs", str(tmp_path / "runs")).output
    assert result.run_id in listed and "interrupted" in listed
    shown = " ".join(cli("trace", "show", str(result.run_id), "--runs", str(tmp_path / "runs")).output.split())
    assert "status interrupted" in shown and "waits: approve plan for tides?" in shown
    assert f"{question.id} step 1 (approve@2): approve plan for tides?" in shown
    assert f"rolegraph resume {result.run_id} --answer JSON" in shown


# -- each shape: resumed from Python, replayed offline, forked with another answer ---------------------------

@pytest.mark.parametrize("shape", SHAPES)
async def test_each_shape_resumes_from_python_replays_offline_and_forks_with_another_answer(
        tmp_path: Path, shape: str) -> None:
    graph = SHAPES[shape]
    runtime, model = runtime_at(tmp_path / "runs")
    result, asked = await answered(graph, runtime, by_node=shape == "send_branches")
    assert result.status == "ok" and result.interrupts == [] and result.state["final"] == FINAL[shape]
    assert [sorted(a) for a in asked] == [sorted(q) for q in QUESTIONS[shape]]
    assert len(model.requests) == (1 if shape == "two_in_one_node" else 0)  # a re-run node's call is not made again

    store = TraceStore(tmp_path / "runs")
    trace = store.load(result.run_id)
    given = trace.of_kind(HumanInput)
    assert [(e.interrupt.value, e.answer, e.replayed) for e in given] == \
        [(q, reply(q), False) for stop in asked for q in stop]
    assert trace.status == "ok" and trace.interrupts == []

    replayed = await replay_run(trace, store=store)  # no live runtime: anything not in the trace would raise
    again = store.load(replayed.run_id)
    assert replayed.status == "ok" and again.finished is not None and trace.finished is not None
    assert again.finished.totals.model_calls == 0 and again.finished.totals.replayed_calls == len(model.requests)
    assert comparable(again.finished.output) == comparable(trace.finished.output)
    assert [(e.answer, e.replayed) for e in again.of_kind(HumanInput)] == [(e.answer, True) for e in given]
    assert first_divergence(trace, again) is None

    first = given[0].interrupt
    fork = await replay_run(trace, store=store, live=runtime, live_from=first.step, answer="no")
    forked = store.load(fork.run_id)
    assert forked.started.parent is not None and forked.started.parent.changes == {"answer:*": '"no"'}
    assert [e.answer for e in forked.of_kind(HumanInput) if not e.replayed][:1] == ["no"]
    divergence = first_divergence(trace, forked)
    assert divergence is not None and divergence.what == "answer" and divergence.step == first.step
    if shape == "two_in_one_node":  # its second question is asked in the live part too: the fork waits for it
        assert fork.status == "interrupted" and [q.value for q in fork.interrupts] == ["any note?"]
        fork = await graph.resume(fork, "fine", runtime=runtime)
        assert fork.state["final"] == "no / fine"
    else:
        assert fork.status == "ok" and fork.state["final"] != result.state["final"] and "no" in fork.state["final"]


@pytest.mark.parametrize("shape", SHAPES)
def test_each_shape_resumes_from_the_command_line_and_replays_identical(tmp_path: Path, shape: str,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no rolegraph.toml: nothing live is called (answered calls come from the trace)
    monkeypatch.delenv("ROLEGRAPH_CONFIG", raising=False)
    runs = tmp_path / "runs"
    runtime, _ = runtime_at(runs)
    result = runtime.run_sync(SHAPES[shape].run(Ask(topic="tides"), runtime=runtime))
    run_id = str(result.run_id)
    store = TraceStore(runs)
    for _ in range(3):
        waiting = store.load(run_id).interrupts
        if not waiting:
            break
        if len(waiting) == 1:  # one question takes the bare answer, as JSON or as plain text
            done = cli("resume", run_id, "--answer", reply(waiting[0].value), "--runs", str(runs))
        else:  # several: one answer per interrupt id, here from a file
            file = tmp_path / "answers.json"
            file.write_text(json.dumps({q.id: reply(q.value) for q in waiting}))
            done = cli("resume", run_id, "--answer-file", str(file), "--runs", str(runs))
        assert f"resumed {run_id}: status" in done.output
    trace = store.load(run_id)
    assert trace.status == "ok" and trace.finished is not None and trace.finished.output["state"]["final"] == FINAL[shape]

    replayed = " ".join(cli("replay", run_id, "--runs", str(runs)).output.split())
    assert "live; status ok" in replayed and "output: identical to the recorded run" in replayed
    assert f"{len(trace.of_kind(HumanInput))} from the trace, 0 given" in replayed

    step = trace.of_kind(HumanInput)[-1].interrupt.step
    forked = " ".join(cli("replay", run_id, "--live-from", str(step), "--answer", "maybe", "--runs", str(runs)).output.split())
    # a second question asked in the fork's live part waits for its own answer
    assert f"status {'interrupted' if shape == 'two_in_one_node' else 'ok'}" in forked and " 1 given" in forked


# -- what a resume takes -------------------------------------------------------------------------------------

async def test_a_resume_takes_commands_and_says_what_is_missing(tmp_path: Path) -> None:
    runtime, _ = runtime_at(tmp_path / "runs")
    paused = await branches.run(Ask(topic="tides"), runtime=runtime)
    ids = [q.id for q in paused.interrupts]
    with pytest.raises(UserError, match="waits for human input") as no_answer:
        await branches.resume(paused, runtime=runtime)
    assert all(i in str(no_answer.value) for i in ids)
    with pytest.raises(UserError, match="waits on 2 questions") as bare:
        await branches.resume(paused, "yes", runtime=runtime)
    assert all(i in str(bare.value) for i in ids) and "review moss?" in str(bare.value)
    with pytest.raises(UserError, match="no answer for 1 of its 2 questions"):
        await branches.resume(paused, {ids[0]: "yes"}, runtime=runtime)
    with pytest.raises(UserError, match="Command"):
        await branches.resume(paused, Command(resume="x", goto="collect"), runtime=runtime)
    with pytest.raises(UserError, match="is a run of graph 'branches', not 'nested'"):
        await nested.resume(paused, "x", runtime=runtime)
    assert TraceStore(tmp_path / "runs").load(str(paused.run_id)).status == "interrupted"  # untouched

    done = await branches.resume(paused.run_id, Command(resume={i: "sure" for i in ids}), runtime=runtime)
    assert done.status == "ok" and done.state["final"] == "ferns: sure; moss: sure"
    with pytest.raises(UserError, match="already finished"):
        await branches.resume(done, "again", runtime=runtime)

    # one question: a dict is the answer itself, even when a key is the asking node's name
    asking = await approval.run(Ask(topic="tides"), runtime=runtime)
    asking = await approval.resume(asking, {"approve": True}, runtime=runtime)
    (second,) = asking.interrupts
    done = await approval.resume(asking, {second.id: "noted"}, runtime=runtime)  # or keyed by its interrupt id
    assert done.state["final"] == "{'approve': True} / noted"


# -- a process killed while its run was paused ------------------------------------------------------------------

PAUSE_AND_WAIT = """
import sys, time
from rolegraph import Runtime
from rolegraph.models import FunctionModel
from rolegraph.traces import TraceStore
from tests.unit.test_interrupts import Ask, approval, planner
rt = Runtime.from_models({"default": FunctionModel(planner)}, traces=TraceStore(sys.argv[1]))
result = rt.run_sync(approval.run(Ask(topic="tides"), runtime=rt))
print("paused", result.run_id, result.status, flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("recorded_its_end", [True, False])
def test_a_run_killed_while_paused_resumes_from_the_command_line(tmp_path: Path, recorded_its_end: bool,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ROLEGRAPH_CONFIG", raising=False)
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-c", PAUSE_AND_WAIT, str(runs)], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    word, run_id, status = proc.stdout.readline().split()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (word, status) == ("paused", "interrupted")
    log = runs / run_id / "events.jsonl"
    if not recorded_its_end:  # killed after the node stopped at its question, before the run recorded its end
        lines = log.read_bytes().splitlines(keepends=True)
        assert json.loads(lines[-1])["kind"] == "run_finished"
        log.write_bytes(b"".join(lines[:-1]))
    trace = TraceStore(runs).load(run_id)
    assert trace.status == ("interrupted" if recorded_its_end else "incomplete")
    assert [q.value for q in trace.interrupts] == ["approve plan for tides?"]

    cli("resume", run_id, "--answer", '{"ok": true}', "--runs", str(runs))
    waiting = TraceStore(runs).load(run_id)
    assert waiting.status == "interrupted" and [q.value for q in waiting.interrupts] == ["any note?"]
    cli("resume", run_id, "--answer", "fine", "--runs", str(runs))
    done = TraceStore(runs).load(run_id)
    assert done.status == "ok" and done.finished is not None
    assert done.finished.output["state"]["final"] == "{'ok': True} / fine"
    live = [e for e in done.of_kind(ModelCall) if not e.replayed]
    assert len(live) == 1  # the plan was made once, before the kill; the rest came from the trace
    assert [e.answer for e in done.of_kind(HumanInput)] == [{"ok": True}, "fine"]
    replayed = " ".join(cli("replay", run_id, "--runs", str(runs)).output.split())
    assert "output: identical to the recorded run" in replayed


# -- evaluations -------------------------------------------------------------------------------------------------

def sent(output: Any) -> float:
    return float("sent? yes" in str(output))


CASES = [Case(id="c1", input=Ask(topic="tides")), Case(id="c2", input=Ask(topic="moss"))]


async def test_an_evaluation_answers_from_scripted_answers_and_fails_a_case_left_asking(tmp_path: Path) -> None:
    async def score(case: Case, output: Any) -> Score:
        return Score(value=sent(output))

    score.name = "sent"  # type: ignore[attr-defined]
    runtime, _ = runtime_at(tmp_path / "runs")
    rules = tmp_path / "answers.jsonl"
    rules.write_text("".join(json.dumps(rule) + "\n" for rule in ({"case": "c2", "answer": "no"},
                                                                   {"question": "send tides?", "answer": "yes"})))

    bench = Benchmark(name="confirm", cases=lambda: iter(CASES), solver=wrapped.solver(answers=rules), scorers=[score])
    store = EvalStore(tmp_path / "evals" / "with" / "results.sqlite")
    await run_eval(bench, runtime, store=store, progress=False)
    records = {r.case_id: r for r in store.records()}
    assert {k: (r.status, r.scores["sent"].value) for k, r in records.items()} == {"c1": ("ok", 1.0), "c2": ("ok", 0.0)}
    assert [e.answer for e in TraceStore(tmp_path / "runs").load(str(records["c1"].run_id)).of_kind(HumanInput)] == ["yes"]

    unanswered = Benchmark(name="confirm", cases=lambda: iter(CASES), solver=wrapped.solver(), scorers=[score])
    bare = EvalStore(tmp_path / "evals" / "without" / "results.sqlite")
    await run_eval(unanswered, runtime, store=bare, progress=False)
    for r in bare.records():
        assert r.status == "error" and r.error is not None and r.error.startswith("HumanInputNeeded: case")
        assert "stopped for human input" in r.error and "--answers FILE" in r.error and r.run_id is not None

    partial = AnswerBook.load(rules)
    with pytest.raises(HumanInputNeeded, match=r"no rule of one\.jsonl answers: \w+ \(step 0, confirm@1\)"):
        await wrapped.solver(answers=AnswerBook((partial.rules[0],), "one.jsonl"))(CASES[0], runtime, repeat=0, seed=0)


def test_the_eval_command_takes_an_answers_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ROLEGRAPH_CONFIG", raising=False)
    (tmp_path / "cases.jsonl").write_text("\n".join(json.dumps({"id": c.id, "input": c.input.model_dump()})
                                                    for c in CASES) + "\n")
    (tmp_path / "answers.jsonl").write_text(json.dumps({"node": "confirm", "answer": "yes"}) + "\n")
    done = cli("eval", "tests.unit.test_interrupts:wrapped", "--data", "cases.jsonl", "--answers", "answers.jsonl",
               "--scorer", "tests.unit.test_interrupts:sent", "--out", str(tmp_path / "evals"))
    assert "runs ok" in done.output and "sent" in done.output and "1.000" in done.output
    (tmp_path / "bad.jsonl").write_text(json.dumps({"nodes": "confirm", "answer": "yes"}) + "\n")
    refused = CliRunner().invoke(cli_app, ["eval", "tests.unit.test_interrupts:wrapped", "--data", "cases.jsonl",
                                           "--answers", "bad.jsonl"])
    assert isinstance(refused.exception, UserError)  # the command line prints it as one line
    assert "bad.jsonl:1: field 'nodes': unknown key 'nodes'" in str(refused.exception)


def test_answers_given_as_text_or_json_and_a_fork_answer_needs_a_question_to_change(tmp_path: Path) -> None:
    from rolegraph.graphs._human import answer_text

    assert answer_text("yes") == "yes" and answer_text('"yes"') == "yes" and answer_text("true") is True
    assert answer_text('{"approve": false}') == {"approve": False}
    runtime, _ = runtime_at(tmp_path / "runs")
    done, _ = asyncio.run(answered(nested, runtime))
    trace = TraceStore(tmp_path / "runs").load(done.run_id)
    with pytest.raises(UserError, match="asked no question at or after step 2"):
        asyncio.run(replay_run(trace, store=TraceStore(tmp_path / "runs"), live=runtime, live_from=2, answer="x"))
    with pytest.raises(UserError, match="give --live-from STEP too"):
        asyncio.run(replay_run(trace, answer="x"))


def test_a_fork_from_the_run_page_changes_the_human_answer(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from rolegraph.ui import create_app

    runtime, _ = runtime_at(tmp_path / "runs")
    done, _ = asyncio.run(answered(nested, runtime))
    store = TraceStore(tmp_path / "runs")
    step = store.load(done.run_id).of_kind(HumanInput)[0].interrupt.step
    ui = TestClient(create_app(runs=tmp_path / "runs", evals=tmp_path / "evals", live=lambda: runtime_at(tmp_path / "runs")[0]),
                    headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"})
    page = ui.get(f"/runs/{done.run_id}").text
    assert 'name="answer"' in page and 'name="role"' not in page  # the graph has no roles: only the answer changes

    sent = ui.post(f"/runs/{done.run_id}/fork", data={"step": str(step), "answer": "not now"}, follow_redirects=False)
    assert sent.status_code == 303
    ui.app.state.jobs.join(timeout=30)  # type: ignore[attr-defined]
    job = ui.get(sent.headers["location"] + ".json").json()
    assert job["state"] == "done", job
    forked = store.load(job["run_id"])
    assert forked.started.parent is not None and forked.started.parent.changes == {"answer:*": '"not now"'}
    assert forked.finished is not None and "told not now" in json.dumps(forked.finished.output), forked.finished.output
    nothing = ui.post(f"/runs/{done.run_id}/fork", data={"step": str(step), "model": "other"})
    assert nothing.status_code == 400 and "names the role it changes" in nothing.text
