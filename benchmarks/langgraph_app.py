"""A plain LangGraph app on rolegraph (`rolegraph.langchain.app`): per-step cost of the wrapped app
(every step recorded, SQLite checkpoints) against the same compiled app run by LangGraph itself with
the same SQLite checkpointer, in alternating trials; and the replay speed of the ReAct agent (model
and tool calls answered from the trace, nothing written).

Both arms of the overhead run use LangChain's own fake chat model, so they run identical nodes; the
replay uses a prebuilt ReAct agent with the rolegraph RoleChatModel and two recorded tools.

    .venv/bin/python benchmarks/langgraph_app.py [--trials 5] [--runs 30] [--replays 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Annotated, Any, TypedDict

import aiosqlite
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode
from rich.console import Console
from rich.table import Table

import rolegraph as rg
from rolegraph.graphs import replay_run
from rolegraph.models import ChatResponse, ScriptedModel, ToolCall
from rolegraph.traces import TraceStore


@tool
def double(x: int) -> int:
    """Double a number."""
    return 2 * x


class State(TypedDict):
    messages: Annotated[list, add_messages]


ROUNDS = 3  # model -> tool, three times, then an answer: 7 node steps a run


def fake() -> FakeMessagesListChatModel:
    calls = [AIMessage(content="", tool_calls=[{"name": "double", "args": {"x": i}, "id": f"c{i}"}])
             for i in range(ROUNDS)]
    return FakeMessagesListChatModel(responses=[*calls, AIMessage(content="done")])


def build() -> Any:
    model = fake()

    async def agent(state: State) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    def route(state: State) -> str:
        return "tools" if state["messages"][-1].tool_calls else END

    g = StateGraph(State)
    g.add_node("agent", agent)
    g.add_node("tools", ToolNode([double]))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", route, ["tools", END])
    g.add_edge("tools", "agent")
    return g.compile()


INPUT = {"messages": [{"role": "user", "content": "double 0, 1 and 2"}]}
STEPS = 2 * ROUNDS + 1


async def raw_trial(runs: int, folder: Path) -> float:
    """Seconds per step, LangGraph alone with the SQLite checkpointer."""
    app = build()
    started = time.perf_counter()
    async with aiosqlite.connect(str(folder / "raw.sqlite")) as conn:
        saver = AsyncSqliteSaver(conn)
        checkpointed = app.copy(update={"checkpointer": saver})
        for i in range(runs):
            await checkpointed.ainvoke(INPUT, config={"configurable": {"thread_id": f"t{time.time_ns()}-{i}"}})
    return (time.perf_counter() - started) / (runs * STEPS)


async def wrapped_trial(runs: int, folder: Path, wrapped: Any) -> float:
    """Seconds per step, the same app wrapped: recorded, SQLite-checkpointed per run."""
    store = TraceStore(folder / "runs")
    runtime = rg.Runtime.from_models({}, traces=store)
    started = time.perf_counter()
    for _ in range(runs):
        await wrapped.run(INPUT, runtime=runtime)
    return (time.perf_counter() - started) / (runs * STEPS)


async def replay_speed(replays: int, folder: Path) -> tuple[float, int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langgraph.prebuilt import create_react_agent

        agent = rg.langchain.app(create_react_agent(rg.langchain.RoleChatModel(role="agent"),
                                                    rg.langchain.tools([double])), name="bench_react")
    script: list[Any] = [ChatResponse(tool_calls=[ToolCall(id=f"c{i}", name="double", arguments=f'{{"x": {i}}}')])
                         for i in range(ROUNDS)] + ["done"]
    store = TraceStore(folder / "replay-runs")
    async with rg.Runtime.from_models({"agent": ScriptedModel(script)}, traces=store) as rt:
        result = await agent.run(INPUT, runtime=rt)
    trace = store.load(result.run_id or "")
    started = time.perf_counter()
    for _ in range(replays):
        await replay_run(trace, graph=agent)
    elapsed = time.perf_counter() - started
    return replays * (ROUNDS + 1) / elapsed, replays * ROUNDS


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--replays", type=int, default=200)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="rolegraph-lgapp-"))
    # the fake model cycles through its answers, so one build serves every run of an arm
    raw_s: list[float] = []
    wrapped_s: list[float] = []
    await raw_trial(3, folder)  # warm both arms
    for t in range(args.trials):
        for arm in ((0, 1) if t % 2 == 0 else (1, 0)):
            if arm == 0:
                raw_s.append(await raw_trial(args.runs, folder))
            else:
                wrapped = rg.langchain.app(build(), name="bench_app", roles=[])
                wrapped_s.append(await wrapped_trial(args.runs, folder, wrapped))
    ratios = [w / r for w, r in zip(wrapped_s, raw_s, strict=True)]
    calls_per_s, _ = await replay_speed(args.replays, folder)

    table = Table(title=f"plain LangGraph app on rolegraph ({STEPS} steps a run, {args.runs} runs x {args.trials} "
                        "alternating trials)")
    for col in ("measure", "median", "range"):
        table.add_column(col, justify="right")
    ms = [x * 1000 for x in raw_s]
    table.add_row("raw LangGraph + SQLite checkpointer, ms/step", f"{statistics.median(ms):.2f}",
                  f"{min(ms):.2f}-{max(ms):.2f}")
    ms = [x * 1000 for x in wrapped_s]
    table.add_row("wrapped (recorded + SQLite checkpoints), ms/step", f"{statistics.median(ms):.2f}",
                  f"{min(ms):.2f}-{max(ms):.2f}")
    table.add_row("ratio wrapped / raw", f"{statistics.median(ratios):.2f}x", f"{min(ratios):.2f}-{max(ratios):.2f}")
    table.add_row("ReAct replay, model calls/s (nothing written)", f"{calls_per_s:.0f}", "")
    Console(width=140).print(table)


if __name__ == "__main__":
    asyncio.run(main())
