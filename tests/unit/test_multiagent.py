"""Multi-agent apps built with LangGraph's own packages, wrapped with `rolegraph.langchain.app`: a
`create_supervisor` app with two `create_react_agent` members, a `create_swarm` of two agents whose
handoff tools go through `rg.langchain.tools`, and a `create_agent` with two middlewares. Each is
recorded with its handoffs as handoffs (not errors) and its roles found inside the agents, replayed
in a fresh process with the network cut under two PYTHONHASHSEEDs (0 live calls, the same output),
and forked at every model call. Scripted handoffs come from per-role FunctionModels."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain.agents", reason="langchain is not installed (pip install -e '.[multiagent]')")
pytest.importorskip("langgraph_supervisor", reason="langgraph-supervisor is not installed (pip install -e '.[multiagent]')")
pytest.importorskip("langgraph_swarm", reason="langgraph-swarm is not installed (pip install -e '.[multiagent]')")

from langchain_core.messages import convert_to_openai_messages
from rich.console import Console

from rolegraph import Runtime
from rolegraph.graphs import load_graph, replay_run
from rolegraph.models import ChatRequest, ChatResponse, FunctionModel, Message, ToolCall, ToolSpec
from rolegraph.traces import (
    ModelCall,
    NodeFinished,
    NodeStarted,
    ToolInvocation,
    TraceStore,
    comparable,
    render_view,
    request_diff,
)
from rolegraph.traces._diff import show_diff
from rolegraph.traces._replay import changed_fields
from rolegraph.traces._show import show

ROOT = Path(__file__).resolve().parents[2]

APP = '''
import os
from typing import Annotated, Any

from langchain.agents import create_agent
from langchain.agents.middleware import ModelCallLimitMiddleware, before_model
from langchain_core.messages import ToolMessage
from langchain_core.tools import InjectedToolCallId, tool
from langgraph.prebuilt import InjectedState, InjectedStore, create_react_agent
from langgraph.store.memory import InMemoryStore
from langgraph.types import Command
from langgraph_supervisor import create_supervisor
from langgraph_swarm import SwarmState, create_handoff_tool, create_swarm

import rolegraph as rg


def _ran(name):
    with open(os.environ["RG_TOOL_LOG"], "a") as fh:
        fh.write(name + "\\n")


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    _ran("add")
    return a + b


@tool
def lookup(topic: str) -> str:
    """Look a topic up."""
    _ran("lookup")
    return f"{topic}: 42"


math = create_react_agent(rg.langchain.RoleChatModel(role="math"), rg.langchain.tools([add]), name="math_expert",
                          prompt="You add numbers.")
research = create_react_agent(rg.langchain.RoleChatModel(role="research"), rg.langchain.tools([lookup]),
                              name="research_expert", prompt="You look things up.")
supervisor = rg.langchain.app(create_supervisor([math, research], model=rg.langchain.RoleChatModel(role="supervisor"),
                                                prompt="Send each part of the task to the right expert.").compile(),
                              name="supervisor_{suffix}")


@tool
def flight(to: str) -> str:
    """Find a flight."""
    _ran("flight")
    return f"flight to {to}: AF12"


@tool
def book(hotel: str, call_id: Annotated[str, InjectedToolCallId], state: Annotated[Any, InjectedState]) -> Command:
    """Book a hotel."""
    _ran("book")
    seen = len(state["messages"])
    return Command(update={"messages": [ToolMessage(f"booked {hotel} ({seen} messages in)", tool_call_id=call_id)]})


alice = create_react_agent(rg.langchain.RoleChatModel(role="alice"),
                           rg.langchain.tools([flight, create_handoff_tool(agent_name="bob")]), name="alice",
                           prompt="You book flights.")
bob = create_react_agent(rg.langchain.RoleChatModel(role="bob"),
                         rg.langchain.tools([book, create_handoff_tool(agent_name="alice")]), name="bob",
                         prompt="You book hotels.")


class Turn(rg.langchain.Messages):
    active_agent: str = "alice"  # the agent a turn starts with: the one the last turn left active


swarm = rg.langchain.app(create_swarm([alice, bob], default_active_agent="alice").compile(), name="swarm_{suffix}",
                         input=Turn)


@before_model
def count_turns(state, runtime):
    _ran("before_model")
    return None


@tool
def remember(fact: str, call_id: Annotated[str, InjectedToolCallId], store: Annotated[Any, InjectedStore()]) -> str:
    """Remember a fact."""
    _ran("remember")
    store.put(("facts",), call_id, {"fact": fact})
    return f"remembered {fact}"


STORE = InMemoryStore()
agent = rg.langchain.app(create_agent(rg.langchain.RoleChatModel(role="assistant"), rg.langchain.tools([remember]),
                                      system_prompt="Be brief.", store=STORE,
                                      middleware=[count_turns, ModelCallLimitMiddleware(run_limit=3)]),
                         name="agent_{suffix}")
'''


def tool_call(name: str, args: str, ident: str) -> ChatResponse:
    return ChatResponse(tool_calls=[ToolCall(id=ident, name=name, arguments=args)], finish_reason="tool_calls")


def supervisor_model(request: ChatRequest) -> Any:
    """Routes to math, then research, then answers (it counts the experts' answers it has seen)."""
    answers = [m for m in request.messages if m.role == "assistant" and m.content and not m.tool_calls]
    if not answers:
        return tool_call("transfer_to_math_expert", "{}", "sup-1")
    if len(answers) == 1:
        return tool_call("transfer_to_research_expert", "{}", "sup-2")
    return "2 + 3 is 5, and x is 42."


def expert(tool: str, args: str, answer: str) -> Any:
    def fn(request: ChatRequest) -> Any:
        last = request.messages[-1]
        done = last.role == "tool" and not (last.content or "").startswith("Successfully transferred")
        return answer if done else tool_call(tool, args, f"{tool}-1")
    return fn


def alice_model(request: ChatRequest) -> Any:
    last = request.messages[-1]
    if last.role == "user":
        return tool_call("flight", '{"to": "Rome"}', "al-1")
    if last.role == "tool" and "AF12" in (last.content or ""):
        return tool_call("transfer_to_bob", "{}", "al-2")
    return "Anything else?"


def bob_model(request: ChatRequest) -> Any:
    last = request.messages[-1]
    if last.role == "user":  # a later turn that reaches bob directly (the swarm remembers him)
        return tool_call("transfer_to_alice", "{}", "bo-2")
    if last.role == "tool" and (last.content or "").startswith("Successfully transferred"):
        return tool_call("book", '{"hotel": "Roma"}', "bo-1")
    return "Flight AF12 and hotel Roma are booked."


def assistant_model(request: ChatRequest) -> Any:
    if request.messages[-1].role == "user":
        return tool_call("remember", '{"fact": "the sky is blue"}', "as-1")
    return "Noted."


MODELS = {
    "supervisor": {"supervisor": supervisor_model, "math": expert("add", '{"a": 2, "b": 3}', "2 + 3 = 5"),
                   "research": expert("lookup", '{"topic": "x"}', "x is 42")},
    "swarm": {"alice": alice_model, "bob": bob_model},
    "agent": {"assistant": assistant_model},
}
QUESTION = {
    "supervisor": {"messages": [{"role": "user", "content": "Add 2 and 3, then look up x."}]},
    "swarm": {"messages": [{"role": "user", "content": "A trip to Rome, please."}]},
    "agent": {"messages": [{"role": "user", "content": "Remember that the sky is blue."}]},
}


def runtime(which: str, store: TraceStore | None = None) -> Runtime:
    return Runtime.from_models({r: FunctionModel(fn) for r, fn in MODELS[which].items()}, traces=store)


@pytest.fixture
def app_file(tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Path:
    suffix = request.node.name.replace("[", "_").replace("]", "")[:30]
    path = tmp_path / "user" / f"ma_{suffix}.py"
    path.parent.mkdir()
    path.write_text(APP.replace("{suffix}", suffix))
    monkeypatch.setenv("RG_TOOL_LOG", str(tmp_path / "tools.log"))
    (tmp_path / "tools.log").write_text("")
    return path


def ran(tmp_path: Path) -> list[str]:
    return (tmp_path / "tools.log").read_text().split()


def load(app_file: Path, which: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # create_react_agent's move to langchain.agents
        return load_graph(f"{app_file}:{which}")


async def record(app_file: Path, which: str, store: TraceStore) -> Any:
    graph = load(app_file, which)
    async with runtime(which, store) as rt:
        result = await graph.run(QUESTION[which], runtime=rt)
    return store.load(result.run_id or "")


# -- recorded: handoffs as handoffs, roles found inside the agents ---------------------------------

async def test_a_supervisors_handoffs_are_recorded_as_the_steps_outcome_and_its_members_roles_are_found(
        tmp_path: Path, app_file: Path) -> None:
    graph = load(app_file, "supervisor")
    assert graph.roles() == ["math", "research", "supervisor"]
    trace = await record(app_file, "supervisor", TraceStore(tmp_path / "runs"))
    assert trace.status == "ok" and sorted(trace.started.manifest.roles) == ["math", "research", "supervisor"]
    assert {"langchain", "langgraph-supervisor", "langgraph-swarm"} <= set(trace.started.manifest.packages)
    finished = trace.of_kind(NodeFinished)
    assert [(e.node, e.handoff, e.error) for e in finished] == [
        ("supervisor", ["math_expert"], None), ("math_expert", None, None), ("supervisor", ["research_expert"], None),
        ("research_expert", None, None), ("supervisor", None, None)]
    handoff = finished[0].delta["messages"]  # the command's update: the decision and its tool message
    assert handoff[-1]["type"] == "tool" and handoff[-1]["content"] == "Successfully transferred to math_expert"
    assert [(t.name, t.input, t.output) for t in trace.of_kind(ToolInvocation)] == [
        ("langchain.add", {"a": 2, "b": 3}, 5), ("langchain.lookup", {"topic": "x"}, "x: 42")]
    assert ran(tmp_path) == ["add", "lookup"]

    console = Console(record=True, width=200)
    show(trace, console)
    show(trace, console, calls=True)
    show(trace, console, step=1)
    text = console.export_text()
    assert "→ math_expert" in text and "→ research_expert" in text  # the step table's handoff column
    assert "→ transfer_to_math_expert({})" in text  # a tool-call answer shown as the call
    assert 'langchain.add({"a": 2, "b": 3}) → 5' in text  # recorded tool calls, with their step
    assert "None attempt None" not in text and "ParentCommand" not in text


async def test_a_swarms_handoff_tools_and_an_injected_call_id_tool_work_through_rg_tools(
        tmp_path: Path, app_file: Path) -> None:
    assert load(app_file, "swarm").roles() == ["alice", "bob"]
    trace = await record(app_file, "swarm", TraceStore(tmp_path / "runs"))
    assert [(e.node, e.handoff, e.error) for e in trace.of_kind(NodeFinished)] == [
        ("alice", ["bob"], None), ("bob", None, None)]
    tools = trace.of_kind(ToolInvocation)
    assert [(t.name, t.input) for t in tools] == [
        ("langchain.flight", {"to": "Rome"}), ("langchain.transfer_to_bob", {}), ("langchain.book", {"hotel": "Roma"})]
    output = trace.finished.output if trace.finished else None
    messages = output["state"]["messages"] if output else []
    assert messages[-2]["content"] == "booked Roma (6 messages in)" and messages[-2]["tool_call_id"] == "bo-1"
    assert output and output["state"]["active_agent"] == "bob"


async def test_create_agent_with_two_middlewares_and_an_injected_store_tool_records_and_replays(
        tmp_path: Path, app_file: Path) -> None:
    store = TraceStore(tmp_path / "runs")
    trace = await record(app_file, "agent", store)
    assert [e.node for e in trace.of_kind(NodeStarted)] == [
        "count_turns.before_model", "ModelCallLimitMiddleware.before_model", "model",
        "ModelCallLimitMiddleware.after_model", "tools", "count_turns.before_model",
        "ModelCallLimitMiddleware.before_model", "model", "ModelCallLimitMiddleware.after_model"]
    (remembered,) = trace.of_kind(ToolInvocation)
    assert remembered.input == {"fact": "the sky is blue"}  # the injected id and store are not its input
    assert ran(tmp_path) == ["before_model", "remember", "before_model"]
    app = sys.modules[load(app_file, "agent").ref.split(":")[0]]
    assert [i.value for i in app.STORE.search(("facts",))] == [{"fact": "the sky is blue"}]

    replayed = await replay_run(trace, store=store)
    again = store.load(replayed.run_id or "")
    assert again.finished is not None and again.finished.totals.replayed_calls == 2
    assert again.finished.totals.model_calls == 0
    assert ran(tmp_path) == ["before_model", "remember", "before_model", "before_model", "before_model"]  # no tool
    assert comparable(again.finished.output) == comparable(trace.finished.output if trace.finished else None)


@pytest.mark.parametrize("which", ["supervisor", "swarm", "agent"])
async def test_each_app_is_evaluated_as_a_benchmark_with_its_runs_recorded(tmp_path: Path, app_file: Path,
                                                                           which: str) -> None:
    from rolegraph.evals import Benchmark, Case, EvalStore, Score, run_eval

    async def answered(case: Case, output: Any) -> Score:
        return Score(value=float(bool(output["state"]["messages"][-1]["content"])))

    answered.name = "answered"  # type: ignore[attr-defined]
    graph = load(app_file, which)
    cases = [Case(id=f"c{i}", input=graph.input(QUESTION[which])) for i in range(2)]
    bench = Benchmark(name=which, cases=lambda: iter(cases), solver=graph.solver(), scorers=[answered])
    store = EvalStore(tmp_path / "eval" / "results.sqlite")
    async with runtime(which, TraceStore(tmp_path / "runs")) as rt:
        summary = await run_eval(bench, rt, store=store, progress=False)
    assert summary.ran == 2 and summary.errors == 0
    assert all(r.run_id and r.scores["answered"].value == 1.0 for r in store.records())


# -- replayed in a fresh process, under two hash seeds ---------------------------------------------

def seeds_with_two_orders(names: list[str]) -> tuple[str, str]:
    """Two PYTHONHASHSEEDs under which a set of `names` iterates in different orders (how the supervisor
    orders its handoff tools)."""
    orders: dict[str, str] = {}
    for seed in range(40):
        code = f"print(list(set({names!r})))"
        out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": str(seed)},
                             capture_output=True, text=True, check=True).stdout
        orders.setdefault(out, str(seed))
        if len(orders) == 2:
            return tuple(orders.values())  # type: ignore[return-value]
    raise AssertionError("no two seeds gave two orders")


CUT = ("import socket\n"
       "def cut(*a, **k):\n    raise OSError('network cut off')\n"
       "socket.socket.connect = cut\nsocket.socket.connect_ex = cut\n"
       "import sys\nfrom rolegraph.cli import main\nsys.argv = ['rolegraph', *sys.argv[1:]]\nmain()\n")


@pytest.mark.parametrize("which", ["supervisor", "swarm"])
async def test_replays_in_a_fresh_process_with_the_network_cut_under_two_hash_seeds(
        tmp_path: Path, app_file: Path, which: str) -> None:
    store = TraceStore(tmp_path / "runs")
    trace = await record(app_file, which, store)
    calls = len(trace.of_kind(ModelCall))
    before = ran(tmp_path)
    for seed in seeds_with_two_orders(["math_expert", "research_expert"]):
        done = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-c", CUT, "replay", trace.run_id, "--runs", str(store.root)],
            cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": seed})
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"{calls} calls answered from the trace, 0 live" in done.stdout, done.stdout
        assert "output: identical to the recorded run" in done.stdout
    assert ran(tmp_path) == before  # no tool ran again


@pytest.mark.parametrize("which", ["supervisor", "swarm"])
async def test_forks_at_every_model_call_reach_the_same_end(tmp_path: Path, app_file: Path, which: str) -> None:
    store = TraceStore(tmp_path / "runs")
    trace = await record(app_file, which, store)
    calls = trace.of_kind(ModelCall)
    assert len(calls) == {"supervisor": 7, "swarm": 4}[which]
    for n, call in enumerate(calls):
        assert call.step is not None
        async with runtime(which) as live:
            result = await replay_run(trace, store=store, live=live, live_from=call.step,
                                      live_from_call=call.call_index)
        fork = store.load(result.run_id or "")
        assert fork.finished is not None and fork.status == "ok"
        assert fork.finished.totals.replayed_calls == n and fork.finished.totals.model_calls == len(calls) - n
        assert comparable(fork.finished.output) == comparable(trace.finished.output if trace.finished else None)


async def test_a_multi_turn_swarm_is_recorded_and_replayed_turn_by_turn(tmp_path: Path, app_file: Path) -> None:
    """Each user turn is one run, started from the last run's state: the conversation and the agent
    the swarm left active (bob), whom the next turn reaches first."""
    store = TraceStore(tmp_path / "runs")
    graph = load(app_file, "swarm")
    async with runtime("swarm", store) as rt:
        first = await graph.run(QUESTION["swarm"], runtime=rt)
        history = convert_to_openai_messages(first.state["messages"])
        second = await graph.run({"messages": [*history, {"role": "user", "content": "Change the flight."}],
                                  "active_agent": first.state["active_agent"]}, runtime=rt)
    turn2 = store.load(second.run_id or "")
    assert [(e.node, e.handoff) for e in turn2.of_kind(NodeFinished)] == [("bob", ["alice"]), ("alice", None)]
    for run in (first, second):
        trace = store.load(run.run_id or "")
        replayed = store.load((await replay_run(trace, store=store)).run_id or "")
        assert replayed.finished is not None and replayed.finished.totals.model_calls == 0
        assert comparable(replayed.finished.output) == comparable(trace.finished.output if trace.finished else None)


def test_a_command_that_repeats_the_state_it_was_given_is_read_back_with_the_state_given_now() -> None:
    """A handoff's update holds the conversation it was given; a replay's messages have other ids."""
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
    from langgraph.types import Command

    from rolegraph import _langchain_values as values

    given = {"messages": [HumanMessage("hi", id="rec-1"), AIMessage("", id="rec-2")]}
    command = Command(graph=Command.PARENT, goto="bob",
                      update={"messages": [*given["messages"], ToolMessage("moved", tool_call_id="c1")],
                              "active_agent": "bob"})
    written = values.encode(command, given)
    assert written["update"]["messages"]["count"] == 2  # a reference to the state, not a copy of it
    now = {"messages": [HumanMessage("hi", id="now-1"), AIMessage("", id="now-2")]}
    back = values.decode(written, now)
    assert isinstance(back, Command) and back.goto == "bob" and back.graph == Command.PARENT
    assert [m.id for m in back.update["messages"][:2]] == ["now-1", "now-2"]
    assert back.update["messages"][2] == ToolMessage("moved", tool_call_id="c1") and back.update["active_agent"] == "bob"


# -- comparing: random ids and the tools' order do not count; the difference is shown -------------

def handoff_request(ident: str, answers: str, tools: tuple[str, ...]) -> ChatRequest:
    return ChatRequest(messages=(
        Message(role="user", content="hi"),
        Message(role="assistant", content="", tool_calls=(ToolCall(id=ident, name="transfer_back", arguments="{}"),)),
        Message(role="tool", content="back", tool_call_id=answers)), tools=tuple(ToolSpec(name=t) for t in tools))


def test_tool_call_ids_and_the_order_of_tools_do_not_count_but_which_call_is_answered_does() -> None:
    a = handoff_request("3f2a-uuid", "3f2a-uuid", ("to_math", "to_research"))
    b = handoff_request("9c1d-uuid", "9c1d-uuid", ("to_research", "to_math"))
    assert a.fingerprint == b.fingerprint and a.exact_fingerprint != b.exact_fingerprint
    wrong = handoff_request("9c1d-uuid", "other", ("to_math",))
    assert wrong.fingerprint != a.fingerprint
    diff = request_diff(a, wrong)
    assert "-tools" in diff and "-tool_call #0 transfer_back({})" not in diff  # the same call, the same line
    assert "+--- message 2 (tool, answers #1)" in diff and "---- message 2 (tool, answers #0)" in diff
    plain = ChatRequest(messages=(Message(role="user", content="hi"),))
    assert plain.fingerprint == plain.exact_fingerprint  # requests without ids keep their recorded fingerprints
    assert changed_fields(a, wrong) == ["tools", "messages[2].tool_call_id"]
    assert changed_fields(a, b) == ["tool-call ids"]  # what a trace recorded with exact fingerprints differs in


def test_state_comparison_drops_message_and_interrupt_ids_and_numbers_tool_call_ids() -> None:
    def state(call: str, answered: str, msg: str, interrupt: str) -> dict[str, Any]:
        return {"messages": [
            {"type": "ai", "content": "", "id": msg, "tool_calls": [{"name": "t", "args": {}, "id": call,
                                                                       "type": "tool_call"}]},
            {"type": "tool", "content": "ok", "id": msg + "x", "tool_call_id": answered}],
            "__interrupt__": [{"value": "approve?", "id": interrupt}]}

    assert comparable(state("a", "a", "m1", "i1")) == comparable(state("b", "b", "m2", "i2"))
    assert comparable(state("a", "a", "m1", "i1")) != comparable(state("a", "z", "m1", "i1"))


async def test_a_changed_request_names_its_fields_and_the_cli_shows_the_diff_without_debug(
        tmp_path: Path, app_file: Path) -> None:
    store = TraceStore(tmp_path / "runs")
    trace = await record(app_file, "supervisor", store)
    log = trace.dir / "events.jsonl"
    lines = log.read_text().splitlines(keepends=True)  # the run's input changed, its recorded calls not
    log.write_text(lines[0].replace("Add 2 and 3, then look up x.", "Add 2 and 4, then look up x.") + "".join(lines[1:]))
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "rolegraph", "replay", trace.run_id, "--runs", str(store.root)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"})
    shown = done.stdout + done.stderr
    assert done.returncode == 1
    assert "differs from the recorded one in messages[1].content:" in shown, shown
    assert "-Add 2 and 3, then look up x." in shown and "+Add 2 and 4, then look up x." in shown


async def test_trace_diff_shows_the_differing_message_and_the_tool_calls_of_the_diverging_step(
        tmp_path: Path, app_file: Path) -> None:
    store = TraceStore(tmp_path / "runs")
    a = await record(app_file, "supervisor", store)
    MODELS["supervisor"]["math"] = expert("add", '{"a": 2, "b": 4}', "2 + 4 = 6")
    try:
        b = await record(app_file, "supervisor", store)
    finally:
        MODELS["supervisor"]["math"] = expert("add", '{"a": 2, "b": 3}', "2 + 3 = 5")
    console = Console(record=True, width=240)
    divergence = show_diff(a, b, console)
    assert divergence is not None and (divergence.step, divergence.what) == (1, "response")
    text = console.export_text()
    assert '→ add({"a": 2, "b": 3})' in text and '→ add({"a": 2, "b": 4})' in text  # the decision, not ""
    assert 'langchain.add({"a": 2, "b": 3}) → 5' in text and 'langchain.add({"a": 2, "b": 4}) → 6' in text
    # the final-state table: the message that differs, not the first few hundred characters of the list
    assert re.search(r"messages\[3\]\.content +│ 2 \+ 3 = 5 +│ 2 \+ 4 = 6", text), text


# -- the trace page, in Chromium --------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium at /usr/bin/chromium (apt-get install chromium)")
async def test_the_supervisor_runs_page_shows_the_handoff_decisions_and_tool_calls(tmp_path: Path, app_file: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    trace = await record(app_file, "supervisor", TraceStore(tmp_path / "runs"))
    page_file = tmp_path / "view.html"
    page_file.write_text(render_view(trace))
    shots = Path(os.environ.get("ROLEGRAPH_SCREENSHOTS") or tmp_path)

    def browse() -> dict[str, Any]:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(page_file.as_uri())
            page.wait_for_selector("body[data-rendered=ok]", timeout=30000)
            page.locator("details.step").first.locator("summary").first.click()
            page.locator("#step-0 details.call summary").first.click()
            page.locator("#step-1 > summary").click()
            seen = dict(
                handoffs=page.locator("span.handoff").all_inner_texts(),
                decision=page.locator("#step-0 .msg.decision pre").inner_text(),
                tools=page.locator("#step-1 pre.tool").all_inner_texts(),
                errors=page.locator("body").get_attribute("data-errors"),
                labels=page.locator(".timeline .row .node").evaluate_all(
                    "els => els.map(e => [e.scrollWidth > e.clientWidth, e.getBoundingClientRect().right])"),
                lane=page.locator(".timeline .row .lane").first.evaluate("e => e.getBoundingClientRect().left"),
                red=page.locator(".bar.err").count())
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / "multiagent_supervisor.png"), full_page=True)
            browser.close()
            return seen

    seen = await asyncio.to_thread(browse)
    assert seen["handoffs"] == ["handoff → math_expert", "handoff → research_expert"]
    assert seen["decision"] == "→ transfer_to_math_expert({})"
    assert seen["tools"] == ['#0 langchain.add({"a": 2, "b": 3}) → 5']
    assert seen["errors"] == "0" and seen["red"] == 0
    assert all(right <= seen["lane"] for _, right in seen["labels"])  # node names stay in their column

