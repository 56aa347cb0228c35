"""The checkpointer of recorded runs keeps LangGraph's contract: LangGraph's own conformance suite
(run against it and against LangGraph's SQLite saver alike), exact values after reload for any
sequence of appends, overwrites and in-place changes, the same state as LangGraph's saver at every
step of real graphs (Send, subgraphs, interrupts), secrets kept out, and a size that grows linearly."""

from __future__ import annotations

import asyncio
import copy
import operator
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict

import aiosqlite
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import BASE_CAPABILITIES
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command, Send, interrupt

from rolegraph.graphs import DeltaSqliteSaver
from rolegraph.graphs._run import RedactingSerde
from rolegraph.graphs._saver import open_saver
from rolegraph.traces import Redactor

BACKENDS: dict[str, Callable[[aiosqlite.Connection], BaseCheckpointSaver[Any]]] = {
    "rolegraph": DeltaSqliteSaver,
    "rolegraph, a full copy every 2": lambda conn: DeltaSqliteSaver(conn, full_every=2),
    "langgraph sqlite": AsyncSqliteSaver,
}


@pytest.mark.parametrize("capability", sorted(c.value for c in BASE_CAPABILITIES))
@pytest.mark.parametrize("backend", list(BACKENDS))
async def test_passes_langgraphs_checkpointer_conformance_suite(tmp_path: Path, backend: str, capability: str) -> None:
    @checkpointer_test(name=backend)
    async def saver() -> AsyncIterator[BaseCheckpointSaver[Any]]:
        async with aiosqlite.connect(str(tmp_path / "checkpoints.sqlite")) as conn:
            yield BACKENDS[backend](conn)

    report = await validate(saver, capabilities={capability})
    result = report.results[capability]
    assert result.detected and result.passed, result.failures
    assert result.tests_passed >= 5


# -- exact values after reload, for any sequence of changes ---------------------------------------

ITEM = st.one_of(st.text(max_size=30), st.integers(-(2**63), 2**63 - 1),
                 st.dictionaries(st.text(max_size=5), st.integers(-(2**63), 2**63 - 1), max_size=3),
                 st.lists(st.booleans(), max_size=3))
CHANGE = st.one_of(
    st.tuples(st.just("append"), st.sampled_from("abc"), st.lists(ITEM, max_size=20)),
    st.tuples(st.just("overwrite"), st.sampled_from("abc"), st.lists(ITEM, max_size=20)),
    st.tuples(st.just("in place"), st.sampled_from("abc"), ITEM),  # the same list object, an item changed
    st.tuples(st.just("scalar"), st.sampled_from("abc"), ITEM),
    st.tuples(st.just("drop"), st.sampled_from("abc"), st.none()),
    st.tuples(st.just("keep"), st.sampled_from("abc"), st.none()),
)


