"""A LangGraph functional-API workflow (`@entrypoint` calling `@task`s), wrapped by
`rolegraph.langchain.app`, is a rolegraph graph: each task call a recorded step with its arguments
and return value, its model calls through their roles and its tools recorded; replayed offline in a
fresh process (0 live calls, identical), forked at a task, resumed after a kill, evaluated, shown
in the UI."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from langgraph.func import entrypoint, task
from langgraph.types import interrupt
from pydantic import BaseModel

import rolegraph as rg
from rolegraph import Agent, Runtime, UserError
from rolegraph.evals import Benchmark, Case, EvalStore, Score, run_eval
from rolegraph.graphs import WorkflowResult, load_graph, replay_run, resume_run
from rolegraph.models import ChatRequest, FunctionModel
from rolegraph.prompts import PromptLibrary
from rolegraph.traces import ModelCall, NodeFinished, NodeStarted, ToolInvocation, TraceStore, first_divergence
from rolegraph.ui import create_app

ROOT = Path(__file__).resolve().parents[2]

APP = '''
import os

from langchain_core.tools import tool
from langgraph.func import entrypoint, task
from langgraph.types import interrupt
from pydantic import BaseModel

import rolegraph as rg

writer = rg.langchain.RoleChatModel(role="writer")
editor = rg.langchain.RoleChatModel(role="editor")


@tool
def word_count(text: str) -> int:
    """Count the words in a text."""
    with open(os.environ["RG_TOOL_LOG"], "a") as fh:
        fh.write("word_count\\n")
    return len(text.split())


COUNT = rg.langchain.tools([word_count])[0]


class Essay(BaseModel):
    title: str
    body: str
    words: int


@task
def outline(topic: str, parts: int = 2) -> list[str]:
    return [f"{topic}, part {i + 1}" for i in range(parts)]


@task
async def draft(point: str) -> str:
    return (await writer.ainvoke(f"Write one sentence on {point}.")).content


@task
def edit(text: str) -> str:  # a sync task: LangGraph runs it on a worker thread
    return editor.invoke(f"Edit: {text}").content


@task
async def count(text: str) -> int:
    return int(await COUNT.ainvoke({"text": text}))


@entrypoint()
def essay(topic: str) -> Essay:
    points = outline(topic).result()
    drafts = [draft(p) for p in points]  # side by side
    body = edit(" ".join(d.result() for d in drafts)).result()
    return Essay(title=topic.title(), body=body, words=count(body).result())


app = rg.langchain.app(essay)
'''


async def answer(request: ChatRequest) -> str:
    last = request.messages[-1].content or ""
    if last.startswith("Edit: "):
        return last.removeprefix("Edit: ").replace("one sentence ", "")
    await asyncio.sleep(0.002 * (len(last) % 3))  # the two drafts finish out of order
    return last.removeprefix("Write ").rstrip(".") + "."


@pytest.fixture
def app_file(tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "user" / f"essay_{request.node.name[:40]}.py"
    path.parent.mkdir()
    path.write_text(APP)
    monkeypatch.setenv("RG_TOOL_LOG", str(tmp_path / "tools.log"))
    (tmp_path / "tools.log").write_text("")
    return path


def tools_run(tmp_path: Path) -> list[str]:
    return (tmp_path / "tools.log").read_text().split()


def models(fn: Any = answer) -> dict[str, FunctionModel]:
    return {"writer": FunctionModel(fn), "editor": FunctionModel(fn)}


async def test_each_task_call_is_a_recorded_step_and_the_run_replays_offline_in_a_fresh_process(
        tmp_path: Path, app_file: Path) -> None:
    app = load_graph(f"{app_file}:app")
    assert app.name == "essay" and app.roles() == ["editor", "writer"]
    store = TraceStore(tmp_path / "runs")
    async with Runtime.from_models(models(), traces=store) as rt:
        result = await app.run({"topic": "cats"}, runtime=rt)
    assert isinstance(result, WorkflowResult) and type(result.output).__name__ == "Essay"
    assert result.output.body == "on cats, part 1. on cats, part 2." and result.output.words == 8
    trace = store.load(result.run_id or "")
    started = trace.of_kind(NodeStarted)
    assert [(e.node, e.step) for e in started] == [("essay", 0), ("outline", 1), ("draft", 2), ("draft", 3),
                                                   ("edit", 4), ("count", 5)]
    assert [e.key for e in started[1:]] == [f"essay@1>{name}@call{i}" for i, name in
                                            enumerate(["outline", "draft", "draft", "edit", "count"])]
    assert all(e.path == ["essay", e.node] for e in started[1:])
    assert started[0].state == {"input": "cats"} and started[1].state == {"topic": "cats"}  # inputs by name
    assert started[2].state == {"point": "cats, part 1"}
    ends = {e.step: e.delta for e in trace.of_kind(NodeFinished)}
    assert ends[1] == ["cats, part 1", "cats, part 2"] and ends[4] == "on cats, part 1. on cats, part 2."
    assert ends[0]["output"]["words"] == 8
    calls = trace.of_kind(ModelCall)
    assert sorted((c.role, c.node_key) for c in calls) == [("editor", started[4].key), ("writer", started[2].key),
                                                           ("writer", started[3].key)]
    (tool,) = trace.of_kind(ToolInvocation)
    assert (tool.name, tool.node_key, tool.output) == ("langchain.word_count", started[5].key, 8)
    assert tools_run(tmp_path) == ["word_count"]
    page = TestClient(create_app(runs=store.root, evals=tmp_path / "evals")).get(f"/runs/{result.run_id}")
    assert page.status_code == 200 and all(f"{name}@call" in page.text for name in ("outline", "draft", "edit", "count"))

    # a fresh process, the network cut: every model and tool call is answered from the trace
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
    assert tools_run(tmp_path) == ["word_count"]  # the tool did not run again


async def test_a_fork_at_a_task_replays_the_tasks_before_it_and_runs_the_rest_live(tmp_path: Path,
                                                                                   app_file: Path) -> None:
    app = load_graph(f"{app_file}:app")
    store = TraceStore(tmp_path / "runs")
    async with Runtime.from_models(models(), traces=store) as rt:
        result = await app.run({"topic": "owls"}, runtime=rt)
    trace = store.load(result.run_id or "")
    edit_step = next(e.step for e in trace.of_kind(NodeStarted) if e.node == "edit")
    live = {"writer": FunctionModel(lambda r: "never asked"), "editor": FunctionModel(lambda r: "Owls hunt at night.")}
    async with Runtime.from_models(live) as live_rt:
        forked = await replay_run(trace, store=store, live=live_rt, live_from=edit_step)
    assert forked.output.body == "Owls hunt at night." and forked.output.words == 4
    fork = store.load(forked.run_id or "")
    assert sorted((c.step, c.replayed) for c in fork.of_kind(ModelCall)) == [(2, True), (3, True), (edit_step, False)]
    assert live["writer"].requests == [] and len(live["editor"].requests) == 1
    divergence = first_divergence(trace, fork)
    assert divergence is not None and divergence.step == edit_step
    assert tools_run(tmp_path) == ["word_count", "word_count"]  # the count after the fork point ran live


SCRIPT = """
import asyncio, sys
from rolegraph import Runtime
from rolegraph.graphs import load_graph
from rolegraph.models import FunctionModel
from tests.unit.test_functional_api import slow_answer
app = load_graph(sys.argv[2] + ":app")
rt = Runtime.from_models({"writer": FunctionModel(slow_answer), "editor": FunctionModel(slow_answer)}, traces=sys.argv[1])
asyncio.run(app.run({"topic": "bees"}, runtime=rt))
"""


async def slow_answer(request: ChatRequest) -> str:
    print("call", flush=True)
    await asyncio.sleep(0.2)
    return await answer(request)


async def test_a_killed_run_resumes_from_its_checkpoint_without_asking_the_finished_tasks_again(
        tmp_path: Path, app_file: Path) -> None:
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(runs), str(app_file)], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    for _ in range(3):  # both drafts answered; the edit's call has started
        assert proc.stdout.readline() == "call\n"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = TraceStore(runs)
    (info,) = store.list()
    assert info.status == "incomplete"
    killed = store.load(info.run_id)
    assert [e.node for e in killed.of_kind(NodeFinished)] == ["outline", "draft", "draft"]

    app = load_graph(f"{app_file}:app")
    live = models()
    async with Runtime.from_models(live) as live_rt:
        result = await resume_run(killed, store=store, live=live_rt, graph=app)
    assert result.output.body == "on bees, part 1. on bees, part 2." and result.output.words == 8
    assert live["writer"].requests == [] and len(live["editor"].requests) == 1  # only the call cut off
    resumed = store.load(info.run_id)
    assert resumed.complete and resumed.status == "ok"
    assert sorted({e.step for e in resumed.of_kind(NodeStarted)}) == [0, 1, 2, 3, 4, 5]  # each step keeps its number
    assert {e.key for e in resumed.of_kind(NodeFinished) if e.error is None} == {e.key for e in resumed.of_kind(NodeStarted)}


class Question(BaseModel):
    text: str


class Reply(BaseModel):
    answer: str


async def test_input_and_output_types_are_read_from_the_entrypoint_or_stated() -> None:
    @task
    def shout(text: str) -> str:
        return text.upper()

    @entrypoint()
    async def scalar(text: str) -> str:
        return await shout(text)

    @entrypoint()
    async def typed(question: Question) -> Reply:
        return Reply(answer=await shout(question.text))

    @entrypoint()
    async def untyped(inputs):  # type: ignore[no-untyped-def]
        return {"said": await shout(inputs["text"])}

    @entrypoint()
    async def saving(text: str) -> entrypoint.final[str, int]:
        return entrypoint.final(value=await shout(text), save=len(text))

    rt = Runtime.from_models({})
    made = rg.langchain.app(scalar, name="fn_scalar")
    assert made.input_type.model_json_schema()["required"] == ["text"]
    assert (await made.run({"text": "hi"}, runtime=rt)).output == "HI"
    made = rg.langchain.app(typed, name="fn_typed")
    assert made.input_type is Question and (await made.run({"text": "hi"}, runtime=rt)).output == Reply(answer="HI")
    made = rg.langchain.app(untyped, name="fn_untyped", input=dict[str, str], output=dict[str, str])
    assert (await made.run({"text": "hi"}, runtime=rt)).output == {"said": "HI"}
    assert (await rg.langchain.app(saving, name="fn_saving").run({"text": "hi"}, runtime=rt)).output == "HI"

    @entrypoint()
    async def loose(question, previous=None):  # type: ignore[no-untyped-def]
        return {"said": await shout(question.text), "previous": previous}

    stated = rg.langchain.app(loose, name="fn_stated", input=Question, output=dict[str, Any])
    assert stated.input_type is Question
    assert (await stated.run({"text": "hi"}, runtime=rt)).output == {"said": "HI", "previous": None}
    wrong = rg.langchain.app(loose, name="fn_wrong", input=Question, output=int)
    with pytest.raises(UserError, match="fn_wrong_result"):  # the result says which type it is not
        await wrong.run({"text": "hi"}, runtime=rt)


class Opaque:
    """No pydantic model: a run's input cannot be made of JSON."""


