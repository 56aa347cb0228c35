"""A user's own graph, written outside the package with its own prompt folder, gets what the
built-in graphs get: traces, offline replay and fork in a fresh process, resume after a kill,
to-test, evaluation with trace ids and tokens."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rolegraph import Runtime, ScriptError, UserError
from rolegraph.evals import Benchmark, Case, EvalStore, run_eval
from rolegraph.graphs import load_graph, replay_run, resume_run
from rolegraph.models import ChatRequest, FunctionModel, ScriptedModel
from rolegraph.traces import ModelCall, NodeStarted, TraceStore
from rolegraph.traces._totest import write_test

ROOT = Path(__file__).resolve().parents[2]

EXAMPLE = ROOT / "examples" / "own_graph" / "writer_critic.py"
"""The getting-started page's own-graph example: these tests run its graph as a user's file."""


def make_graph(folder: Path, name: str = "writer_critic") -> Path:
    """The example graph as `folder/NAME.py` (its graph named NAME too, so each test imports its own),
    with prompts that `answer` reads in place of the example's; returns the file."""
    source = EXAMPLE.read_text()
    assert "def writer_critic(g: rg.StateGraph)" in source, "the example's graph is no longer writer_critic"
    (folder / "prompts").mkdir(parents=True)
    (folder / "prompts" / "write.j2").write_text(
        "{% block user %}Answer: {{ question }}{% if feedback %} Fix: {{ feedback }}{% endif %}{% endblock %}")
    (folder / "prompts" / "critique.j2").write_text(
        "{% block user %}Is this a good answer to {{ question }}? {{ draft }}{% endblock %}")
    path = folder / f"{name}.py"
    path.write_text(source.replace("writer_critic", name))
    return path


def answer(request: ChatRequest) -> Any:
    """Writer drafts; the critic rejects the first draft, then approves."""
    text = request.messages[-1].content or ""
    if text.startswith("Is this"):
        return {"ok": "draft 2" in text, "feedback": "" if "draft 2" in text else "say more"}
    return "draft 2" if "Fix:" in text else "draft 1"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "rolegraph", *args], check=False, cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.fixture