async def _put_all(path: Path, changes: list[tuple[str, str, Any]], full_every: int) -> list[tuple[str, dict[str, Any]]]:
    """Puts one checkpoint per change, as LangGraph does (versions from the saver, only changed
    channels in `new_versions`, the change's write on the checkpoint before); returns each
    checkpoint's id and its values as they were put."""
    from langgraph.checkpoint.base import empty_checkpoint

    put: list[tuple[str, dict[str, Any]]] = []
    values: dict[str, Any] = {}
    versions: dict[str, Any] = {}
    async with aiosqlite.connect(str(path)) as conn:
        saver = DeltaSqliteSaver(conn, full_every=full_every)
        config: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
        for kind, channel, arg in changes:
            if kind == "append":
                old = values.get(channel)
                values[channel] = (old if isinstance(old, list) else []) + arg
            elif kind == "overwrite":
                values[channel] = arg
            elif kind == "in place":
                if isinstance(values.get(channel), list) and values[channel]:
                    values[channel][0] = arg  # the list object the last checkpoint held, changed
                else:
                    values[channel] = [arg]
            elif kind == "scalar":
                values[channel] = arg
            elif kind == "drop":
                values.pop(channel, None)
                versions.pop(channel, None)
            changed = {} if kind in ("keep", "drop") else {channel: saver.get_next_version(versions.get(channel), None)}
            if changed and "configurable" in config and "checkpoint_id" in config["configurable"]:
                # the step's write, as LangGraph puts it on the parent: an append's items are stored once
                await saver.aput_writes(config, [(channel, arg if kind == "append" else values.get(channel))],
                                        task_id=f"task{len(put)}", task_path="~")
            versions.update(changed)
            checkpoint = empty_checkpoint()
            checkpoint["channel_values"] = dict(values)
            checkpoint["channel_versions"] = dict(versions)
            config = await saver.aput(config, checkpoint, {"source": "loop", "step": len(put)}, changed)
            put.append((checkpoint["id"], copy.deepcopy(values)))
    return put


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(CHANGE, max_size=25), full_every=st.integers(1, 6))
def test_every_checkpoint_reads_back_exactly_after_reload(tmp_path: Path, changes: list[tuple[str, str, Any]],
                                                          full_every: int) -> None:
    path = tmp_path / f"c{abs(hash((repr(changes), full_every)))}.sqlite"

    async def check() -> None:
        put = await _put_all(path, changes, full_every)
        async with aiosqlite.connect(str(path)) as conn:  # another connection and saver: nothing cached
            saver = DeltaSqliteSaver(conn)
            for checkpoint_id, values in put:
                got = await saver.aget_tuple({"configurable": {"thread_id": "t", "checkpoint_ns": "",
                                                               "checkpoint_id": checkpoint_id}})
                assert got is not None and got.checkpoint["channel_values"] == values
            listed = [t.checkpoint["channel_values"] async for t in saver.alist({"configurable": {"thread_id": "t"}})]
            assert listed == [values for _, values in reversed(put)]

    asyncio.run(check())
    path.unlink(missing_ok=True)


async def test_a_growing_list_is_stored_as_its_new_items_with_a_full_copy_now_and_then(tmp_path: Path) -> None:
    """Linear growth: twice the steps, about twice the bytes (a full copy every step would be four times)."""
    async def size(steps: int) -> int:
        path = tmp_path / f"{steps}.sqlite"
        await _put_all(path, [("append", "a", [f"{i:04d} " + "x" * 495]) for i in range(steps)], full_every=512)
        return path.stat().st_size

    small, large = await size(200), await size(400)
    assert large < 2.6 * small
    assert large < 5 * 400 * 500  # the content itself is 200 KB (a full copy every step: 40 MB)


# -- real graphs: the same state as LangGraph's own saver at every step ----------------------------


