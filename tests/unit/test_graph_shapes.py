"""The recorder on the graph shapes LangGraph allows: Send fan-out, subgraphs, tools, loops.
Replay must answer every model and tool call from the trace, whatever the shape."""

from __future__ import annotations

import asyncio
import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from pydantic import BaseModel

from rolegraph import Agent, Runtime
from rolegraph.graphs._run import GraphSpec, Prepared, run_graph
from rolegraph.models import ChatRequest, FunctionModel
from rolegraph.prompts import PromptLibrary
from rolegraph.traces import Manifest, ModelCall, NodeStarted, ReplayMismatch, ToolCall, TraceStore, traced_node
from rolegraph.traces._replay import replay_run


class State(TypedDict, total=False):
    topics: list[str]
    notes: Annotated[list[str], operator.add]
    summary: str
    rounds: int


class Inner(TypedDict, total=False):
    notes: list[str]
    summary: str


def build(runtime: Runtime) -> Any:
    note = Agent(name="noter", prompt="shapes/note", output=str)
    summarize_agent = Agent(name="summarizer", prompt="shapes/summary", output=str)

    async def lookup(topic: str) -> dict[str, Any]:  # a tool with a large answer (goes to a blob)
        await asyncio.sleep(0)
        return {"topic": topic, "facts": [f"{topic} fact {i}" for i in range(2000)]}

    async def write_note(state: dict[str, Any]) -> dict[str, Any]:
        facts = await runtime.call_tool("lookup", lookup, state["topic"])
        text = await note.run(runtime, topic=state["topic"], n=len(facts["facts"]))
        return {"notes": [text]}

    async def summarize(state: Inner) -> dict[str, Any]:
        text = await summarize_agent.run(runtime, notes=sorted(state["notes"]))
        return {"summary": text}

    inner = StateGraph(Inner)
    inner.add_node("summarize", traced_node("summarize", summarize))
    inner.add_edge(START, "summarize")
    inner.add_edge("summarize", END)

    async def count(state: State) -> dict[str, Any]:
        return {"rounds": state.get("rounds", 0) + 1}

    def fan_out(state: State) -> list[Send]:
        return [Send("note", {"topic": t}) for t in state["topics"]]

    graph = StateGraph(State)
    graph.add_node("count", traced_node("count", count))
    graph.add_node("note", traced_node("note", write_note))
    graph.add_node("report", inner.compile())
    graph.add_edge(START, "count")
    graph.add_conditional_edges("count", fan_out, ["note"])
    graph.add_edge("note", "report")
    graph.add_conditional_edges("report", lambda s: END if s["rounds"] >= 2 else "count", ["count", END])
    return graph.compile(name="shapes")


class _Result(BaseModel):
    summary: str
    notes: list[str]
    trace_id: str


SPEC = GraphSpec(
    "shapes",
    prepare=lambda manifest, runtime, graph: Prepared(graph or build(runtime), dict(manifest.input), 40),
    finish=lambda manifest, raw, error, run_id: _Result(summary=raw["summary"], notes=raw["notes"], trace_id=run_id),
)


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
    manifest = Manifest(graph="shapes", input={"topics": ["mitosis", "actin", "cilia"], "notes": []})
    result = await run_graph(SPEC, manifest, rt)
    trace = store.load(result.trace_id)
    nodes = trace.of_kind(NodeStarted)
    # two rounds of: count, three Send'd notes, the subgraph's summarize
    assert [n.node for n in nodes].count("note") == 6 and [n.node for n in nodes].count("summarize") == 2
    assert {tuple(n.path) for n in nodes if n.node == "summarize"} == {("report", "summarize")}
    assert len({n.key for n in nodes}) == len(nodes)  # every execution has its own identity
    assert all("[" in n.key for n in nodes if n.node == "note")  # Send index in the key
    tools = trace.of_kind(ToolCall)
    assert len(tools) == 6 and all(isinstance(t.output, dict) and "blob" in t.output for t in tools)
    assert len(trace.of_kind(ModelCall)) == 8

    replayed = await replay_run(trace, store=store, spec=SPEC, library=prompts)
    assert replayed.summary == result.summary and sorted(replayed.notes) == sorted(result.notes)
    new = store.load(replayed.trace_id)
    assert new.finished is not None and new.finished.totals.model_calls == 0
    assert all(t.replayed for t in new.of_kind(ToolCall))  # answered from the trace: the tool did not run
    # the recorded tool output came back from the blob store, not from running the tool
    blob = trace.blob(tools[0].output)
    assert len(blob["facts"]) == 2000


async def test_changed_tool_input_is_a_mismatch(tmp_path: Path, prompts: PromptLibrary) -> None:
    store = TraceStore(tmp_path / "runs")
    rt = Runtime.from_models({"default": FunctionModel(answer)}, prompts=prompts, traces=store)
    result = await run_graph(SPEC, Manifest(graph="shapes", input={"topics": ["a", "b"], "notes": []}), rt)
    trace = store.load(result.trace_id)
    trace.started.manifest.input = {"topics": ["a", "B"], "notes": []}  # as if the input had changed
    with pytest.raises(ReplayMismatch, match="input of tool 'lookup'"):
        await replay_run(trace, store=store, spec=SPEC, library=prompts)