def graph_file(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    # a module name of its own per test: each test imports its graph afresh
    return make_graph(tmp_path / "user", f"wc_{request.node.name.replace('[', '_').replace(']', '')[:40]}")


async def test_runs_and_replays_offline_in_a_fresh_process(tmp_path: Path, graph_file: Path) -> None:
    graph = load_graph(f"{graph_file}:{graph_file.stem}")
    assert graph.roles() == ["critic", "writer"]
    store = TraceStore(tmp_path / "runs")
    rt = Runtime.from_models({"writer": ScriptedModel(["draft 1", "draft 2"]),
                              "critic": ScriptedModel([{"ok": False, "feedback": "say more"}, {"ok": True}])},
                             traces=store)
    async with rt:
        result = await graph.run({"question": "why?"}, runtime=rt)
    assert (result.draft, result.approved, result.rounds, result.status) == ("draft 2", True, 2, "ok")
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    trace = store.load(result.run_id or "")
    manifest = trace.started.manifest
    assert manifest.ref == f"{graph_file.stem}:{graph_file.stem}" and manifest.file == str(graph_file)
    assert set(manifest.roles) == {"writer", "critic"} and set(manifest.prompts) >= {"write", "critique"}
    assert manifest.prompt_dirs == [str(graph_file.parent / "prompts")] and "write" in manifest.mermaid

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = cli("replay", result.run_id or "", "--runs", str(store.root), cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert "4 calls answered from the trace, 0 live" in done.stdout
    assert "output: identical to the recorded run" in done.stdout


async def test_unknown_graph_says_where_it_was_recorded(tmp_path: Path, graph_file: Path) -> None:
    graph = load_graph(f"{graph_file}:{graph_file.stem}")
    store = TraceStore(tmp_path / "runs")
    async with Runtime.from_models({"default": FunctionModel(answer)}, traces=store) as rt:
        result = await graph.run({"question": "why?"}, runtime=rt)
    graph_file.rename(graph_file.with_suffix(".moved"))
    done = cli("replay", result.run_id or "", "--runs", str(store.root), cwd=tmp_path)
    assert done.returncode == 1
    assert f"cannot find graph '{graph_file.stem}'" in done.stderr and "entry points" in done.stderr


async def test_fork_with_a_changed_prompt_goes_live_only_after_the_fork_step(tmp_path: Path, graph_file: Path) -> None:
    graph = load_graph(f"{graph_file}:{graph_file.stem}")
    store = TraceStore(tmp_path / "runs")
    async with Runtime.from_models({"default": FunctionModel(answer)}, traces=store) as rt:
        result = await graph.run({"question": "why?"}, runtime=rt)
    trace = store.load(result.run_id or "")
    new_prompt = tmp_path / "critique-v2.j2"
    new_prompt.write_text("{% block user %}Is this fine? {{ draft }} (v2){% endblock %}")
    live = FunctionModel(answer)
    async with Runtime.from_models({"default": live}) as live_rt:
        forked = await replay_run(trace, store=store, live=live_rt, live_from=3, prompts={"critic": str(new_prompt)})
    assert forked.approved and forked.rounds == 2
    calls = store.load(forked.run_id or "").of_kind(ModelCall)
    assert [c.step for c in calls if c.replayed] == [0, 1, 2] and [c.step for c in calls if not c.replayed] == [3]
    assert len(live.requests) == 1 and "(v2)" in (live.requests[0].messages[-1].content or "")


KILLED = """
import asyncio, sys
from rolegraph import Runtime
from rolegraph.graphs import load_graph
from rolegraph.models import FunctionModel
from tests.unit.test_own_graph import answer

async def slow(request):
    print("call", flush=True)
    await asyncio.sleep(0.3)
    return answer(request)

graph = load_graph(sys.argv[2])
rt = Runtime.from_models({"default": FunctionModel(slow)}, traces=sys.argv[1])
asyncio.run(graph.run({"question": "why?"}, runtime=rt))
"""


async def test_killed_mid_node_resumes_without_repeating_a_completed_call(tmp_path: Path, graph_file: Path) -> None:
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(runs), f"{graph_file}:{graph_file.stem}"], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for _ in range(3):  # the third call (the second write) is in flight: its node is cut off
        assert proc.stdout.readline() == "call\n"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = TraceStore(runs)
    (info,) = store.list()
    assert info.status == "incomplete" and info.model_calls == 2  # `trace list` counts what it recorded

    killed = store.load(info.run_id)
    # resuming with a runtime that cannot play the roles fails before touching the run...
    with pytest.raises(UserError, match="no model for role"):
        await resume_run(killed, store=store, live=Runtime.from_models({"nobody": FunctionModel(answer)}))
    assert store.load(info.run_id).status == "incomplete"  # ...and leaves it resumable
    # the manifest's roles are answered by the runtime's default model
    live = FunctionModel(answer)
    result = await resume_run(store.load(info.run_id), store=store, live=Runtime.from_models({"default": live}))
    assert result.approved and result.rounds == 2
    assert len(live.requests) == 2  # the cut-off write and the last critique; the first two are not asked again
    resumed = store.load(info.run_id)
    assert resumed.complete
    assert [e.step for e in resumed.of_kind(NodeStarted)] == [0, 1, 2, 3]  # the cut-off step shows once


async def test_to_test_file_passes_under_pytest(tmp_path: Path, graph_file: Path) -> None:
    graph = load_graph(f"{graph_file}:{graph_file.stem}")
    store = TraceStore(tmp_path / "runs")
    async with Runtime.from_models({"default": FunctionModel(answer)}, traces=store) as rt:
        result = await graph.run({"question": "why?"}, runtime=rt)
    test_file = write_test(store.load(result.run_id or ""), 1, tmp_path / "recorded")
    assert "_replay" not in test_file.read_text()  # the written test imports public names only
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
                          cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


async def test_run_eval_records_trace_ids_and_tokens(tmp_path: Path, graph_file: Path) -> None:
    graph = load_graph(f"{graph_file}:{graph_file.stem}")

    async def approved(case: Case, output: Any) -> Any:
        from rolegraph.evals import Score

        return Score(value=float(output["approved"]))

    approved.name = "approved"  # type: ignore[attr-defined]
    cases = [Case(id=f"q{i}", input=graph.input({"question": f"question {i}"})) for i in range(3)]
    bench = Benchmark(name="wc", cases=lambda: iter(cases), solver=graph.solver(), scorers=[approved])
    store = EvalStore(tmp_path / "eval" / "results.sqlite")
    async with Runtime.from_models({"default": FunctionModel(answer)}, traces=tmp_path / "runs") as rt:
        summary = await run_eval(bench, rt, store=store, progress=False)
    assert summary.ran == 3 and summary.errors == 0
    records = list(store.records())
    assert all(r.run_id and r.prompt_tokens > 0 and r.completion_tokens > 0 for r in records)
    assert all(r.scores["approved"].value == 1.0 and r.output["draft"] == "draft 2" for r in records)


async def test_finish_may_return_a_dict_and_a_bad_one_says_which_field(tmp_path: Path) -> None:
    from pydantic import BaseModel

    import rolegraph as rg

    class In(BaseModel):
        x: int

    class Out(rg.RunResult):
        doubled: int

    async def double(state: In) -> dict[str, Any]:
        return {"x": state.x * 2}

    @rg.graph(input=In, state=In, result=Out, finish=lambda state: {"doubled": state.x})
    def doubler(g: rg.StateGraph) -> None:
        g.add_node(double)
        g.add_edge(rg.START, "double")
        g.add_edge("double", rg.END)

    rt = Runtime.from_models({})
    assert (await doubler.run({"x": 4}, runtime=rt)).doubled == 8

    @rg.graph(input=In, state=In, result=Out, finish=lambda state: {"wrong": 1}, name="bad_doubler")
    def bad(g: rg.StateGraph) -> None:
        g.add_node(double)
        g.add_edge(rg.START, "double")
        g.add_edge("double", rg.END)

    with pytest.raises(UserError, match="doubled"):
        await bad.run({"x": 1}, runtime=rt)


def test_sync_runtime_reports_unused_script_steps(graph_file: Path) -> None:
    graph = load_graph(f"{graph_file}:{graph_file.stem}")
    with pytest.raises(ScriptError, match="never used"), \
            Runtime.from_models({"writer": ScriptedModel(["draft 1", "draft 2", "spare"]),
                                 "critic": ScriptedModel([{"ok": False, "feedback": "more"}, {"ok": True}])}) as rt:
        graph.run_sync({"question": "why?"}, runtime=rt)


def test_cli_runs_a_graph_file_over_jsonl(tmp_path: Path, graph_file: Path) -> None:
    inputs = tmp_path / "in.jsonl"
    inputs.write_text('{"question": "a"}\n{"question": "b"}\n')
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "a"}\n{"query": "b"}\n')
    done = cli("run", f"{graph_file}:{graph_file.stem}", "--input", str(bad), cwd=tmp_path)
    assert done.returncode == 1 and "bad.jsonl:2: field 'question': Field required" in done.stderr
    done = cli("run", f"{graph_file.stem}.py:nothing", "--input", str(inputs), cwd=graph_file.parent)
    assert done.returncode == 1 and "defines no 'nothing'" in done.stderr


