"""The Ray executor on a local two-node cluster (a head and one more node, 1 CPU each, started here
with `ray.cluster_utils.Cluster`) against the asyncio executor, over the same stub
OpenAI-compatible server (its own process): a user's single-call graph file evaluated in
alternating trials (cases per second, the driver's CPU per case, the bytes of trace shipped home
per case), then a blame's wall time on one node and on two.

    .venv/bin/python benchmarks/ray_cluster.py [--cases 200] [--delay 0.05] [--concurrency 16]
        [--trials 3] [--blame-samples 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from rolegraph import Runtime
from rolegraph.evals import Benchmark, Case, EvalStore, RayExecutor, run_eval
from rolegraph.evals.blame import blame
from rolegraph.graphs import load_graph
from rolegraph.models.servers.embedded import free_port
from rolegraph.traces import TraceStore

SERVER = """
import asyncio, random, sys
from rolegraph.models.servers.loadtest import LoadTestServer
def reply(body):
    seed = body.get("seed")
    return "yes" if seed is None or random.Random(seed).random() < 0.8 else "no"
async def main():
    async with LoadTestServer(delay_s=float(sys.argv[2]), port=int(sys.argv[1]), reply=reply):
        print("ready", flush=True)
        await asyncio.Event().wait()
asyncio.run(main())
"""

GRAPH = '''
"""A user's graph: `calls` questions in a row; every answer must be yes."""
from typing import Any

from pydantic import BaseModel

import rolegraph as rg
from rolegraph.models import ChatRequest, Message


class Ask(BaseModel):
    question: str
    calls: int = 1


class State(Ask):
    answers: list[str] = []


class Done(rg.RunResult):
    success: bool


async def ask(state: State, runtime: rg.Runtime) -> dict[str, Any]:
    text = f"{state.question} (round {len(state.answers)}): yes or no?"
    reply = await runtime.model("default").chat(ChatRequest(messages=(Message(role="user", content=text),), max_tokens=4))
    return {"answers": [*state.answers, reply.text]}


def more(state: State) -> str:
    return "ask" if len(state.answers) < state.calls else rg.END


@rg.graph(input=Ask, state=State, result=Done, roles=["default"],
          finish=lambda s: {"success": all(a.startswith("yes") for a in s.answers)})
def quiz(g: rg.StateGraph) -> None:
    g.add_node(ask)
    g.add_edge(rg.START, "ask")
    g.add_conditional_edges("ask", more, ["ask", rg.END])
'''


def runtime(folder: Path, port: int) -> Runtime:
    path = folder / "rolegraph.toml"
    path.write_text(f'[endpoints.stub]\nbase_url = "http://127.0.0.1:{port}/v1"\ndialect = "openai"\n'
                    f'[roles.default]\nendpoint = "stub"\nmodel = "stub"\n[traces]\ndir = "{folder / "runs"}"\n')
    return Runtime.load(path)


async def one_eval(graph: Any, n: int, folder: Path, port: int, concurrency: int,
                   executor: RayExecutor | None) -> dict[str, float]:
    cases = [Case(id=f"q{i}", input=graph.input({"question": f"question {i}"})) for i in range(n)]
    bench = Benchmark(name="quiz", cases=lambda: iter(cases), solver=graph.solver(), scorers=[])
    rt = runtime(folder, port)
    cpu, wall = time.process_time(), time.perf_counter()
    async with rt:
        summary = await run_eval(bench, rt, store=EvalStore(folder / "eval" / "results.sqlite"),
                                 concurrency=concurrency, progress=False, executor=executor)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert summary.ran == n and summary.errors == 0, summary
    store = TraceStore(folder / "runs")
    assert len(store.list(limit=n + 1)) == n  # every case's trace came home
    return {"rate": n / wall, "cpu_ms": 1000 * cpu / n,
            "bytes": (executor.shipped_bytes / n) if executor is not None else float("nan")}


async def one_blame(graph: Any, folder: Path, port: int, samples: int, address: str, calls: int) -> float:
    rt = runtime(folder, port)
    async with rt:
        recorded = await graph.run(graph.input({"question": "blamed", "calls": calls}), runtime=rt, seed=1)
        trace = TraceStore(folder / "runs").load(recorded.run_id)
        started = time.perf_counter()
        report = await blame(trace, live=rt, out=folder / "blame", samples=samples, method="sweep", graph=graph,
                             executor=RayExecutor(address=address), progress=False, concurrency=8)
    assert all(s.samples == samples for s in report.steps)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--delay", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--blame-samples", type=int, default=4)
    ap.add_argument("--blame-calls", type=int, default=6)
    args = ap.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    work = Path(tempfile.mkdtemp(prefix="ray-cluster-bench-"))
    code = work / "user_code"
    code.mkdir()
    (code / "quiz_graph.py").write_text(GRAPH)
    graph = load_graph(f"{code / 'quiz_graph.py'}:quiz")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(args.delay)], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    node_env = {"HOME": str(work / "node2-home"), "TMPDIR": str(work / "node2-tmp")}
    for d in node_env.values():
        os.makedirs(d)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    extra = cluster.add_node(num_cpus=1, env_vars=node_env)
    cluster.wait_for_nodes()
    results: dict[str, list[dict[str, float]]] = {"asyncio": [], "ray (2 nodes)": []}
    blames: dict[str, list[float]] = {"1 node": [], "2 nodes": []}
    try:
        for trial in range(args.trials):
            for name in (("asyncio", "ray (2 nodes)") if trial % 2 == 0 else ("ray (2 nodes)", "asyncio")):
                folder = Path(tempfile.mkdtemp(dir=work))
                executor = RayExecutor(address=cluster.address) if name.startswith("ray") else None
                results[name].append(asyncio.run(one_eval(graph, args.cases, folder, port, args.concurrency, executor)))
        for trial in range(args.trials):
            for name in (("2 nodes", "1 node") if trial % 2 == 0 else ("1 node", "2 nodes")):
                if name == "1 node" and extra is not None:
                    cluster.remove_node(extra)
                    extra = None
                elif name == "2 nodes" and extra is None:
                    extra = cluster.add_node(num_cpus=1, env_vars=node_env)
                    cluster.wait_for_nodes()
                folder = Path(tempfile.mkdtemp(dir=work))
                blames[name].append(asyncio.run(one_blame(graph, folder, port, args.blame_samples, cluster.address,
                                                          args.blame_calls)))
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
        server.terminate()
        server.wait()
    console = Console()
    table = Table(title=f"{args.cases} single-call cases of a user's graph file, stub server {args.delay * 1000:.0f} ms, "
                        f"concurrency {args.concurrency}, {args.trials} alternating trials (median)")
    for col in ("executor", "cases/s", "driver CPU ms/case", "trace bytes shipped/case"):
        table.add_column(col, justify="right")
    for name, rows in results.items():
        shipped = statistics.median(r["bytes"] for r in rows)
        table.add_row(name, f"{statistics.median(r['rate'] for r in rows):.1f}",
                      f"{statistics.median(r['cpu_ms'] for r in rows):.2f}",
                      "-" if shipped != shipped else f"{shipped:,.0f}")
    console.print(table)
    table = Table(title=f"blame (sweep, {args.blame_samples} samples x {args.blame_calls} calls) on the Ray executor")
    for col in ("cluster", "wall s (median)", "trials"):
        table.add_column(col, justify="right")
    for name, walls in blames.items():
        table.add_row(name, f"{statistics.median(walls):.2f}", ", ".join(f"{w:.2f}" for w in walls))
    console.print(table)


if __name__ == "__main__":
    main()