def test_a_workflow_whose_types_cannot_be_used_or_whose_tasks_share_a_name_is_refused_saying_how() -> None:
    class Local(BaseModel):
        x: int

    @entrypoint()
    def opaque(thing: Opaque) -> str:
        return "x"

    @entrypoint()
    def local(thing: Local) -> str:
        return "x"

    with pytest.raises(UserError, match=r"input=\.\.\., output=\.\.\."):
        rg.langchain.app(opaque)
    with pytest.raises(UserError, match=r"'Local', cannot be resolved .* app\(workflow, input=\.\.\.\)"):
        rg.langchain.app(local)
    assert rg.langchain.app(local, name="fn_local", input=Local).input_type is Local

    def first(x: int) -> int:
        return x

    def second(x: int) -> int:
        return x

    one, two = task(first, name="same"), task(second, name="same")

    @entrypoint()
    def twice(x: int) -> int:
        return int(one(x).result()) + int(two(x).result())

    with pytest.raises(UserError, match="two tasks are named 'same'"):
        rg.langchain.app(twice)


def test_the_cli_says_how_to_wrap_a_bare_workflow(tmp_path: Path) -> None:
    path = tmp_path / "bare.py"
    path.write_text("from langgraph.func import entrypoint\n\n@entrypoint()\ndef flow(x: int) -> int:\n    return x\n")
    with pytest.raises(UserError, match=r"rolegraph\.langchain\.app\(flow\)"):
        load_graph(f"{path}:flow")