def _questions() -> Benchmark:
    def cases() -> Any:
        return [Case(id=f"q{i}", input={"question": f"why {i}?"}, target=True) for i in range(3)]

    async def approved(case: Case, output: Any) -> Any:
        from rolegraph.evals import Score

        return Score(value=float(output["approved"] == case.target))

    approved.name = "approved"  # type: ignore[attr-defined]
    return cases, approved


async def test_resume_adopts_a_finished_run_whose_result_was_never_written(tmp_path: Path, graph_file: Path) -> None:
    import sqlite3

    graph = load_graph(f"{graph_file}:{graph_file.stem}")
    cases, approved = _questions()
    bench = Benchmark(name="wc", cases=cases, solver=graph.solver(), scorers=[approved])
    store = TraceStore(tmp_path / "runs")
    results = EvalStore(tmp_path / "evals" / "wc" / "results.sqlite")
    async with Runtime.from_models({"default": FunctionModel(answer)}, traces=store) as rt:
        await run_eval(bench, rt, store=results, progress=False)
    first = {r.case_id: r for r in results.records()}
    # a kill after the runs finished and before their results were committed
    with sqlite3.connect(results.path) as con:
        con.execute("DELETE FROM results WHERE case_id != 'q0'")
    live = FunctionModel(answer)
    async with Runtime.from_models({"default": live}, traces=store) as rt:
        summary = await run_eval(bench, rt, store=results, resume=True, progress=False)
    assert summary.ran == 2 and live.requests == []  # rebuilt from the recorded runs, no model asked
    again = {r.case_id: r for r in results.records()}
    assert {k: (r.run_id, r.output, r.scores["approved"].value) for k, r in again.items()} == \
        {k: (r.run_id, r.output, r.scores["approved"].value) for k, r in first.items()}
    assert len(store.list(limit=100)) == 3  # no new run was recorded

    # a pair whose recorded run asked something else (another seed) is not adopted: it runs afresh
    with sqlite3.connect(results.path) as con:
        con.execute("DELETE FROM results WHERE case_id = 'q1'")
    other = Benchmark(name="wc", cases=cases, solver=graph.solver(seed=lambda case, repeat, seed: 7),
                      scorers=[approved])
    async with Runtime.from_models({"default": live}, traces=store) as rt:
        await run_eval(other, rt, store=results, resume=True, progress=False)
    assert len(live.requests) == 4 and len(store.list(limit=100)) == 4


