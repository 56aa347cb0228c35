"""A step's input state is written as what changed since the step before, with a digest of the whole
state: a reloaded trace gives back the exact state of every step (appends, overwrites, merges, a list
a node changed in place, parallel branches, `Send`s, subgraphs), a fork starts from it, a changed log
is refused by name, and traces written with whole states still load."""

from __future__ import annotations

import json
import operator
import tempfile
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, RemoveMessage
from langgraph.graph.message import add_messages
from langgraph.types import Send
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

import rolegraph as rg
from rolegraph import Runtime, UserError
from rolegraph.graphs import replay_run
from rolegraph.traces import NodeStarted, Trace, TraceStore

SEEN: list[tuple[str, str]] = []
"""(node, input state as JSON) of each node execution, as the node saw it live."""


def seen(node: str, state: Any) -> None:
    SEEN.append((node, json.dumps(to_jsonable_python(state, fallback=str))))


def recorded(trace: Trace) -> list[tuple[str, str]]:
    return [(e.node, json.dumps(e.state)) for e in trace.of_kind(NodeStarted)]


def log_of(trace: Trace) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (trace.dir / "events.jsonl").read_text().splitlines()]


# -- a graph that plays a sequence of moves, one a step ---------------------------------------

def merged(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {**a, **b}


class Moves(BaseModel):
    moves: list[tuple[str, int]]


class Played(TypedDict, total=False):
    moves: list[tuple[str, int]]
    i: int
    log: Annotated[list[str], operator.add]
    notes: Annotated[dict[str, Any], merged]
    value: Any
    scratch: list[int]


async def play(state: Played) -> dict[str, Any]:
    seen("play", state)
    kind, n = state["moves"][state["i"]]
    update: dict[str, Any] = {"i": state["i"] + 1}
    if kind == "append":  # operator.add
        update["log"] = [f"line {n} " + "x" * (40 * (n % 4))] * (1 + n % 2)
    elif kind == "overwrite":
        update["value"] = {"n": n, "deep": {"list": list(range(n % 5))}} if n % 2 else f"value {n}"
    elif kind == "merge":  # a dict reducer
        update["notes"] = {f"k{n % 4}": n, "last": [n, n % 3 == 0, n / 4]}
    elif kind == "mutate":  # in place: no update says so, the next step's state shows it
        state["scratch"].append(n)
    elif kind == "rewrite":  # in place, within the list's old items
        if state["log"]:
            state["log"][n % len(state["log"])] = f"rewritten {n}"
    elif kind == "shrink":
        del state["scratch"][:1]
    return update


@rg.graph(input=Moves, state=Played, name="moves", recursion_limit=lambda moves, options: len(moves.moves) + 10,
          start=lambda m: {"moves": m.moves, "i": 0, "log": [], "notes": {}, "value": None, "scratch": []})
def moves_graph(graph: rg.StateGraph) -> None:
    graph.add_node(play)
    graph.add_edge(rg.START, "play")
    graph.add_conditional_edges("play", lambda s: rg.END if s["i"] >= len(s["moves"]) else "play", ["play", rg.END])


MOVE = st.tuples(st.sampled_from(["append", "overwrite", "merge", "mutate", "rewrite", "shrink"]),
                 st.integers(min_value=0, max_value=40))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(moves=st.lists(MOVE, min_size=1, max_size=60), every=st.sampled_from([1, 2, 3, 25]))
def test_every_steps_state_comes_back_exactly_as_the_node_saw_it(moves: list[tuple[str, int]], every: int) -> None:
    SEEN.clear()
    with tempfile.TemporaryDirectory() as tmp:
        store = TraceStore(Path(tmp) / "runs", snapshot_every=every)
        result = moves_graph.run_sync(Moves(moves=moves), runtime=Runtime.from_models({}, traces=store))
        trace = store.load(result.run_id or "")
        assert recorded(trace) == SEEN  # equal JSON, keys in the same order
        assert all(e.state_digest and e.state_delta is None for e in trace.of_kind(NodeStarted))


def test_a_long_run_writes_most_states_as_changes_and_a_few_whole(tmp_path: Path) -> None:
    SEEN.clear()
    moves = [("append", i) for i in range(60)] + [("mutate", 1), ("rewrite", 7), ("merge", 3), ("overwrite", 5)] * 5
    store = TraceStore(tmp_path / "runs")
    result = moves_graph.run_sync(Moves(moves=moves), runtime=Runtime.from_models({}, traces=store))
    trace = store.load(result.run_id or "")
    assert recorded(trace) == SEEN
    started = [e for e in log_of(trace) if e["kind"] == "node_started"]
    whole = [e for e in started if "state" in e]
    changed = [e for e in started if "state_delta" in e]
    assert len(started) == 80 and len(whole) + len(changed) == 80 and 2 <= len(whole) <= 8
    assert all(e["format_version"] == 2 and "state_base" in e and "state_digest" in e for e in changed)
    assert all(e["format_version"] == 1 and "state_digest" in e for e in whole)
    # the in-place changes, which no update explains, are in the changes written
    assert any(op[0] == "set" and op[1][0] == "log" for e in changed for op in e["state_delta"])


# -- parallel branches, Send and a subgraph ---------------------------------------------------

class Fan(TypedDict, total=False):
    rounds: int
    found: Annotated[list[str], operator.add]
    summary: str


class Inner(TypedDict, total=False):
    rounds: int
    summary: str


async def left(state: Fan) -> dict[str, Any]:
    seen("left", state)
    return {"found": [f"left {state.get('rounds', 0)} " + "l" * 60]}


async def right(state: Fan) -> dict[str, Any]:
    seen("right", state)
    return {"found": [f"right {state.get('rounds', 0)} " + "r" * 60], "rounds": state.get("rounds", 0) + 1}


async def probe(payload: dict[str, Any]) -> dict[str, Any]:
    seen("probe", payload)
    return {"found": [f"probe {payload['topic']} " + "p" * 40]}


async def summarize(state: Inner) -> dict[str, Any]:
    seen("summarize", state)
    return {"summary": f"round {state['rounds']}"}


def fan_out(state: Fan) -> list[Send]:
    return [Send("probe", {"topic": f"t{state['rounds']}.{i}", "seen": len(state["found"])}) for i in range(3)]


class Rounds(BaseModel):
    rounds: int


@rg.graph(input=Rounds, state=Fan, name="fan", recursion_limit=200, start=lambda r: {"rounds": 0, "found": []})
def fan_graph(graph: rg.StateGraph) -> None:
    inner = rg.StateGraph(Inner)
    inner.add_node(summarize)
    inner.add_edge(rg.START, "summarize")
    inner.add_edge("summarize", rg.END)
    graph.add_node(left)
    graph.add_node(right)
    graph.add_node(probe)
    graph.add_node("report", inner.compile())
    graph.add_edge(rg.START, "left")
    graph.add_edge(rg.START, "right")
    graph.add_conditional_edges("right", fan_out, ["probe"])
    graph.add_edge("probe", "report")
    graph.add_conditional_edges("report", again, ["left", "right", rg.END])


def again(state: Fan) -> str | list[str]:
    return rg.END if state["rounds"] >= 12 else ["left", "right"]


def test_parallel_branches_sends_and_a_subgraph_come_back_exactly(tmp_path: Path) -> None:
    SEEN.clear()
    store = TraceStore(tmp_path / "runs")
    result = fan_graph.run_sync(Rounds(rounds=12), runtime=Runtime.from_models({}, traces=store))
    trace = store.load(result.run_id or "")
    assert sorted(r for r in recorded(trace) if r[0] != "report") == sorted(SEEN) and len(SEEN) > 60
    assert {n for n, _ in SEEN} == {"left", "right", "probe", "summarize"}
    started = [e for e in log_of(trace) if e["kind"] == "node_started" and e["node"] in ("left", "right", "report")]
    assert len(started) == 36 and sum("state_delta" in e for e in started) >= 30


# -- a message list (add_messages): appended, edited by id, trimmed ------------------------------

class Chat(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    turn: int


async def reply(state: Chat) -> dict[str, Any]:
    seen("reply", state)
    turn = state.get("turn", 0)
    said: list[Any] = [AIMessage(content=f"reply {turn} " + "m" * 80, id=f"a{turn}")]
    if turn % 5 == 4:  # the oldest message dropped
        said.append(RemoveMessage(id=state["messages"][0].id or ""))
    if turn % 7 == 6:  # an earlier message replaced where it stands
        said.append(AIMessage(content=f"edited at {turn}", id=f"a{turn - 3}"))
    return {"messages": said, "turn": turn + 1}


class Question(BaseModel):
    text: str


@rg.graph(input=Question, state=Chat, name="chat", recursion_limit=60,
          start=lambda q: {"messages": [HumanMessage(content=q.text, id="h0")], "turn": 0})
def chat(graph: rg.StateGraph) -> None:
    graph.add_node(reply)
    graph.add_edge(rg.START, "reply")
    graph.add_conditional_edges("reply", lambda s: rg.END if s["turn"] >= 30 else "reply", ["reply", rg.END])


def test_a_message_list_appended_edited_and_trimmed_comes_back_exactly(tmp_path: Path) -> None:
    SEEN.clear()
    store = TraceStore(tmp_path / "runs")
    result = chat.run_sync(Question(text="hello " * 20), runtime=Runtime.from_models({}, traces=store))
    trace = store.load(result.run_id or "")
    assert recorded(trace) == SEEN and len(SEEN) == 30
    started = [e for e in log_of(trace) if e["kind"] == "node_started"]
    assert sum("state_delta" in e for e in started) >= 15


# -- fork from a long run ---------------------------------------------------------------------

class Turns(BaseModel):
    turns: int


class Talk(TypedDict, total=False):
    turns: int
    answers: Annotated[list[str], operator.add]


async def speak(state: Talk) -> dict[str, Any]:
    seen("speak", state)
    return {"answers": [f"answer {len(state['answers']):04d} " + "x" * 489]}


@rg.graph(input=Turns, state=Talk, name="talk", recursion_limit=lambda turns, options: turns.turns + 10,
          start=lambda t: {"turns": t.turns, "answers": []})
def talk(graph: rg.StateGraph) -> None:
    graph.add_node(speak)
    graph.add_edge(rg.START, "speak")
    graph.add_conditional_edges("speak", lambda s: rg.END if len(s["answers"]) >= s["turns"] else "speak",
                                ["speak", rg.END])


async def test_a_fork_from_step_n_of_a_300_step_run_starts_from_the_recorded_state(tmp_path: Path) -> None:
    SEEN.clear()
    store = TraceStore(tmp_path / "runs")
    result = await talk.run(Turns(turns=300), runtime=Runtime.from_models({}, traces=store))
    trace = store.load(result.run_id or "")
    assert recorded(trace) == SEEN and len(SEEN) == 300
    at = 217
    parent = next(e for e in trace.of_kind(NodeStarted) if e.step == at)
    assert len(parent.state["answers"]) == at and json.dumps(parent.state) == SEEN[at][1]

    SEEN.clear()
    forked = await replay_run(trace, store=store, live=Runtime.from_models({}), live_from=at)
    fork = store.load(forked.run_id or "")
    assert fork.started.parent is not None and fork.started.parent.live_from == at
    child = next(e for e in fork.of_kind(NodeStarted) if e.step == at)
    assert child.state == parent.state
    assert recorded(fork) == recorded(trace)  # every step's state, before and after the fork
    assert forked.state == result.state


# -- a changed or damaged log, and old traces --------------------------------------------------

def record_talk(tmp_path: Path, turns: int, every: int = 25) -> Trace:
    store = TraceStore(tmp_path / "runs", snapshot_every=every)
    result = talk.run_sync(Turns(turns=turns), runtime=Runtime.from_models({}, traces=store))
    return store.load(result.run_id or "")


def test_a_state_changed_in_the_log_is_refused_naming_the_run_and_step(tmp_path: Path) -> None:
    trace = record_talk(tmp_path, 30)
    log = trace.dir / "events.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if '"state_delta"' in line and '"step":12,' in line)
    assert '["add_update",["answers"],' in lines[at]  # the item the update of step 11 appended, written once
    at = next(i for i, line in enumerate(lines) if '"node_finished"' in line and '"step":11,' in line)
    lines[at] = lines[at].replace("answer 0011", "answer 0099")
    log.write_text("".join(lines))
    with pytest.raises(UserError, match=rf"run {trace.run_id}: step 12 \(speak\): its state does not match"):
        Trace.load(trace.dir)

    whole = record_talk(tmp_path / "b", 5, every=1)  # a whole state edited: the same check
    log = whole.dir / "events.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if '"node_started"' in line and '"step":3,' in line)
    lines[at] = lines[at].replace("answer 0002", "answer 0042")
    log.write_text("".join(lines))
    with pytest.raises(UserError, match=rf"run {whole.run_id}: step 3 \(speak\)"):
        Trace.load(whole.dir)


def test_a_damaged_line_loses_the_states_written_against_it_until_the_next_whole_one(tmp_path: Path) -> None:
    trace = record_talk(tmp_path, 60, every=4)
    intact = {e.step: e.state for e in trace.of_kind(NodeStarted)}
    log = trace.dir / "events.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    whole = [i for i, line in enumerate(lines) if '"node_started"' in line and '"state":' in line]
    gone = whole[-2]  # a whole state, which the next steps are written against; one more comes later
    gone_step = json.loads(lines[gone])["step"]
    lines[gone] = "garbage\n"
    log.write_text("".join(lines))

    damaged = Trace.load(log.parent)
    states = {e.step: e.state for e in damaged.of_kind(NodeStarted)}
    lost = sorted(step for step, state in states.items() if state is None)
    assert gone_step not in states and lost and lost[0] == gone_step + 1
    assert lost == list(range(gone_step + 1, lost[-1] + 1))  # the chain written against it, up to the next whole one
    assert all(state == intact[step] for step, state in states.items() if step not in lost)
    assert states[59] == intact[59] and len(intact[59]["answers"]) == 59
    assert len(damaged.damaged) == 1 + len(lost) and "is damaged or missing" in damaged.damaged[-1]


def test_a_trace_written_with_whole_states_loads_as_it_was(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "old-run"
    run.mkdir(parents=True)
    state = {"turns": 2, "answers": ["a"]}
    events = [
        {"format_version": 1, "seq": 0, "ts": 1.0, "kind": "run_started", "run_id": "old-run",
         "manifest": {"graph": "talk"}},
        {"format_version": 1, "seq": 1, "ts": 1.0, "kind": "node_started", "node": "speak", "path": ["speak"],
         "key": "speak@1", "step": 0, "state": {"turns": 2, "answers": []}},
        {"format_version": 1, "seq": 2, "ts": 1.0, "kind": "node_finished", "node": "speak", "key": "speak@1",
         "step": 0, "delta": {"answers": ["a"]}},
        {"format_version": 1, "seq": 3, "ts": 1.0, "kind": "node_started", "node": "speak", "path": ["speak"],
         "key": "speak@2", "step": 1, "state": state},
        {"format_version": 1, "seq": 4, "ts": 1.0, "kind": "run_finished", "status": "ok"},
    ]
    (run / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    trace = TraceStore(tmp_path / "runs").load("old-run")
    assert trace.complete and not trace.damaged
    assert [e.state for e in trace.of_kind(NodeStarted)] == [{"turns": 2, "answers": []}, state]
    assert all(e.state_digest is None for e in trace.of_kind(NodeStarted))


def test_with_snapshot_every_1_each_state_is_written_whole(tmp_path: Path) -> None:
    trace = record_talk(tmp_path, 10, every=1)
    started = [e for e in log_of(trace) if e["kind"] == "node_started"]
    assert len(started) == 10 and all("state" in e and "state_delta" not in e for e in started)
    assert all(len(e.state["answers"]) == e.step for e in trace.of_kind(NodeStarted))


# -- the writer alone, over arbitrary JSON states ------------------------------------------------

JSON = st.recursive(  # few values, so that a next state often holds an equal value of another type (1, 1.0, true)
    st.sampled_from([None, True, False, 0, 1, 0.0, -0.0, 1.0, "a"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
    max_leaves=10)


TWINS: list[tuple[Any, Any]] = [(1, True), (True, 1.0), (1.0, 1), (0, False), (False, -0.0), (-0.0, 0)]
"""Values Python finds equal that are not the same JSON, each paired with another of them."""


def retyped(value: Any) -> Any:
    if isinstance(value, list):
        return [retyped(v) for v in value]
    if isinstance(value, dict):
        return {k: retyped(v) for k, v in value.items()}
    for twin, other in TWINS:
        if value == twin and type(value) is type(twin) and str(value) == str(twin):
            return other
    return value


@st.composite
def evolving(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A state, then each next one its predecessor with one edit: a key set, removed or retyped (1 to
    true, 0.0 to -0.0, ...), items appended to a list, a key set inside a dict."""
    keys = st.sampled_from(["x", "y", "z"])
    state: dict[str, Any] = draw(st.dictionaries(keys, JSON, max_size=3))
    states = [state]
    for _ in range(draw(st.integers(0, 11))):
        state, key = dict(state), draw(keys)
        edit = draw(st.sampled_from(["set", "del", "retype", "retype", "add", "inner"]))
        if edit == "set":
            state[key] = draw(JSON)
        elif edit == "del":
            state.pop(key, None)
        elif edit == "retype":
            state[key] = retyped(state.get(key))
        elif edit == "add":
            old = state.get(key)
            state[key] = [*(old if isinstance(old, list) else []), *draw(st.lists(JSON, min_size=1, max_size=3))]
        elif isinstance(state.get(key), dict):
            state[key] = {**state[key], draw(st.sampled_from("abc")): draw(JSON)}
        states.append(state)
    return states


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(states=evolving(), every=st.sampled_from([1, 3, 25]))
def test_any_sequence_of_json_states_comes_back_exactly(tmp_path_factory: pytest.TempPathFactory,
                                                        states: list[dict[str, Any]], every: int) -> None:
    from rolegraph.traces import RunStarted
    from rolegraph.traces._events import Manifest

    store = TraceStore(tmp_path_factory.mktemp("runs"), snapshot_every=every)
    writer = store.writer("r")
    writer.write(RunStarted(run_id="r", manifest=Manifest(graph="g")))
    padding = ["p" * 50] * 6  # a state large enough that its changes are worth writing
    for i, state in enumerate(states):
        writer.write(NodeStarted(node="n", path=["n"], key=f"n@{i}", step=i), raw=("state", {**state, "pad": padding}))
    writer.close()
    trace = Trace.load(writer.dir)
    assert [json.dumps(e.state) for e in trace.of_kind(NodeStarted)] == [
        json.dumps({**s, "pad": padding}) for s in states]


def test_snapshot_every_is_read_from_rolegraph_toml_and_checked(tmp_path: Path) -> None:
    from rolegraph import ConfigError

    config = tmp_path / "rolegraph.toml"
    config.write_text(f'[traces]\ndir = "{tmp_path / "runs"}"\nsnapshot_every = 3\n')
    runtime = Runtime.load(config)
    assert runtime.traces is not None and runtime.traces.snapshot_every == 3
    config.write_text("[traces]\nsnapshot_every = 0\n")
    with pytest.raises(ConfigError, match="table \\[traces\\], key snapshot_every"):
        Runtime.load(config)
