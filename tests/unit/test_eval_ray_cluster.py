"""A real Ray cluster of two nodes (a head and one more node with its own temp dir and HOME, 1 CPU
each): a user's graph file from a folder the workers import only through the job's working_dir,
evaluated, blamed and fork-compared across both nodes over a stub OpenAI-compatible server; every
result's trace opens on the driver, the driver's trace folder is written by the driver alone, and a
node killed mid-run loses and duplicates nothing."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rolegraph import Runtime
from rolegraph.evals import EvalStore, RayExecutor, run_eval
from rolegraph.evals.blame import blame
from rolegraph.evals.fork_compare import fork_compare
from rolegraph.graphs import load_graph
from rolegraph.models.servers.loadtest import LoadTestServer
from rolegraph.traces import TraceStore

ray = pytest.importorskip("ray", reason="the Ray executor needs the [ray] extra (make setup installs it)")

GRAPH = '''
"""A user's graph, in a folder of its own: three questions; every answer must be yes."""
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import rolegraph as rg


class Ask(BaseModel):
    question: str


class State(BaseModel):
    question: str
    answers: list[str] = []
    where: str = ""


class Done(rg.RunResult):
    success: bool
    answers: list[str]
    where: str


answerer = rg.Agent(name="answerer", prompt="answer", output=str, max_tokens=8)


async def ask(state: State, runtime: rg.Runtime) -> dict[str, Any]:
    text = await answerer.run(runtime, question=state.question, n=len(state.answers))
    # where this code ran: its own folder, the node's temp dir
    return {"answers": [*state.answers, text], "where": f"{Path(__file__).resolve().parent}|{tempfile.gettempdir()}"}


def more(state: State) -> str:
    return "ask" if len(state.answers) < 3 else rg.END


def finish(state: State) -> dict[str, Any]:
    return {"success": all(a.startswith("yes") for a in state.answers), "answers": state.answers,
            "where": state.where}


@rg.graph(input=Ask, state=State, result=Done, prompts="prompts/", agents=[answerer], finish=finish)
def quiz(g: rg.StateGraph) -> None:
    g.add_node(ask)
    g.add_edge(rg.START, "ask")
    g.add_conditional_edges("ask", more, ["ask", rg.END])
