"""Tracing costs on the RefineBot graph with an instant model (no server, no sleeps):

- recording overhead: the same runs untraced and traced, both with the same SQLite checkpointer,
  per node step and per model call, as a ratio (goal: at most 1.25x);
- replay speed: model calls answered from a trace per second (goal: at least 1,000/s), for a
  replay that records its own trace and checkpoints (what `rolegraph replay` does) and for one
  that does not;
- size: bytes per model-call event, not counting message text.

    .venv/bin/python benchmarks/tracing.py [--runs 15] [--iters 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiosqlite
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from rich.console import Console
from rich.table import Table

from rolegraph import Runtime
from rolegraph.envs.mcq import MCQ
from rolegraph.graphs import refinebot, replay_run
from rolegraph.models import ChatRequest, FunctionModel
from rolegraph.traces import ModelCall, TraceStore

MCQ_A = MCQ(key="b1", question="Which organelle makes ATP in the cell shown?",
            choices=["Nucleus", "Mitochondrion", "Golgi", "Lysosome"], correct_index=1)
REWRITE = {"question_stem": "Which compartment in the image makes ATP?", "explanation": "x",
           "choices": ["Nucleus", "Mitochondrion", "Golgi", "Lysosome"], "correct_index": 1}


def instant(request: ChatRequest) -> Any:
    schema = str(request.response_schema or "")
    if "question_stem" in schema:
        return REWRITE
    if "is_equivalent" in schema:
        return {"is_equivalent": True, "explanation": "same"}
    return "The answer is (b)"


async def untraced_run(options: refinebot.RefineBotOptions, db: Path) -> int:
    """The same graph with the same checkpointer, but no trace store."""
    rt = Runtime.from_models({"default": FunctionModel(instant)})
    graph = refinebot.refinebot
    manifest = graph.manifest(MCQ_A, runtime=rt, options=options)
    initial, limit = graph.start_state(manifest)
    async with aiosqlite.connect(str(db)) as conn:
        saver = AsyncSqliteSaver(conn)
        g = graph.compile(options).copy(update={"checkpointer": saver})
        raw = await g.ainvoke(initial, config={"recursion_limit": limit, "configurable": {"thread_id": db.stem}},
                              context=rt)
    return 4 * raw["iteration"] + 1


async def traced_run(options: refinebot.RefineBotOptions, store: TraceStore) -> str:
    rt = Runtime.from_models({"default": FunctionModel(instant)}, traces=store)
    result = await refinebot.run(MCQ_A, runtime=rt, options=options)
    return result.trace_id or ""


async def main(runs: int, iters: int) -> None:
    options = refinebot.RefineBotOptions(max_iters=iters)
    steps_per_run = 4 * (iters - 1) + 1
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = TraceStore(root / "runs")
        await untraced_run(options, root / "warm.sqlite")
        await traced_run(options, store)
        plain, traced = [], []
        for i in range(runs):  # alternate, so drift hits both
            t = time.perf_counter()
            await untraced_run(options, root / f"u{i}.sqlite")
            plain.append(time.perf_counter() - t)
            t = time.perf_counter()
            run_id = await traced_run(options, store)
            traced.append(time.perf_counter() - t)

        trace = store.load(run_id)
        calls = trace.of_kind(ModelCall)
        replay_recorded, replay_bare = [], []
        for _ in range(max(3, runs // 3)):
            t = time.perf_counter()
            await replay_run(trace, store=store)
            replay_recorded.append(time.perf_counter() - t)
            t = time.perf_counter()
            await replay_run(trace, store=None)
            replay_bare.append(time.perf_counter() - t)

        lines = (trace.dir / "events.jsonl").read_text().splitlines()
        call_lines = [ln for ln in lines if '"kind":"model_call"' in ln]
        text = [sum(len(m.content or "") for m in c.request.messages) + len(c.response.text if c.response else "")
                for c in calls]
        overhead = [len(ln.encode()) - t for ln, t in zip(call_lines, text, strict=True)]

    p, q = statistics.median(plain), statistics.median(traced)
    n_calls = len(calls)
    console = Console()
    table = Table(title=f"tracing on RefineBot, instant model: {steps_per_run} steps and {n_calls} model calls a run, "
                        f"median of {runs} runs", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("goal", justify="right")
    table.add_row("untraced run (same SQLite checkpointer)", f"{p * 1000:.1f} ms", "")
    table.add_row("traced run", f"{q * 1000:.1f} ms", "")
    table.add_row("per node step: untraced / traced", f"{p / steps_per_run * 1000:.3f} / {q / steps_per_run * 1000:.3f} ms", "")
    table.add_row("per model call: untraced / traced", f"{p / n_calls * 1000:.3f} / {q / n_calls * 1000:.3f} ms", "")
    table.add_row("recording overhead (traced / untraced)", f"{q / p:.2f}x", "<= 1.25x")
    r1, r2 = statistics.median(replay_recorded), statistics.median(replay_bare)
    table.add_row("replay, recording a new trace + checkpoints", f"{n_calls / r1:,.0f} calls/s", ">= 1,000/s")
    table.add_row("replay, nothing written", f"{n_calls / r2:,.0f} calls/s", ">= 1,000/s")
    table.add_row("model-call event, bytes without message text",
                  f"{statistics.median(overhead):,.0f} (median), {max(overhead):,} (max)", "")
    console.print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--iters", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.iters))
