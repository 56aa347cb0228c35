"""`TraceStore.add_run`: a run recorded in another store (another machine's) added to this one and
its index, once: the same content again is nothing to do, a continued run replaces its prefix,
other content under the same id is refused."""

from __future__ import annotations

import asyncio
import json
import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from pydantic import BaseModel

import rolegraph as rg
from rolegraph import Runtime
from rolegraph.errors import UserError
from rolegraph.models import ChatRequest, FunctionModel, Message
from rolegraph.traces import NodeStarted, Redactor, TraceStore


class Ask(BaseModel):
    question: str


class Said(rg.RunResult):
    text: str = ""


async def say(state: Ask, runtime: rg.Runtime) -> dict[str, Any]:
    reply = await runtime.model("default").chat(ChatRequest(messages=(Message(role="user", content=state.question * 20_000),)))
    return {"question": reply.text}


@rg.graph(input=Ask, state=Ask, result=Said, roles=["default"], finish=lambda s: {"text": s.question})
def echo(g: rg.StateGraph) -> None:
    g.add_node(say)
    g.add_edge(rg.START, "say")
    g.add_edge("say", rg.END)


def _recorded(tmp_path: Path) -> TraceStore:
    """A store on 'another machine' holding one finished run (its long prompt kept as a blob)."""
    store = TraceStore(tmp_path / "worker")
    with rg.Runtime.from_models({"default": FunctionModel(lambda request: "yes")}, traces=store) as rt:
        echo.run_sync(Ask(question="why? "), runtime=rt)
    assert any(name.startswith("blobs/") for name in store.run_files(store.list()[0].run_id))
    return store


def test_a_run_added_from_another_store_opens_lists_and_keeps_its_blobs(tmp_path: Path) -> None:
    worker = _recorded(tmp_path)
    (run,) = worker.list()
    files = worker.run_files(run.run_id)
    driver = TraceStore(tmp_path / "driver")
    folder = driver.add_run(run.run_id, files)
    assert folder == driver.root / run.run_id and driver.run_files(run.run_id) == files
    assert driver.load(run.run_id).complete
    assert [r.run_id for r in driver.list()] == [run.run_id] and driver.info(run.run_id).status == "ok"  # type: ignore[union-attr]
    assert not [p for p in driver.root.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_adding_the_same_run_twice_is_a_no_op_and_other_content_is_refused(tmp_path: Path) -> None:
    worker = _recorded(tmp_path)
    (run,) = worker.list()
    files = worker.run_files(run.run_id)
    driver = TraceStore(tmp_path / "driver")
    driver.add_run(run.run_id, files)
    before = (driver.root / run.run_id / "events.jsonl").stat().st_mtime_ns
    driver.add_run(run.run_id, files)
    assert (driver.root / run.run_id / "events.jsonl").stat().st_mtime_ns == before
    with pytest.raises(UserError, match=r"already in .* with other content"):
        driver.add_run(run.run_id, {**files, "events.jsonl": b"{}\n" + files["events.jsonl"]})
    assert driver.run_files(run.run_id) == files


def test_a_run_continued_elsewhere_replaces_its_prefix(tmp_path: Path) -> None:
    worker = _recorded(tmp_path)
    (run,) = worker.list()
    files = worker.run_files(run.run_id)
    log = files["events.jsonl"]
    cut = log[: log.index(b"\n") + 1]  # only its start: as a killed first try left it
    driver = TraceStore(tmp_path / "driver")
    driver.add_run(run.run_id, {**files, "events.jsonl": cut})
    assert not driver.load(run.run_id).complete
    driver.add_run(run.run_id, files)
    assert driver.load(run.run_id).complete and driver.info(run.run_id).status == "ok"  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["../escape", ".hidden", "a/b", ""])
def test_a_run_id_that_is_not_one_folder_name_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UserError, match="a run id is one folder name"):
        TraceStore(tmp_path).add_run(name, {"events.jsonl": b""})


def test_files_that_escape_the_run_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"unsafe paths: \.\./x"):
        TraceStore(tmp_path).add_run("r1", {"events.jsonl": b"", "../x": b"boo"})
    assert not (tmp_path / "x").exists()



class Start(BaseModel):
    pass


class Notes(TypedDict, total=False):
    notes: Annotated[list[str], operator.add]


KEY = "sk-live-0123456789abcdef"


async def note(state: Notes) -> dict[str, Any]:
    return {"notes": [f"note {len(state.get('notes', []))} {KEY}"]}


@rg.graph(input=Start, state=Notes, name="noting_with_a_key", recursion_limit=lambda input, options: 80)
def noting(g: rg.StateGraph) -> None:
    g.add_node(note)
    g.add_edge(rg.START, "note")
    g.add_conditional_edges("note", lambda s: rg.END if len(s["notes"]) >= 30 else "note", ["note", rg.END])


def test_a_run_whose_states_held_a_key_of_this_machine_comes_home_redacted_and_still_loads(tmp_path: Path) -> None:
    elsewhere = TraceStore(tmp_path / "worker", snapshot_every=10)  # the worker knows no key: nothing redacted there
    result = asyncio.run(noting.run(Start(), runtime=Runtime.from_models({}, traces=elsewhere)))
    assert result.status == "ok"
    written = [json.loads(line) for line in (elsewhere.root / result.run_id / "events.jsonl").read_text().splitlines()]
    assert any("state_delta" in e for e in written if e["kind"] == "node_started")

    home = TraceStore(tmp_path / "home", redactor=Redactor(env={"SOME_API_KEY": KEY}))
    home.add_run(result.run_id, elsewhere.run_files(result.run_id))
    assert KEY not in (home.root / result.run_id / "events.jsonl").read_text()
    trace = home.load(result.run_id)  # its states are rebuilt from the redacted log, unchecked, not refused
    states = [e.state for e in trace.of_kind(NodeStarted)]
    assert len(states) == 30 and all(s is not None for s in states[1:])
    assert states[-1]["notes"][5].startswith("note 5 ") and KEY not in str(states[-1])