noter = Agent(name="noter", prompt="fn/note", output=str)


@task
async def note(topic: str) -> str:
    runtime = Runtime.current()
    assert runtime is not None
    return await noter.run(runtime, topic=topic)


@entrypoint()
async def notes(topics: list[str]) -> list[str]:
    return list(await asyncio.gather(*(note(t) for t in topics)))


notes_app = rg.langchain.app(notes)


async def test_an_agent_inside_a_task_is_the_graphs_and_the_workflow_is_evaluated(tmp_path: Path) -> None:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "note.j2").write_text("A note on {{ topic }}.")
    assert notes_app.roles() == ["noter"] and "fn/note" in notes_app.templates()
    cases = [Case(id=f"c{i}", input=notes_app.input({"topics": [f"t{i}", "x"]}), target=f"note: A note on t{i}.")
             for i in range(2)]

    async def first_is_target(case: Case, output: Any) -> Score:
        return Score(value=float(output[0] == case.target))

    first_is_target.name = "first"  # type: ignore[attr-defined]
    bench = Benchmark(name="notes", cases=lambda: iter(cases), solver=notes_app.solver(), scorers=[first_is_target])
    store = EvalStore(tmp_path / "eval" / "results.sqlite")
    async with Runtime.from_models({"noter": FunctionModel(lambda r: "note: " + (r.messages[-1].content or ""))},
                                   prompts=PromptLibrary(tmp_path), traces=tmp_path / "runs") as rt:
        summary = await run_eval(bench, rt, store=store, progress=False)
    assert summary.ran == 2 and summary.errors == 0
    records = list(store.records())
    assert all(r.scores["first"].value == 1.0 and r.run_id for r in records)
    trace = TraceStore(tmp_path / "runs").load(records[0].run_id or "")
    assert "fn/note" in trace.started.manifest.prompts
    assert {c.prompt for c in trace.of_kind(ModelCall)} == {"fn/note"}


