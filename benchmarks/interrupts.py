"""What human input costs, with an instant model, every arm measured in alternating trials in this one
run (so drift hits all of them):

- the stream: a run reads LangGraph's "updates" beside "values" (where the questions of `interrupt()`
  come from): LangGraph stepping a four-node graph with both modes against "values" alone, per step;
- a question: a recorded four-node run that asks once, to its pause, and its resume with the answer
  (a new process's work: the trace read back, the checkpoint reopened), against the same run asking
  nothing; and the offline replay of the answered run (its answer given from the trace, on an
  in-memory checkpointer) against the replay of the run that asked nothing.

Values are the median over trials, with the range (min-max) over trials in brackets.

    .venv/bin/python benchmarks/interrupts.py [--trials 7] [--runs 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

import rolegraph as rg
from rolegraph import Runtime
from rolegraph.graphs import replay_run
from rolegraph.models import ChatRequest, FunctionModel, Message
from rolegraph.traces import TraceStore


class Ask(BaseModel):
    topic: str


class State(TypedDict, total=False):
    topic: str
    plan: str
    answer: str
    final: str


async def plan(state: State, runtime: Runtime) -> dict[str, Any]:
    reply = await runtime.model("planner").chat(ChatRequest(messages=(Message(role="user", content=state["topic"]),)))
    return {"plan": reply.text}


async def ask(state: State) -> dict[str, Any]:
    return {"answer": str(interrupt(f"approve {state['plan']}?"))}


async def tell(state: State) -> dict[str, Any]:
    return {"answer": "yes"}


async def write(state: State, runtime: Runtime) -> dict[str, Any]:
    reply = await runtime.model("planner").chat(ChatRequest(messages=(Message(role="user", content=state["answer"]),)))
    return {"final": reply.text}


async def done(state: State) -> dict[str, Any]:
    return {}


def shape(g: rg.StateGraph, middle: Any) -> None:
    g.add_node(plan)
    g.add_node("middle", middle)
    g.add_node(write)
    g.add_node(done)
    g.add_edge(START, "plan")
    g.add_edge("plan", "middle")
    g.add_edge("middle", "write")
    g.add_edge("write", "done")
    g.add_edge("done", END)


@rg.graph(input=Ask, state=State, roles=["planner"])
def asking(g: rg.StateGraph) -> None:
    shape(g, ask)


@rg.graph(input=Ask, state=State, roles=["planner"])
def silent(g: rg.StateGraph) -> None:
    shape(g, tell)


async def bare_steps(modes: list[str], runs: int) -> float:
    """Seconds per step of LangGraph alone streaming four instant nodes with `modes`."""
    async def node(state: State) -> dict[str, Any]:
        return {"answer": "x"}

    g = StateGraph(State)
    for name in "abcd":
        g.add_node(name, node)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.add_edge("c", "d")
    g.add_edge("d", END)
    compiled = g.compile()
    started = time.perf_counter()
    for _ in range(runs * 10):
        async for _part in compiled.astream({"topic": "t"}, stream_mode=modes):
            pass
    return (time.perf_counter() - started) / (runs * 10 * 4)


def runtime(root: Path) -> Runtime:
    return Runtime.from_models({"default": FunctionModel(lambda r: f"ok {r.messages[-1].content}")},
                               traces=TraceStore(root))


async def timed(fn: Callable[[], Awaitable[Any]], runs: int) -> tuple[float, list[Any]]:
    started = time.perf_counter()
    out = [await fn() for _ in range(runs)]
    return (time.perf_counter() - started) / runs, out


async def trial(root: Path, runs: int) -> dict[str, float]:
    rt = runtime(root)
    store = TraceStore(root)
    out: dict[str, float] = {}
    out["values"] = await bare_steps(["values"], runs)
    out["values+updates"] = await bare_steps(["values", "updates"], runs)
    out["run, no question"], plain = await timed(lambda: silent.run(Ask(topic="t"), runtime=rt), runs)
    out["run to its question"], paused = await timed(lambda: asking.run(Ask(topic="t"), runtime=rt), runs)
    waiting = iter(paused)
    out["resume with the answer"], answered = await timed(
        lambda: asking.resume(next(waiting).run_id, "yes", runtime=rt), runs)
    assert all(r.status == "ok" and r.state["final"] == "ok yes" for r in answered)
    plain_traces = iter([store.load(r.run_id) for r in plain])
    asked_traces = iter([store.load(r.run_id) for r in answered])
    out["replay, no question"], _ = await timed(lambda: replay_run(next(plain_traces), store=store), runs)
    out["replay, answer from the trace"], again = await timed(lambda: replay_run(next(asked_traces), store=store), runs)
    assert all(r.status == "ok" and r.state["final"] == "ok yes" for r in again)
    await rt.aclose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=7)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    results: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.trials):
            results.append(asyncio.run(trial(Path(tmp) / f"t{i}", args.runs)))

    def cell(key: str, scale: float, unit: str) -> str:
        values = [r[key] * scale for r in results]
        return f"{statistics.median(values):.2f} {unit} [{min(values):.2f}-{max(values):.2f}]"

    table = Table(title=f"human input: {args.trials} trials x {args.runs} runs, instant model", title_justify="left")
    table.add_column("arm")
    table.add_column("median [range]", justify="right")
    table.add_column("against", justify="right")
    ratio = [r["values+updates"] / r["values"] for r in results]
    table.add_row("LangGraph step, values", cell("values", 1e6, "µs"), "")
    table.add_row("LangGraph step, values + updates", cell("values+updates", 1e6, "µs"),
                  f"{statistics.median(ratio):.2f}x")
    for key, base in (("run, no question", None), ("run to its question", "run, no question"),
                      ("resume with the answer", "run, no question"), ("replay, no question", None),
                      ("replay, answer from the trace", "replay, no question")):
        against = f"{statistics.median([r[key] / r[base] for r in results]):.2f}x" if base else ""
        table.add_row(key, cell(key, 1e3, "ms"), against)
    Console().print(table)


if __name__ == "__main__":
    main()
