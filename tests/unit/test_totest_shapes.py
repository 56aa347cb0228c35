"""`rolegraph trace to-test` from any step: every step of a run of each graph shape (a plain node,
a `Send` fan-out, a subgraph and its inner step, a functional-API workflow and its tasks, a
LangGraph app with a ToolNode, a prebuilt ReAct agent) becomes a test, and each written test passes under pytest in a
fresh process; a step that cannot become a passing test is refused, saying why."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from rolegraph import Runtime, UserError
from rolegraph.graphs import load_graph, replay_step
from rolegraph.models import ChatRequest, ChatResponse, FunctionModel, ToolCall
from rolegraph.traces import NodeStarted, Trace, TraceStore, comparable, reach_step
from rolegraph.traces._totest import write_test

ROOT = Path(__file__).resolve().parents[2]

GRAPH = '''
import operator
import time
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START
from langgraph.types import Send
from pydantic import BaseModel

import rolegraph as rg
from rolegraph import Agent, Runtime


class State(TypedDict, total=False):
    topics: list[str]
    notes: Annotated[list[str], operator.add]
    summary: str
    at: int


class Inner(TypedDict, total=False):
    notes: list[str]
    summary: str


class Topic(BaseModel):
    topic: str


class Topics(BaseModel):
    topics: list[str]


note = Agent(name="noter", prompt="note", output=str)
summary = Agent(name="summarizer", prompt="summary", output=str)


async def lookup(topic: str) -> str:
    return f"{len(topic)} letters"


async def plan(state: State) -> dict[str, Any]:  # a plain node
    return {"topics": sorted(state["topics"])}


async def write_note(payload: Topic, runtime: Runtime) -> dict[str, Any]:  # a Send target, given a model
    facts = await runtime.call_tool("lookup", lookup, payload.topic)
    return {"notes": [await note.run(runtime, topic=payload.topic, facts=facts)]}


async def summarize(state: Inner, runtime: Runtime) -> dict[str, Any]:  # inside the subgraph
    return {"summary": await summary.run(runtime, notes=sorted(state["notes"]))}


def fan_out(state: State) -> list[Send]:
    return [Send("note", Topic(topic=t)) for t in state["topics"]]


@rg.graph(input=Topics, state=State, prompts="prompts", agents=[note, summary])
def shapes(g: rg.StateGraph) -> None:
    inner = rg.StateGraph(Inner)
    inner.add_node(summarize)
    inner.add_edge(START, "summarize")
    inner.add_edge("summarize", END)
    g.add_node(plan)
    g.add_node("note", write_note)
    g.add_node("report", inner.compile())
    g.add_edge(START, "plan")
    g.add_conditional_edges("plan", fan_out, ["note"])
    g.add_edge("note", "report")
    g.add_edge("report", END)


async def stamp(state: State) -> dict[str, Any]:  # returns something new every time it runs
    return {"at": time.perf_counter_ns()}


async def broken(state: State) -> dict[str, Any]:
    raise ValueError("no topics today")


@rg.graph(input=Topics, state=State, recorded_failures=(ValueError,))
def uneven(g: rg.StateGraph) -> None:
    g.add_node(stamp)
    g.add_node(broken)
    g.add_edge(START, "stamp")
    g.add_edge("stamp", "broken")
'''

WORKFLOW = '''
from langchain_core.tools import tool
from langgraph.func import entrypoint, task

import rolegraph as rg

writer = rg.langchain.RoleChatModel(role="writer")


@tool
def shout(text: str) -> str:
    """Say it louder."""
    return text.upper()


SHOUT = rg.langchain.tools([shout])[0]


@task
def outline(topic: str) -> list[str]:
    return [f"{topic} {i}" for i in range(2)]


@task
async def draft(point: str) -> str:
    return (await writer.ainvoke(f"Write on {point}.")).content


@task
async def loud(points: list[str]) -> list[str]:  # a task calling tasks
    drafts = [draft(p) for p in points]
    return [await SHOUT.ainvoke({"text": await d}) for d in drafts]


@entrypoint()
async def essay(topic: str) -> str:
    return " / ".join(await loud(await outline(topic)))


app = rg.langchain.app(essay, name="essay_flow")
'''

LANGGRAPH_APP = '''
from typing import Annotated, TypedDict

from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, create_react_agent

import rolegraph as rg


@tool
def convert(value: float) -> str:
    """Miles to kilometres."""
    return f"{value * 1.609:.2f} km"


TOOLS = rg.langchain.tools([convert])
llm = rg.langchain.RoleChatModel(role="assistant").bind_tools(TOOLS)


class State(TypedDict):
    messages: Annotated[list, add_messages]


def assistant(state: State) -> dict:  # a sync node: LangGraph runs it on a worker thread
    return {"messages": [llm.invoke(state["messages"])]}


def route(state: State) -> str:
    return "tools" if state["messages"][-1].tool_calls else END


builder = StateGraph(State)
builder.add_node("assistant", assistant)
builder.add_node("tools", ToolNode(TOOLS))
builder.add_edge(START, "assistant")
builder.add_conditional_edges("assistant", route, ["tools", END])
builder.add_edge("tools", "assistant")
chat = rg.langchain.app(builder.compile(), name="chat_app")
react = rg.langchain.app(create_react_agent(rg.langchain.RoleChatModel(role="assistant"), TOOLS), name="react_app")
'''


def reply(request: ChatRequest) -> Any:
    last = request.messages[-1]
    if request.tools and last.role == "user":
        return ChatResponse(tool_calls=[ToolCall(id="c1", name="convert", arguments='{"value": 3}')],
                            finish_reason="tool_calls")
    return f"said: {(last.content or '')[:60]}"


def user_file(folder: Path, name: str, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prompts").mkdir(exist_ok=True)
    (folder / "prompts" / "note.j2").write_text("A note on {{ topic }} ({{ facts }}).")
    (folder / "prompts" / "summary.j2").write_text("Sum up: {{ notes | join('; ') }}")
    path = folder / f"{name}.py"
    path.write_text(source)
    return path


async def record(tmp_path: Path, source: str, module: str, attr: str, value: dict[str, Any]) -> Trace:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = load_graph(f"{user_file(tmp_path / 'user', module, source)}:{attr}")
    store = TraceStore(tmp_path / "runs")
    roles = {role: FunctionModel(reply) for role in ("noter", "summarizer", "writer", "assistant")}
    async with Runtime.from_models(roles, traces=store) as rt:
        result = await graph.run(value, runtime=rt)
    return store.load(result.run_id or "")


def pytest_in(folder: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)], cwd=cwd,
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


SHAPES = {
    "graph": (GRAPH, "shapes", {"topics": ["mitosis", "actin"]},
              {"plan": "node", "note": "send", "report": "node", "summarize": "inner"}),
    "workflow": (WORKFLOW, "app", {"topic": "owls"},
                 {"essay": "node", "outline": "task", "loud": "task", "draft": "task"}),
    "langgraph_app": (LANGGRAPH_APP, "chat", {"messages": [{"role": "user", "content": "3 mi in km?"}]},
                      {"assistant": "node", "tools": "node"}),
    "react_agent": (LANGGRAPH_APP, "react", {"messages": [{"role": "user", "content": "3 mi in km?"}]},
                    {"agent": "node", "tools": "send"}),  # its ToolNode gets each tool call by Send
}


@pytest.mark.parametrize("shape", list(SHAPES))
async def test_every_step_becomes_a_test_that_passes_on_the_run_it_came_from(tmp_path: Path, shape: str) -> None:
    source, attr, value, shapes = SHAPES[shape]
    trace = await record(tmp_path, source, f"{shape}_graph", attr, value)
    steps = sorted({e.step for e in trace.of_kind(NodeStarted)})
    assert {e.node: reach_step(trace, e.step).shape for e in trace.of_kind(NodeStarted)} == shapes
    out = tmp_path / "recorded"
    for step in steps:
        replayed = await replay_step(trace, step)  # in this process too: the step's own return, not another's
        assert comparable(replayed.delta) == comparable(replayed.recorded_delta)
        write_test(trace, step, out)
    done = pytest_in(out, tmp_path)
    assert done.returncode == 0 and f"{len(steps)} passed" in done.stdout, done.stdout + done.stderr


async def test_a_send_target_gets_its_payload_and_a_subgraph_step_is_reached_through_its_node(tmp_path: Path) -> None:
    trace = await record(tmp_path, GRAPH, "send_graph", "shapes", {"topics": ["b", "a"]})
    by_node = {e.node: e for e in trace.of_kind(NodeStarted)}
    sent, inner = by_node["note"], by_node["summarize"]
    assert sent.state == {"topic": "b"}  # the payload was recorded, not the graph's state
    route = reach_step(trace, inner.step)
    assert route.outer.node == "report" and "reached by calling step" in route.how
    replayed = await replay_step(trace, inner.step)
    assert replayed.via == by_node["report"].step and replayed.calls_answered == 1
    assert replayed.delta == replayed.recorded_delta
    assert replayed.delta["summary"].startswith("said: Sum up: said: A note on a (1 letters).; said: A note on b")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rolegraph", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False, env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"})


async def test_the_cli_writes_only_tests_that_pass_and_says_why_it_refuses_a_step(tmp_path: Path) -> None:
    trace = await record(tmp_path, GRAPH, "cli_graph", "uneven", {"topics": ["x"]})
    stamp, broken = (next(e.step for e in trace.of_kind(NodeStarted) if e.node == n) for n in ("stamp", "broken"))
    runs, out = str(tmp_path / "runs"), tmp_path / "recorded"

    refused = cli("trace", "to-test", trace.run_id, "--runs", runs, "--step", str(broken), "--out", str(out), cwd=tmp_path)
    assert refused.returncode != 0
    assert f"step {broken} cannot become a test: step {broken} (broken) failed (ValueError: no topics today)" \
        in refused.stderr
    missing = cli("trace", "to-test", trace.run_id, "--runs", runs, "--step", "9", "--out", str(out), cwd=tmp_path)
    assert missing.returncode != 0 and "has no step 9 (it has steps 0-1" in missing.stderr

    # the stamp's return changes on every run: the written test could not pass, so none is kept
    unstable = cli("trace", "to-test", trace.run_id, "--runs", runs, "--step", str(stamp), "--out", str(out), cwd=tmp_path)
    assert unstable.returncode != 0, unstable.stdout
    assert f"step {stamp} cannot become a test that passes: run again by itself, it fails with AssertionError" \
        in unstable.stderr
    assert not list(out.glob("*.py")) and not (out / "traces" / trace.run_id).exists()

    with pytest.raises(UserError, match="did not finish"):  # a step cut off by a kill: the log ends inside it
        log = trace.dir / "events.jsonl"
        lines = log.read_text().splitlines()
        cut = next(i for i, line in enumerate(lines) if '"node_finished"' in line and '"stamp"' in line)
        log.write_text("\n".join(lines[:cut]) + "\n")
        reach_step(Trace.load(trace.dir), stamp)


async def test_the_cli_writes_a_passing_test_of_a_functional_task(tmp_path: Path) -> None:
    trace = await record(tmp_path, WORKFLOW, "cli_flow", "app", {"topic": "bats"})
    loud = next(e for e in trace.of_kind(NodeStarted) if e.node == "loud")
    out = tmp_path / "recorded"
    done = cli("trace", "to-test", trace.run_id, "--runs", str(tmp_path / "runs"), "--step", str(loud.step),
               "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    written = Path(done.stdout.strip())
    assert "the functional-API task called with its recorded arguments" in written.read_text()
    ran = pytest_in(written, tmp_path)
    assert ran.returncode == 0 and "1 passed" in ran.stdout, ran.stdout + ran.stderr