def test_the_workflows_own_checkpointer_is_said_to_be_unused() -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    @entrypoint(checkpointer=InMemorySaver())
    def kept(x: int) -> int:
        return x

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rg.langchain.app(kept, name="fn_kept")
    assert any("checkpointer" in str(w.message) for w in caught)


@task
def approve(text: str) -> str:
    return str(interrupt({"approve": text}))


@task
async def shout(text: str) -> str:
    return text.upper()


@entrypoint()
async def reviewed(text: str) -> str:
    loud = await shout(text)
    return f"{loud} [{await approve(loud)}]"


reviewed_app = rg.langchain.app(reviewed)


async def test_a_task_asking_a_person_pauses_the_run_which_resumes_with_the_answer_and_replays(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "runs")
    async with Runtime.from_models({}, traces=store) as rt:
        paused = await reviewed_app.run({"text": "ship it"}, runtime=rt)
        assert paused.status == "interrupted"
        (question,) = paused.interrupts
        assert (question.node, question.node_key, question.value) == ("approve", "reviewed@1>approve@call1",
                                                                      {"approve": "SHIP IT"})
        done = await reviewed_app.resume(paused.run_id, "yes", runtime=rt)
    assert done.status == "ok" and done.output == "SHIP IT [yes]"
    again = await replay_run(store.load(paused.run_id or ""), store=store)
    assert again.output == "SHIP IT [yes]"  # the person's answer comes from the trace
