"""A LangGraph functional-API workflow on rolegraph (`rolegraph.langchain.app(workflow)`): cost per
task call of the wrapped workflow (each call a recorded step, SQLite checkpoints) against the same
`@entrypoint` run by LangGraph itself with the same SQLite checkpointer, in alternating trials; the
replay speed (tasks re-run with nothing written); and the wall time of `rolegraph trace to-test`,
which runs the test it writes once in a fresh process before it keeps it.

The tasks do no work of their own (no model, no tool), so what is measured is the framework.

    .venv/bin/python benchmarks/functional_api.py [--trials 5] [--runs 20] [--replays 50]
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

import aiosqlite
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.func import entrypoint, task
from rich.console import Console
from rich.table import Table

import rolegraph as rg
from rolegraph.graphs import replay_run
from rolegraph.traces import TraceStore

WIDTH = 6  # tasks side by side, then one that joins them: 7 task calls a run


@task
async def square(x: int) -> int:
    return x * x


@task
async def total(values: list[int]) -> int:
    return sum(values)


@entrypoint()
async def squares(n: int) -> int:
    return await total([await f for f in [square(i) for i in range(n)]])


TASKS = WIDTH + 1
app = rg.langchain.app(squares, name="bench_squares")


async def raw_trial(runs: int, folder: Path) -> float:
    """Seconds per task call, LangGraph alone with the SQLite checkpointer."""
    started = time.perf_counter()
    async with aiosqlite.connect(str(folder / "raw.sqlite")) as conn:
        checkpointed = squares.copy(update={"checkpointer": AsyncSqliteSaver(conn)})
        for i in range(runs):
            await checkpointed.ainvoke(WIDTH, config={"configurable": {"thread_id": f"t{time.time_ns()}-{i}"}})
    return (time.perf_counter() - started) / (runs * TASKS)


async def wrapped_trial(runs: int, store: TraceStore) -> float:
    """Seconds per task call, the workflow wrapped: each call recorded, SQLite checkpoints per run."""
    runtime = rg.Runtime.from_models({}, traces=store)
    started = time.perf_counter()
    for _ in range(runs):
        await app.run({"n": WIDTH}, runtime=runtime)
    return (time.perf_counter() - started) / (runs * TASKS)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--replays", type=int, default=50)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="rolegraph-functional-"))
    store = TraceStore(folder / "runs")
    raw_s: list[float] = []
    wrapped_s: list[float] = []
    await raw_trial(2, folder)  # warm both arms
    await wrapped_trial(2, store)
    for t in range(args.trials):
        for arm in ((0, 1) if t % 2 == 0 else (1, 0)):
            if arm == 0:
                raw_s.append(await raw_trial(args.runs, folder))
            else:
                wrapped_s.append(await wrapped_trial(args.runs, store))
    ratios = [w / r for w, r in zip(wrapped_s, raw_s, strict=True)]

    async with rg.Runtime.from_models({}, traces=store) as rt:
        recorded = await app.run({"n": WIDTH}, runtime=rt)
    trace = store.load(recorded.run_id or "")
    started = time.perf_counter()
    for _ in range(args.replays):
        await replay_run(trace, graph=app)
    replay_tasks_s = args.replays * TASKS / (time.perf_counter() - started)

    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "rolegraph", "trace", "to-test", trace.run_id, "--step", "1",
                           "--runs", str(store.root), "--out", str(folder / "recorded")], capture_output=True, text=True,
                          check=False, cwd=Path(__file__).parent,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    to_test_s = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"to-test failed: {done.stderr}")

    table = Table(title=f"functional-API workflow on rolegraph ({TASKS} task calls a run, {args.runs} runs x "
                        f"{args.trials} alternating trials)")
    for col in ("measure", "median", "range"):
        table.add_column(col, justify="right")
    for label, values in (("raw @entrypoint + SQLite checkpointer, ms/task", raw_s),
                          ("wrapped (each task a recorded step + SQLite checkpoints), ms/task", wrapped_s)):
        ms = [x * 1000 for x in values]
        table.add_row(label, f"{statistics.median(ms):.2f}", f"{min(ms):.2f}-{max(ms):.2f}")
    table.add_row("ratio wrapped / raw", f"{statistics.median(ratios):.2f}x", f"{min(ratios):.2f}-{max(ratios):.2f}")
    table.add_row("replay, task calls/s (nothing written)", f"{replay_tasks_s:.0f}", "")
    table.add_row("rolegraph trace to-test, with its check run, s (two fresh processes)", f"{to_test_s:.1f}", "")
    Console(width=150).print(table)


if __name__ == "__main__":
    asyncio.run(main())