class Loop(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    messages: Annotated[list[Any], add_messages]
    last: list[str]
    turn: int
    sub: list[str]


class Sub(TypedDict, total=False):
    sub: list[str]


def _graph() -> Any:
    def speak(state: Loop) -> dict[str, Any]:
        turn = state.get("turn", 0) + 1
        last = state.get("last") or ["first"]
        last[0] = f"changed at {turn}"  # the list the state holds, changed in place and returned
        return {"log": [f"turn {turn} " + "y" * 40], "turn": turn, "last": last,
                "messages": [HumanMessage(f"q{turn}", id=f"h{turn}"), AIMessage(f"a{turn}", id=f"a{turn}")]}

    def fan(state: Loop) -> list[Send]:
        return [Send("work", {"log": [f"job {i}"]}) for i in range(3)] if state["turn"] % 3 == 0 else [Send("ask", state)]

    def work(state: Loop) -> dict[str, Any]:
        return {"log": [f"done {state['log'][-1]}"]}

    def ask(state: Loop) -> dict[str, Any]:
        if state["turn"] == 4:
            return {"log": [f"asked: {interrupt('go on?')}"]}
        return {}

    inner = StateGraph(Sub)
    inner.add_node("grow", lambda s: {"sub": [*s.get("sub", []), "s"]})
    inner.add_edge(START, "grow")
    builder = StateGraph(Loop)
    builder.add_node("speak", speak)
    builder.add_node("work", work)
    builder.add_node("ask", ask)
    builder.add_node("nested", inner.compile())
    builder.add_edge(START, "speak")
    builder.add_conditional_edges("speak", fan, ["work", "ask"])
    builder.add_edge("work", "nested")
    builder.add_edge("ask", "nested")
    builder.add_conditional_edges("nested", lambda s: END if s["turn"] >= 8 else "speak", ["speak", END])
    return builder


async def _history(saver: BaseCheckpointSaver[Any]) -> list[tuple[Any, ...]]:
    app = _graph().compile(checkpointer=saver)
    config: Any = {"configurable": {"thread_id": "run"}}
    await app.ainvoke({"turn": 0}, config, durability="sync")
    assert (await app.aget_state(config)).next == ("ask",)  # paused at the question
    await app.ainvoke(Command(resume="yes"), config, durability="sync")
    return [(s.values, s.next, s.metadata.get("step") if s.metadata else None, [t.name for t in s.tasks])
            async for s in app.aget_state_history(config)]


async def test_a_graph_has_the_same_state_at_every_step_as_with_langgraphs_saver(tmp_path: Path) -> None:
    async with aiosqlite.connect(str(tmp_path / "theirs.sqlite")) as conn:
        theirs = await _history(AsyncSqliteSaver(conn))
    async with aiosqlite.connect(str(tmp_path / "ours.sqlite")) as conn:
        ours = await _history(DeltaSqliteSaver(conn, full_every=3))
    async with aiosqlite.connect(str(tmp_path / "ours.sqlite")) as conn:  # read back by a fresh saver
        app = _graph().compile(checkpointer=DeltaSqliteSaver(conn))
        reread = [(s.values, s.next, s.metadata.get("step") if s.metadata else None, [t.name for t in s.tasks])
                  async for s in app.aget_state_history({"configurable": {"thread_id": "run"}})]
    assert len(ours) > 20 and ours == theirs and reread == theirs
    assert any("asked: yes" in v.get("log", []) for v, *_ in ours)
    assert ours[0][0]["last"] == ["changed at 8"] and ours[0][0]["sub"] == ["s"] * 8


# -- secrets and old files ------------------------------------------------------------------------


async def test_a_secret_in_an_appended_item_never_reaches_the_file(tmp_path: Path) -> None:
    secret = "sk-never-written-0123456789"
    path = tmp_path / "c.sqlite"
    async with aiosqlite.connect(str(path)) as conn:
        saver = DeltaSqliteSaver(conn, serde=RedactingSerde(Redactor(env={"API_KEY": secret})))
        app = _graph().compile(checkpointer=saver)
        config: Any = {"configurable": {"thread_id": "run"}}
        await app.ainvoke({"turn": 0, "log": [f"key {secret}"]}, config, durability="sync")
        await app.ainvoke(Command(resume=f"the key is {secret}"), config, durability="sync")
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert secret.encode() not in data and b"the key is " in data


async def test_a_file_langgraphs_saver_wrote_is_read_by_langgraphs_saver(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    async with aiosqlite.connect(str(path)) as conn:
        app = _graph().compile(checkpointer=AsyncSqliteSaver(conn))
        await app.ainvoke({"turn": 0}, {"configurable": {"thread_id": "run"}}, durability="sync")
    async with aiosqlite.connect(str(path)) as conn:
        saver = await open_saver(conn, RedactingSerde(Redactor(env={})))
        assert isinstance(saver, AsyncSqliteSaver)
        app = _graph().compile(checkpointer=saver)
        await app.ainvoke(Command(resume="later"), {"configurable": {"thread_id": "run"}}, durability="sync")
        done = await app.aget_state({"configurable": {"thread_id": "run"}})
    assert "asked: later" in done.values["log"] and done.values["turn"] == 8
    async with aiosqlite.connect(str(tmp_path / "new.sqlite")) as conn:
        assert isinstance(await open_saver(conn, RedactingSerde(Redactor(env={}))), DeltaSqliteSaver)