'''


def reply(body: dict[str, Any]) -> str:
    """Yes four times in five, by the request's seed (a request without one: yes)."""
    seed = body.get("seed")
    return "yes" if seed is None or random.Random(seed).random() < 0.8 else "no"


@dataclass
class Nodes:
    cluster: Any
    extra: Any
    extra_tmp: Path


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    from ray.cluster_utils import Cluster

    base = tmp_path_factory.mktemp("node2")
    env = {"HOME": str(base / "home"), "TMPDIR": str(base / "tmp")}
    for folder in env.values():
        Path(folder).mkdir()
    fast = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500, "health_check_failure_threshold": 3}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "_system_config": fast})
    token = Path.home() / ".ray" / "auth_token"  # where Ray keeps the cluster's token, when its token auth is on:
    if token.is_file():  # each node needs it, as a real node would be given it (docs/how-to/ray.md)
        (base / "home" / ".ray").mkdir()
        shutil.copy(token, base / "home" / ".ray" / "auth_token")
    extra = cluster.add_node(num_cpus=1, env_vars=env)
    cluster.wait_for_nodes()
    try:
        yield Nodes(cluster, extra, base / "tmp")
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


@pytest.fixture
def user_graph(tmp_path: Path) -> Path:
    """The user's graph file and its prompt folder, in a folder of their own."""
    folder = tmp_path / "user_code"
    (folder / "prompts").mkdir(parents=True)
    (folder / "quiz_graph.py").write_text(GRAPH)
    (folder / "prompts" / "answer.j2").write_text("Question: {{ question }} (round {{ n }}). Answer yes or no.")
    return folder / "quiz_graph.py"


@pytest.fixture
def spied(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The run ids the driver added to a trace store from elsewhere."""
    added: set[str] = set()
    real = TraceStore.add_run

    def add_run(self: TraceStore, run_id: str, files: Any) -> Path:
        added.add(run_id)
        return real(self, run_id, files)

    monkeypatch.setattr(TraceStore, "add_run", add_run)
    return added


def _runtime(tmp_path: Path, server: LoadTestServer) -> Runtime:
    path = tmp_path / "rolegraph.toml"
    path.write_text(f'[endpoints.stub]\nbase_url = "{server.base_url}"\ndialect = "openai"\n'
                    f'[roles.default]\nendpoint = "stub"\nmodel = "stub"\n[traces]\ndir = "{tmp_path / "runs"}"\n')
    return Runtime.load(path)


def _cases(tmp_path: Path, n: int) -> Path:
    data = tmp_path / "cases.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "input": {"question": f"question {i}"}}) + "\n"
                            for i in range(n)))
    return data


def _bench(graph_file: Path, data: Path) -> Any:
    from rolegraph.evals import Benchmark
    from rolegraph.evals._any import graph_cases

    graph = load_graph(f"{graph_file}:quiz")
    cases = graph_cases(graph, data)
    return Benchmark(name="quiz", cases=lambda: iter(cases), solver=graph.solver(), scorers=[])


def _executor(nodes: Nodes) -> RayExecutor:
    return RayExecutor(address=nodes.cluster.address)


def _only_from_driver(store: Path, added: set[str], own: frozenset[str] = frozenset()) -> None:
    """Every run folder in the driver's store came through add_run (or was recorded by the driver)."""
    folders = {p.name for p in store.iterdir() if p.is_dir() and not p.name.startswith(".")}
    assert folders and folders <= added | own, folders - added - own


async def test_an_evaluation_of_a_user_graph_file_runs_on_both_nodes_and_its_traces_come_home(
        nodes: Nodes, tmp_path: Path, user_graph: Path, spied: set[str]) -> None:
    async with LoadTestServer(delay_s=0.05, reply=reply) as server:
        runtime = _runtime(tmp_path, server)
        store = EvalStore(tmp_path / "eval" / "results.sqlite")
        executor = _executor(nodes)
        summary = await run_eval(_bench(user_graph, _cases(tmp_path, 8)), runtime, store=store, concurrency=4,
                                 progress=False, executor=executor)
    assert summary.ran == 8 and summary.errors == 0
    records = list(store.records())
    assert len({(r.case_id, r.repeat) for r in records}) == len(records) == 8
    driver = TraceStore(tmp_path / "runs")
    wheres = set()
    for r in records:
        trace = driver.load(r.run_id or "")  # every result's run opens on the driver
        assert trace.complete and r.trace_dir == str(tmp_path / "runs" / trace.run_id)
        code, tmp = r.output["where"].split("|")
        assert Path(code) != user_graph.parent  # the code came through the job, not the driver's path
        wheres.add(tmp)
    assert str(nodes.extra_tmp) in wheres and len(wheres) == 2  # both nodes, each its own temp dir
    _only_from_driver(tmp_path / "runs", spied)
    assert server.requests == 8 * 3
    assert executor.shipped_bytes > 0
    assert not list(nodes.extra_tmp.glob("rolegraph-ray-*"))  # the workers' temporary stores are gone with them


async def test_a_resumed_evaluation_on_ray_adopts_the_runs_an_earlier_try_left_shipped_to_the_workers(
        nodes: Nodes, tmp_path: Path, user_graph: Path, spied: set[str]) -> None:
    import sqlite3

    async with LoadTestServer(delay_s=0.02, reply=reply) as server:
        runtime = _runtime(tmp_path, server)
        store = EvalStore(tmp_path / "eval" / "results.sqlite")
        async with runtime:
            await run_eval(_bench(user_graph, _cases(tmp_path, 4)), runtime, store=store, concurrency=4, progress=False)
        first = {r.case_id: r.run_id for r in store.records()}
        with sqlite3.connect(store.path) as con:  # a killed try: its runs recorded, two results never written
            con.execute("DELETE FROM results WHERE case_id IN ('q1', 'q2')")
        asked = server.requests
        summary = await run_eval(_bench(user_graph, _cases(tmp_path, 4)), runtime, store=store, concurrency=4,
                                 resume=True, progress=False, executor=_executor(nodes))
    assert (summary.ran, summary.adopted) == (2, 2) and server.requests == asked  # rebuilt, no model call
    records = {r.case_id: r for r in store.records()}
    assert {k: r.run_id for k, r in records.items()} == first and all(r.adopted for k, r in records.items()
                                                                       if k in ("q1", "q2"))
    assert not spied  # the adopted runs came back unchanged: nothing new to add


async def test_a_blame_runs_across_both_nodes_with_its_forked_traces_home(
        nodes: Nodes, tmp_path: Path, user_graph: Path, spied: set[str]) -> None:
    graph = load_graph(f"{user_graph}:quiz")
    async with LoadTestServer(delay_s=0.02, reply=reply) as server:
        runtime = _runtime(tmp_path, server)
        async with runtime:
            recorded = await graph.run(graph.input({"question": "blamed"}), runtime=runtime, seed=1)
        trace = TraceStore(tmp_path / "runs").load(recorded.run_id or "")
        report = await blame(trace, live=runtime, out=tmp_path / "blame", samples=2, method="sweep",
                             executor=_executor(nodes), progress=False, graph=graph)
    assert [s.samples for s in report.steps] == [2, 2, 2]
    assert report.live_calls == sum(s.live_calls for s in report.steps) > 0
    forks = TraceStore(tmp_path / "blame" / "runs")
    texts = []
    for step in report.steps:
        for run_id in step.traces:
            fork = forks.load(run_id)
            assert fork.complete and fork.started.parent is not None and fork.started.parent.run_id == trace.run_id
            texts.append((fork.dir / "events.jsonl").read_text())
    assert len(texts) == 6
    assert any(str(nodes.extra_tmp) in t for t in texts) and not all(str(nodes.extra_tmp) in t for t in texts)
    _only_from_driver(tmp_path / "blame" / "runs", spied)
    assert {trace.run_id} == {p.name for p in (tmp_path / "runs").iterdir() if p.is_dir()}  # the source, untouched


async def test_a_fork_compare_runs_across_both_nodes_and_resumes_with_nothing_run_twice(
        nodes: Nodes, tmp_path: Path, user_graph: Path, spied: set[str]) -> None:
    async with LoadTestServer(delay_s=0.02, reply=reply) as server:
        runtime = _runtime(tmp_path, server)
        async with runtime:
            await run_eval(_bench(user_graph, _cases(tmp_path, 3)), runtime, store=EvalStore(tmp_path / "ev" /
                           "results.sqlite"), concurrency=3, progress=False)  # recorded here, on asyncio
            report = await fork_compare(tmp_path / "ev", live=runtime, at="answerer", model="other", samples=2,
                                        executor=_executor(nodes), progress=False)
            asked = server.requests
            again = await fork_compare(tmp_path / "ev", live=runtime, at="answerer", model="other", samples=2,
                                       executor=_executor(nodes), progress=False)
    assert report.cases == 3 and again.cases == 3 and server.requests == asked  # resumed: nothing run again
    results = EvalStore(tmp_path / "ev" / "fork-compare" / "results.sqlite")
    records = list(results.records())
    assert len(records) == len({r.case_id for r in records}) == 3 * 2 * 2 and all(r.status == "ok" for r in records)
    forks = TraceStore(tmp_path / "ev" / "fork-compare" / "runs")
    for r in records:
        assert forks.load(r.run_id or "").complete
    _only_from_driver(tmp_path / "ev" / "fork-compare" / "runs", spied)


def _running_on(node_tmp: Path) -> bool:
    """Whether a worker on the node whose temp dir is `node_tmp` is in the middle of a case (a run it
    records there has started and not finished)."""
    for log in node_tmp.glob("rolegraph-ray-*/runs/*/events.jsonl"):
        try:
            if '"run_finished"' not in log.read_text():
                return True
        except OSError:  # removed as it was read
            continue
    return False


async def test_a_node_killed_mid_run_loses_and_duplicates_nothing(
        nodes: Nodes, tmp_path: Path, user_graph: Path, spied: set[str]) -> None:
    async with LoadTestServer(delay_s=0.3, reply=reply) as server:
        runtime = _runtime(tmp_path, server)
        store = EvalStore(tmp_path / "eval" / "results.sqlite")
        executor = _executor(nodes)
        task = asyncio.ensure_future(run_eval(_bench(user_graph, _cases(tmp_path, 12)), runtime, store=store,
                                              concurrency=4, progress=False, executor=executor))
        while not task.done() and not (server.requests >= 6 and _running_on(nodes.extra_tmp)):
            await asyncio.sleep(0.05)
        nodes.cluster.remove_node(nodes.extra, allow_graceful=False)  # mid-case: its pairs never come back
        summary = await asyncio.wait_for(task, 120)
    assert executor.lost >= 1
    records = list(store.records())
    assert summary.ran == 12 and len(records) == len({(r.case_id, r.repeat) for r in records}) == 12
    assert all(r.status == "ok" for r in records), [r.error for r in records if r.status != "ok"]
    driver = TraceStore(tmp_path / "runs")
    assert all(driver.load(r.run_id or "").complete for r in records)
    _only_from_driver(tmp_path / "runs", spied)
