"""The recorder on the graph shapes LangGraph allows: Send fan-out, subgraphs, tools, loops.
Replay must answer every model and tool call from the trace, whatever the shape."""

from __future__ import annotations

import asyncio
import operator
import re
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START
from langgraph.types import Send
from pydantic import BaseModel

import rolegraph as rg
from rolegraph import Agent, Runtime
from rolegraph.graphs import replay_run
from rolegraph.models import ChatRequest, FunctionModel
from rolegraph.prompts import PromptLibrary
from rolegraph.traces import ModelCall, NodeStarted, ReplayMismatch, ToolInvocation, TraceStore


class State(TypedDict, total=False):
    topics: list[str]
    notes: Annotated[list[str], operator.add]
    summary: str
    rounds: int


class Inner(TypedDict, total=False):
    notes: list[str]
    summary: str


note = Agent(name="noter", prompt="shapes/note", output=str)
summarize_agent = Agent(name="summarizer", prompt="shapes/summary", output=str)


async def lookup(topic: str) -> dict[str, Any]:  # a tool with a large answer (goes to a blob)
    await asyncio.sleep(0)
    return {"topic": topic, "facts": [f"{topic} fact {i}" for i in range(5000)]}


async def write_note(state: dict[str, Any], runtime: Runtime) -> dict[str, Any]:
    facts = await runtime.call_tool("lookup", lookup, state["topic"])
    text = await note.run(runtime, topic=state["topic"], n=len(facts["facts"]))
    return {"notes": [text]}


async def summarize(state: Inner, runtime: Runtime) -> dict[str, Any]:
    text = await summarize_agent.run(runtime, notes=sorted(state["notes"]))
    return {"summary": text}


async def count(state: State) -> dict[str, Any]:
    return {"rounds": state.get("rounds", 0) + 1}


def fan_out(state: State) -> list[Send]:
    return [Send("note", {"topic": t}) for t in state["topics"]]


class Topics(BaseModel):
    topics: list[str]


class _Result(rg.RunResult):
    summary: str
    notes: list[str]


@rg.graph(input=Topics, state=State, result=_Result, recursion_limit=40, agents=[note, summarize_agent],
          start=lambda topics: {"topics": topics.topics, "notes": []},
          finish=lambda state: {"summary": state["summary"], "notes": state["notes"]})
def shapes(graph: rg.StateGraph) -> None:
    inner = rg.StateGraph(Inner)
    inner.add_node(summarize)
    inner.add_edge(START, "summarize")
    inner.add_edge("summarize", END)

    graph.add_node(count)
    graph.add_node("note", write_note)
    graph.add_node("report", inner.compile())
    graph.add_edge(START, "count")
    graph.add_conditional_edges("count", fan_out, ["note"])
    graph.add_edge("note", "report")
    graph.add_conditional_edges("report", lambda s: END if s["rounds"] >= 2 else "count", ["count", END])


@pytest.fixture
def prompts(tmp_path: Path) -> PromptLibrary:
    d = tmp_path / "prompts" / "shapes"
    d.mkdir(parents=True)
    (d / "note.j2").write_text("Write a note on {{ topic }} ({{ n }} facts).")
    (d / "summary.j2").write_text("Summarise: {{ notes | join('; ') }}")
    return PromptLibrary(tmp_path / "prompts")


async def answer(request: ChatRequest) -> str:
    last = request.messages[-1].content or ""
    await asyncio.sleep(0.001 * (len(last) % 7))  # finish out of order
    return f"ok: {last[:40]}"