async def slow(request: ChatRequest) -> Any:
    """`answer`, slowly, saying when each call starts (so a test can kill a run mid-call)."""
    print("call", flush=True)
    await asyncio.sleep(0.3)
    return answer(request)


KILLED_EVAL = """
import asyncio, sys
from rolegraph import Runtime
from rolegraph.evals import Benchmark, EvalStore, run_eval
from rolegraph.graphs import load_graph
from rolegraph.models import FunctionModel
from tests.unit.test_own_graph import slow, _questions

graph = load_graph(sys.argv[2])
cases, approved = _questions()
bench = Benchmark(name="wc", cases=lambda: cases()[:1], solver=graph.solver(), scorers=[approved])
rt = Runtime.from_models({"default": FunctionModel(slow)}, traces=sys.argv[1])
asyncio.run(run_eval(bench, rt, store=EvalStore(sys.argv[3]), progress=False))
"""


async def test_resume_continues_a_run_a_killed_evaluation_left_half_done(tmp_path: Path, graph_file: Path) -> None:
    runs, results = tmp_path / "runs", tmp_path / "evals" / "wc" / "results.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_EVAL, str(runs), f"{graph_file}:{graph_file.stem}",
                             str(results)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for _ in range(3):  # two calls finished, the third in flight
        assert proc.stdout.readline() == "call\n"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = TraceStore(runs)
    (killed,) = store.list()
    assert killed.status == "incomplete"
    graph = load_graph(f"{graph_file}:{graph_file.stem}")
    cases, approved = _questions()
    bench = Benchmark(name="wc", cases=lambda: cases()[:1], solver=graph.solver(), scorers=[approved])
    live = FunctionModel(slow)  # the same model: a run is adopted only when nothing that decides it changed
    async with Runtime.from_models({"default": live}, traces=store) as rt:
        await run_eval(bench, rt, store=EvalStore(results), resume=True, progress=False)
    (record,) = EvalStore(results).records()
    assert record.status == "ok" and record.output["approved"] and record.run_id == killed.run_id
    assert len(live.requests) == 2  # the cut-off write and the last critique, not the whole run again
    assert [r.run_id for r in store.list()] == [killed.run_id] and store.load(killed.run_id).complete


async def test_a_long_input_is_stored_once_and_an_oversized_one_refused(tmp_path: Path, graph_file: Path) -> None:
    graph = load_graph(f"{graph_file}:{graph_file.stem}")
    store = TraceStore(tmp_path / "runs")
    question = "why " + "é" * 300_000 + "?"  # in the manifest, every step's state and every request
    async with Runtime.from_models({"default": FunctionModel(answer)}, traces=store) as rt:
        result = await graph.run({"question": question}, runtime=rt)
        trace = store.load(result.run_id or "")
        assert trace.started.manifest.input["question"] == question  # put back exactly on load
        started = trace.of_kind(NodeStarted)
        assert len(started) == 4 and all(e.state["question"] == question for e in started)
        # each long string once: the question and the four distinct prompts that quote it (two drafts
        # asked for, two critiques), where every event inline held ten copies
        blobs = list((trace.dir / "blobs").iterdir())
        assert len(blobs) == 5 and sum(b.stat().st_size for b in blobs) < 5.1 * len(question.encode())
        assert (trace.dir / "events.jsonl").stat().st_size < 20_000
        replayed = await replay_run(trace)  # requests rebuilt from the restored strings still match
        assert replayed.draft == result.draft and replayed.rounds == result.rounds

        with pytest.raises(UserError, match=r"over the limit of 1\.0 MiB \(field 'question' is 2\.0 MiB\)"):
            await graph.run({"question": "x" * (2 * 1024 * 1024)}, runtime=rt)
    assert len(store.list(limit=10)) == 1  # the refused run left nothing behind


def test_an_object_that_looks_like_a_blob_reference_is_kept_as_it_is(tmp_path: Path) -> None:
    from rolegraph.traces import Manifest

    store = TraceStore(tmp_path / "runs")
    from rolegraph.traces._events import RunStarted

    hostile = {"$rolegraph_blob": "../../../etc/passwd", "size": 1}
    lookalike = {"$rolegraph_blob": "a" * 64, "size": 1}  # well formed, but no such blob in the run
    writer = store.writer("r1")
    writer.write(RunStarted(run_id="r1", manifest=Manifest(graph="g", input={"a": hostile, "b": lookalike,
                                                                            "c": "x" * 70_000})))
    writer.close()
    loaded = store.load("r1").started.manifest.input
    assert loaded == {"a": hostile, "b": lookalike, "c": "x" * 70_000}
