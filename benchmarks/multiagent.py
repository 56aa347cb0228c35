"""A `langgraph-supervisor` app on rolegraph: the per-step cost of the wrapped app (every step
recorded, handoffs included, SQLite checkpoints) against the same compiled app run by LangGraph
itself with the same SQLite checkpointer, in alternating trials; and its offline replay speed.

Both arms run the same compiled supervisor (two `create_react_agent` experts) with the same models:
`rg.langchain.RoleChatModel`s answered by instant scripted functions through a rolegraph Runtime,
so the difference is what the wrapping adds (the trace, and the run's own checkpoint file).

    .venv/bin/python benchmarks/multiagent.py [--trials 5] [--runs 20] [--replays 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import aiosqlite
from langchain_core.tools import tool
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.prebuilt import create_react_agent
from langgraph_supervisor import create_supervisor
from rich.console import Console
from rich.table import Table

import rolegraph as rg
from rolegraph.graphs import replay_run
from rolegraph.models import ChatRequest, ChatResponse, FunctionModel, ToolCall
from rolegraph.traces import TraceStore


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def lookup(topic: str) -> str:
    """Look a topic up."""
    return f"{topic}: 42"


def build() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        math = create_react_agent(rg.langchain.RoleChatModel(role="math"), rg.langchain.tools([add]), name="math_expert")
        research = create_react_agent(rg.langchain.RoleChatModel(role="research"), rg.langchain.tools([lookup]),
                                      name="research_expert")
    return create_supervisor([math, research], model=rg.langchain.RoleChatModel(role="supervisor")).compile()


def _call(name: str, arguments: str) -> ChatResponse:
    return ChatResponse(tool_calls=[ToolCall(id=f"c-{name}", name=name, arguments=arguments)])


def supervisor(request: ChatRequest) -> Any:
    answers = [m for m in request.messages if m.role == "assistant" and m.content and not m.tool_calls]
    return [_call("transfer_to_math_expert", "{}"), _call("transfer_to_research_expert", "{}"),
            "5 and 42"][min(len(answers), 2)]


def expert(tool_name: str, arguments: str) -> Any:
    def reply(request: ChatRequest) -> Any:
        last = request.messages[-1]
        done = last.role == "tool" and not (last.content or "").startswith("Successfully transferred")
        return "done" if done else _call(tool_name, arguments)
    return reply


def models() -> dict[str, Any]:
    return {"supervisor": FunctionModel(supervisor), "math": FunctionModel(expert("add", '{"a": 2, "b": 3}')),
            "research": FunctionModel(expert("lookup", '{"topic": "x"}'))}


INPUT = {"messages": [{"role": "user", "content": "add 2 and 3, then look x up"}]}
STEPS = 5  # supervisor -> math -> supervisor -> research -> supervisor (each expert's loop inside its step)


async def raw_trial(runs: int, folder: Path, app: Any) -> float:
    """Seconds per step: LangGraph alone with the SQLite checkpointer (models through a Runtime, unrecorded)."""
    runtime = rg.Runtime.from_models(models())
    started = time.perf_counter()
    with runtime.activate():
        async with aiosqlite.connect(str(folder / "raw.sqlite")) as conn:
            for pragma in ("PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL"):
                await conn.execute(pragma)
            checkpointed = app.copy(update={"checkpointer": AsyncSqliteSaver(conn)})
            for i in range(runs):
                await checkpointed.ainvoke(INPUT, config={"configurable": {"thread_id": f"t{time.time_ns()}-{i}"}})
    return (time.perf_counter() - started) / (runs * STEPS)


async def wrapped_trial(runs: int, folder: Path, wrapped: Any) -> float:
    """Seconds per step: the same app wrapped, recorded and SQLite-checkpointed per run."""
    runtime = rg.Runtime.from_models(models(), traces=TraceStore(folder / "runs"))
    started = time.perf_counter()
    for _ in range(runs):
        await wrapped.run(INPUT, runtime=runtime)
    return (time.perf_counter() - started) / (runs * STEPS)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--replays", type=int, default=50)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="rolegraph-multiagent-"))
    app = build()
    wrapped = rg.langchain.app(app, name="bench_supervisor")
    await raw_trial(2, folder, app)  # warm both arms
    await wrapped_trial(2, folder, wrapped)
    raw_s: list[float] = []
    wrapped_s: list[float] = []
    for t in range(args.trials):
        for arm in ((0, 1) if t % 2 == 0 else (1, 0)):
            if arm == 0:
                raw_s.append(await raw_trial(args.runs, folder, app))
            else:
                wrapped_s.append(await wrapped_trial(args.runs, folder, wrapped))
    ratios = [w / r for w, r in zip(wrapped_s, raw_s, strict=True)]

    store = TraceStore(folder / "runs")
    trace = store.load(store.list(limit=1)[0].run_id)
    started = time.perf_counter()
    for _ in range(args.replays):
        await replay_run(trace, graph=wrapped)
    replay_ms = (time.perf_counter() - started) * 1000 / args.replays

    table = Table(title=f"supervisor app on rolegraph ({STEPS} steps a run, {args.runs} runs x {args.trials} "
                        "alternating trials)")
    for col in ("measure", "median", "range"):
        table.add_column(col, justify="right")
    for label, values in (("unwrapped LangGraph + SQLite checkpointer, ms/step", raw_s),
                          ("wrapped (recorded + SQLite checkpoints), ms/step", wrapped_s)):
        ms = [x * 1000 for x in values]
        table.add_row(label, f"{statistics.median(ms):.2f}", f"{min(ms):.2f}-{max(ms):.2f}")
    table.add_row("ratio wrapped / unwrapped", f"{statistics.median(ratios):.2f}x", f"{min(ratios):.2f}-{max(ratios):.2f}")
    extra = [(w - r) * 1000 for w, r in zip(wrapped_s, raw_s, strict=True)]
    table.add_row("recording cost, ms/step", f"{statistics.median(extra):.2f}", f"{min(extra):.2f}-{max(extra):.2f}")
    table.add_row("offline replay of one run (7 calls), ms", f"{replay_ms:.1f}", "")
    Console(width=140).print(table)


if __name__ == "__main__":
    asyncio.run(main())
