"""A graph written for plain LangGraph, changed only in how its models and tools are made, gets
rolegraph's traces, hermetic replay in a fresh process, fork and diff: a prebuilt ReAct agent and
a hand-written TypedDict StateGraph with a conditional edge and a ToolNode."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from pydantic import BaseModel

from rolegraph import Runtime, UserError
from rolegraph.graphs import load_graph, replay_run
from rolegraph.langchain import RoleChatModel, to_ai_message, to_message
from rolegraph.models import ChatResponse, ScriptedModel, ToolCall
from rolegraph.traces import ModelCall, NodeFinished, NodeStarted, TraceStore, first_divergence
from rolegraph.traces import ToolInvocation as ToolEvent

ROOT = Path(__file__).resolve().parents[2]

APP = '''
import os
from typing import Annotated, TypedDict

from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, create_react_agent

import rolegraph as rg


def _executed(name):
    with open(os.environ["RG_TOOL_LOG"], "a") as fh:
        fh.write(name + "\\n")


@tool
def convert(value: float, unit: str) -> str:
    """Convert a length between miles (mi) and kilometres (km)."""
    _executed("convert")
    return f"{value * 1.609:.2f} km" if unit == "mi" else f"{value / 1.609:.2f} mi"


@tool
def population(city: str) -> str:
    """The population of a city."""
    _executed("population")
    return {"paris": "2.1 million", "lyon": "0.5 million"}.get(city.lower(), "unknown")


TOOLS = rg.langchain.tools([convert, population])
react = rg.langchain.app(create_react_agent(rg.langchain.RoleChatModel(role="agent"), TOOLS), name="react_{suffix}")


class State(TypedDict):
    messages: Annotated[list, add_messages]
    rounds: int


llm = rg.langchain.RoleChatModel(role="assistant").bind_tools(TOOLS)


def assistant(state: State) -> dict:  # a sync node: LangGraph runs it in a worker thread
    return {"messages": [llm.invoke(state["messages"])], "rounds": state.get("rounds", 0) + 1}


def route(state: State) -> str:
    return "tools" if state["messages"][-1].tool_calls else END


builder = StateGraph(State)
builder.add_node("assistant", assistant)
builder.add_node("tools", ToolNode(TOOLS))
builder.add_edge(START, "assistant")
builder.add_conditional_edges("assistant", route, ["tools", END])
builder.add_edge("tools", "assistant")
handmade = rg.langchain.app(builder.compile(), name="handmade_{suffix}")
'''


def call(tool: str, args: str, ident: str) -> ChatResponse:
    return ChatResponse(tool_calls=[ToolCall(id=ident, name=tool, arguments=args)], finish_reason="tool_calls")


@pytest.fixture
def app_file(tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Path:
    suffix = request.node.name.replace("[", "_").replace("]", "")[:30]
    path = tmp_path / "user" / f"lgapp_{suffix}.py"
    path.parent.mkdir()
    path.write_text(APP.replace("{suffix}", suffix))
    monkeypatch.setenv("RG_TOOL_LOG", str(tmp_path / "tools.log"))
    (tmp_path / "tools.log").write_text("")
    return path


def executed(tmp_path: Path) -> list[str]:
    return (tmp_path / "tools.log").read_text().split()


def load(app_file: Path, which: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # create_react_agent's move to langchain.agents
        return load_graph(f"{app_file}:{which}")


REACT_SCRIPT: list[Any] = [call("convert", '{"value": 3, "unit": "mi"}', "c1"), call("population", '{"city": "Paris"}', "c2"),
                "3 mi is 4.83 km; Paris has 2.1 million people."]
QUESTION = {"messages": [{"role": "user", "content": "How far is 3 mi in km, and how many live in Paris?"}]}


async def test_react_agent_replays_in_a_fresh_process_with_no_model_and_no_tool(tmp_path: Path, app_file: Path) -> None:
    react = load(app_file, "react")
    assert react.roles() == ["agent"]
    store = TraceStore(tmp_path / "runs")
    async with Runtime.from_models({"agent": ScriptedModel(REACT_SCRIPT)}, traces=store) as rt:
        result = await react.run(QUESTION, runtime=rt)
    assert executed(tmp_path) == ["convert", "population"]
    final = result.state["messages"][-1]
    assert final.content == "3 mi is 4.83 km; Paris has 2.1 million people."
    trace = store.load(result.run_id or "")
    assert [e.node for e in trace.of_kind(NodeStarted)] == ["agent", "tools", "agent", "tools", "agent"]
    assert [(t.name, t.output) for t in trace.of_kind(ToolEvent)] == [
        ("langchain.convert", "4.83 km"), ("langchain.population", "2.1 million")]
    calls = trace.of_kind(ModelCall)
    assert len(calls) == 3 and calls[0].request.tools and calls[1].request.messages[-1].role == "tool"
    assert trace.finished is not None and trace.finished.totals.prompt_tokens > 0

    # a fresh process, no network at all: the model and the tools are answered from the trace
    script = ("import socket\n"
              "def cut(*a, **k):\n    raise OSError('network cut off')\n"
              "socket.socket.connect = cut\nsocket.socket.connect_ex = cut\n"
              "import sys\nfrom rolegraph.cli import main\nsys.argv = ['rolegraph', *sys.argv[1:]]\nmain()\n")
    done = subprocess.run([sys.executable, "-c", script, "replay", result.run_id or "", "--runs", str(store.root)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert "3 calls answered from the trace, 0 live" in done.stdout
    assert "output: identical to the recorded run" in done.stdout
    assert executed(tmp_path) == ["convert", "population"]  # no tool ran again

    # a fork at the second model call: the calls before it are replayed, it and the rest are live
    second = calls[1].step
    live = ScriptedModel([call("population", '{"city": "Lyon"}', "c9"), "Lyon has 0.5 million people."])
    async with Runtime.from_models({"agent": live}) as live_rt:
        forked = await replay_run(trace, store=store, live=live_rt, live_from=second)
    fork = store.load(forked.run_id or "")
    assert [(c.step, c.replayed) for c in fork.of_kind(ModelCall)] == [(0, True), (2, False), (4, False)]
    assert executed(tmp_path) == ["convert", "population", "population"]  # only the tool after the fork ran
    assert forked.state["messages"][-1].content == "Lyon has 0.5 million people."


async def test_a_handwritten_typeddict_graph_is_recorded_step_by_step_and_diffed(tmp_path: Path, app_file: Path) -> None:
    handmade = load(app_file, "handmade")
    store = TraceStore(tmp_path / "runs")
    runs = []
    for answer in ("It is 4.83 km.", "About five km."):
        script = [call("convert", '{"value": 3, "unit": "mi"}', "c1"), answer]
        async with Runtime.from_models({"assistant": ScriptedModel(script)}, traces=store) as rt:
            runs.append(await handmade.run({"messages": [{"role": "user", "content": "3 mi in km?"}]}, runtime=rt))
    a, b = (store.load(r.run_id or "") for r in runs)
    finished = a.of_kind(NodeFinished)
    assert [e.node for e in finished] == ["assistant", "tools", "assistant"]
    assert finished[0].delta["rounds"] == 1 and finished[2].delta["rounds"] == 2
    assert finished[1].delta["messages"][0]["content"] == "4.83 km"  # the ToolNode's update, as it returned it
    assert runs[0].state["rounds"] == 2
    divergence = first_divergence(a, b)
    assert divergence is not None and (divergence.step, divergence.what) == (2, "response")
    done = subprocess.run([sys.executable, "-m", "rolegraph", "trace", "diff", a.run_id, b.run_id, "--runs",
                           str(store.root)], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    assert "first divergence at step 2" in done.stdout and "About five km." in done.stdout


class Weather(BaseModel):
    city: str
    celsius: int


async def test_structured_output_retries_with_the_error_then_fails_typed() -> None:
    model = ScriptedModel(["it is warm", {"city": "Paris", "celsius": 21}])
    async with Runtime.from_models({"default": model}) as rt, rt_current(rt):
        weather = await RoleChatModel().with_structured_output(Weather).ainvoke("Weather in Paris?")
    assert weather == Weather(city="Paris", celsius=21)
    retry = model.requests[1]
    assert retry.response_schema is not None and "not a valid Weather" in (retry.messages[-1].content or "")
    bad = ScriptedModel(["no", "still no", '{"city": 1}'])
    async with Runtime.from_models({"default": bad}) as rt, rt_current(rt):
        with pytest.raises(OutputParserException, match="no valid Weather after 3 attempts"):
            await RoleChatModel().with_structured_output(Weather).ainvoke("Weather?")
    async with Runtime.from_models({"default": ScriptedModel(["nope"])}) as rt, rt_current(rt):
        raw = await RoleChatModel(structured_attempts=1).with_structured_output(Weather, include_raw=True).ainvoke("W?")
    assert raw["parsed"] is None and raw["raw"].content == "nope"
    assert isinstance(raw["parsing_error"], OutputParserException)


def rt_current(rt: Runtime) -> Any:
    import contextlib

    @contextlib.asynccontextmanager
    async def scope() -> Any:
        with rt.activate():
            yield

    return scope()


def test_unknown_options_and_tool_choice_are_refused_by_name() -> None:
    with pytest.raises(UserError, match="names no bound tool; tools: convert"):
        RoleChatModel().bind_tools([{"type": "function", "function": {"name": "convert", "parameters": {}}}],
                               tool_choice="weather")
    with pytest.raises(UserError, match="does not take parallel_tool_calls"):
        RoleChatModel()._request([HumanMessage(content="hi")], None, {"parallel_tool_calls": False})


def test_messages_round_trip_with_tool_calls() -> None:
    ai = AIMessage(content="", tool_calls=[{"name": "convert", "args": {"value": 3}, "id": "c1"}])
    assert to_message(ai).tool_calls[0].arguments == '{"value": 3}'
    tool = to_message(ToolMessage(content="4.83 km", tool_call_id="c1"))
    assert (tool.role, tool.tool_call_id, tool.content) == ("tool", "c1", "4.83 km")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(), st.just('{"a": ' * 200), st.just("1" * 5000), st.just('{"x": NaN}'),
                 st.just('"\\ud83d"'), st.just("[1, 2]")))
def test_any_tool_arguments_become_a_call_or_an_invalid_call(arguments: str) -> None:
    message = to_ai_message(ChatResponse(tool_calls=[ToolCall(id="c", name="t", arguments=arguments)]))
    assert len(message.tool_calls) + len(message.invalid_tool_calls) == 1
    for c in message.tool_calls:
        assert isinstance(c["args"], dict)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(), st.just('{"city": "P", "celsius": 1e999}'), st.just('[' * 500),
                 st.just('{"city": "\\ud800", "celsius": 3}'), st.just('{"city": "P", "celsius": "hot"}')))
def test_any_answer_to_structured_output_is_the_type_or_a_parser_error(text: str) -> None:
    import asyncio

    async def go() -> Any:
        async with Runtime.from_models({"default": ScriptedModel([text])}) as rt, rt_current(rt):
            return await RoleChatModel(structured_attempts=1).with_structured_output(Weather).ainvoke("W?")

    try:
        out = asyncio.run(go())
    except OutputParserException:
        return
    assert isinstance(out, Weather)