async def test_send_subgraph_tool_and_loop_are_recorded_and_replayed(tmp_path: Path, prompts: PromptLibrary) -> None:
    store = TraceStore(tmp_path / "runs")
    rt = Runtime.from_models({"default": FunctionModel(answer)}, prompts=prompts, traces=store)
    result = await shapes.run(Topics(topics=["mitosis", "actin", "cilia"]), runtime=rt)
    trace = store.load(result.run_id or "")
    nodes = trace.of_kind(NodeStarted)
    # two rounds of: count, three Send'd notes, the subgraph's summarize
    assert [n.node for n in nodes].count("note") == 6 and [n.node for n in nodes].count("summarize") == 2
    assert {tuple(n.path) for n in nodes if n.node == "summarize"} == {("report", "summarize")}
    assert len({n.key for n in nodes}) == len(nodes)  # every execution has its own identity
    assert all("[" in n.key for n in nodes if n.node == "note")  # Send index in the key
    tools = trace.of_kind(ToolInvocation)
    # each large answer is stored once as a blob (the one reference shape) and put back on load
    assert len(tools) == 6 and all(len(t.output["facts"]) == 5000 for t in tools)
    log = (trace.dir / "events.jsonl").read_text()
    assert log.count('"$rolegraph_blob"') >= 6 and '"facts"' not in log.split('"tool_call"')[1][:500]
    assert len(trace.of_kind(ModelCall)) == 8

    replayed = await replay_run(trace, store=store, library=prompts)
    assert replayed.summary == result.summary and sorted(replayed.notes) == sorted(result.notes)
    new = store.load(replayed.run_id or "")
    assert new.finished is not None and new.finished.totals.model_calls == 0
    assert all(t.replayed for t in new.of_kind(ToolInvocation))  # answered from the trace: the tool did not run
    # the recorded tool output came back from the blob store, not from running the tool
    assert [t.output for t in new.of_kind(ToolInvocation)] == [t.output for t in tools]

    # a trace written with the former reference shape ({"blob", "size"}) still replays
    log = trace.dir / "events.jsonl"
    old_shape = re.sub(r'\{"\$rolegraph_blob":"([0-9a-f]{64})","size":(\d+),"json":true\}', r'{"blob":"\1","size":\2}',
                       log.read_text())
    assert old_shape.count('{"blob":') == 6
    log.write_text(old_shape)
    again = await replay_run(store.load(trace.run_id), store=store, library=prompts)
    assert again.summary == result.summary


async def test_changed_tool_input_is_a_mismatch(tmp_path: Path, prompts: PromptLibrary) -> None:
    store = TraceStore(tmp_path / "runs")
    rt = Runtime.from_models({"default": FunctionModel(answer)}, prompts=prompts, traces=store)
    result = await shapes.run({"topics": ["a", "b"]}, runtime=rt)
    trace = store.load(result.run_id or "")
    trace.started.manifest.input = {"topics": ["a", "B"]}  # as if the input had changed
    with pytest.raises(ReplayMismatch, match="input of tool 'lookup'"):
        await replay_run(trace, store=store, library=prompts)


class Counter(BaseModel):
    n: int = 0


ROUTED_ON: list[int] = []


async def bump(state: Counter) -> dict[str, Any]:
    return {"n": state.n + 1}


def again(state: Counter, config: RunnableConfig) -> str:  # a plain route asking for LangGraph's config
    import threading

    ROUTED_ON.append(threading.get_ident())
    assert config["metadata"]["langgraph_node"] == "bump"
    return "bump" if state.n < 3 else END


@rg.graph(input=Counter, state=Counter, name="inline_routes")
def inline_routes(graph: rg.StateGraph) -> None:
    graph.add_node(bump)
    graph.add_edge(START, "bump")
    graph.add_conditional_edges("bump", again, ["bump", END])


async def test_a_plain_route_runs_on_the_event_loop_with_its_config(tmp_path: Path) -> None:
    import threading

    ROUTED_ON.clear()
    result = await inline_routes.run(Counter(), runtime=Runtime.from_models({}, traces=tmp_path / "runs"))
    assert result.state["n"] == 3
    assert ROUTED_ON and set(ROUTED_ON) == {threading.get_ident()}  # not LangGraph's thread pool
