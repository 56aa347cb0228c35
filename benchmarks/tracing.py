"""Tracing costs on the RefineBot graph with an instant model (no server, no sleeps), every arm
measured in alternating trials in this one run (so drift hits all of them):

- recording overhead: the same runs untraced and traced, both with the same SQLite checkpointer,
  per node step, as a ratio (goal: at most 1.25x);
- replay speed: model calls answered from a trace per second, for a replay that records its own
  trace (what `rolegraph replay` does; goal >= 1,500/s) and for one that writes nothing
  (goal >= 2,500/s), in wall time and in CPU time (process_time, less disturbed by other load);
- the floor: LangGraph's own stepping on the same shape, which no replay can beat, twice: four
  async nodes that return at once and leave the state as it is, and the same four nodes returning,
  step by step, the updates the recorded run's nodes returned (typed as the state's fields, built
  before timing), so that LangGraph carries the same growing state through the same steps;
- size: bytes per model-call event, not counting message text.

Values are the median over trials, with the range (min-max) over trials in brackets.

    .venv/bin/python benchmarks/tracing.py [--trials 7] [--runs 5] [--iters 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from rich.console import Console
from rich.table import Table

import rolegraph.graphs
from rolegraph import Runtime
from rolegraph.envs.mcq import MCQ
from rolegraph.graphs import refinebot, replay_run
from rolegraph.models import ChatRequest, FunctionModel
from rolegraph.traces import ModelCall, TraceStore

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

MCQ_A = MCQ(key="b1", question="Which organelle makes ATP in the cell shown?",
            choices=["Nucleus", "Mitochondrion", "Golgi", "Lysosome"], correct_index=1)
REWRITE = {"question_stem": "Which compartment in the image makes ATP?", "explanation": "x",
           "choices": ["Nucleus", "Mitochondrion", "Golgi", "Lysosome"], "correct_index": 1}


# what a recorded run's checkpointer uses (read from the code that applies it; older code: page size only)
PRAGMAS: tuple[str, ...] = getattr(rolegraph.graphs, "SQLITE_PRAGMAS", ("PRAGMA page_size = 1024",))
DURABILITY: Any = getattr(rolegraph.graphs, "DURABILITY", None)


def instant(request: ChatRequest) -> Any:
    schema = str(request.response_schema or "")
    if "question_stem" in schema:
        return REWRITE
    if "is_equivalent" in schema:
        return {"is_equivalent": True, "explanation": "same"}
    return "The answer is (b)"


async def untraced_run(options: refinebot.RefineBotOptions, db: Path) -> int:
    """The same graph with the same checkpointer (settings and durability), but no trace store."""
    rt = Runtime.from_models({"default": FunctionModel(instant)})
    graph = refinebot.refinebot
    manifest = graph.manifest(MCQ_A, runtime=rt, options=options)
    plan = graph.plan(manifest)
    initial, limit = plan.initial, plan.recursion_limit
    async with aiosqlite.connect(str(db)) as conn:
        for pragma in PRAGMAS:  # the settings a recorded run uses
            await conn.execute(pragma)
        saver = AsyncSqliteSaver(conn)
        g = graph.compile(options).copy(update={"checkpointer": saver})
        raw = await g.ainvoke(initial, config={"recursion_limit": limit, "configurable": {"thread_id": db.stem}},
                              context=rt, **({"durability": DURABILITY} if DURABILITY else {}))
    return 4 * raw["iteration"] + 1


async def traced_run(options: refinebot.RefineBotOptions, store: TraceStore) -> str:
    rt = Runtime.from_models({"default": FunctionModel(instant)}, traces=store)
    result = await refinebot.run(MCQ_A, runtime=rt, options=options)
    return result.run_id or ""


class FloorState(refinebot.RefineState):
    steps: int = 0


def floor_graph(steps: int) -> Any:
    """LangGraph alone on RefineBot's shape and state type: four async nodes that return at once."""

    def node(name: str) -> Any:
        async def fn(state: FloorState) -> dict[str, Any]:
            return {"steps": state.steps + 1}
        fn.__name__ = name
        return fn

    async def route(state: FloorState) -> str:
        return END if state.steps >= steps else "next"

    return refine_shape(FloorState, node, route)


def refine_shape(state: type, node: Callable[[str], Any], route: Callable[[Any], Any]) -> Any:
    """RefineBot's shape in plain LangGraph: evaluate -> reflect -> rewrite -> check, looped."""
    g = StateGraph(state)
    for name in ("evaluate", "reflect", "rewrite", "check"):
        g.add_node(name, node(name))
    g.add_edge(START, "evaluate")
    g.add_conditional_edges("evaluate", route, {END: END, "next": "reflect"})
    g.add_edge("reflect", "rewrite")
    g.add_edge("rewrite", "check")
    g.add_conditional_edges("check", route, {END: END, "next": "evaluate"})
    return g.compile()


def trajectory_graph(trace: Any) -> tuple[Any, Callable[[], None]]:
    """LangGraph alone on RefineBot's shape and state, each node returning the update the recorded
    run's node returned at that step (validated into the state's field types before timing).
    Returns the graph and a rewind for the next run."""
    from pydantic import TypeAdapter

    from rolegraph.traces import NodeFinished

    fields = refinebot.RefineState.model_fields
    adapters = {name: TypeAdapter(f.annotation) for name, f in fields.items()}
    updates = [{k: adapters[k].validate_python(v) for k, v in (e.delta or {}).items()}
               for e in sorted(trace.of_kind(NodeFinished), key=lambda e: e.step)]
    at = [0]

    def node(name: str) -> Any:
        async def fn(state: refinebot.RefineState) -> dict[str, Any]:
            update = updates[at[0]]
            at[0] += 1
            return update
        fn.__name__ = name
        return fn

    def route(state: refinebot.RefineState) -> str:
        return END if state.exit_code is not None else "next"

    def rewind() -> None:
        at[0] = 0
    return refine_shape(refinebot.RefineState, node, route), rewind


def span(values: list[float], fmt: str = ",.0f") -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


async def main(trials: int, runs: int, iters: int) -> None:
    options = refinebot.RefineBotOptions(max_iters=iters)
    steps_per_run = 4 * (iters - 1) + 1
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = TraceStore(root / "runs")
        await untraced_run(options, root / "warm.sqlite")
        run_id = await traced_run(options, store)
        trace = store.load(run_id)
        calls = trace.of_kind(ModelCall)
        n_calls = len(calls)
        floor = floor_graph(steps_per_run)
        trajectory, rewind = trajectory_graph(trace)
        mcq = refinebot.RefineState(original=MCQ_A, current=MCQ_A)
        counter = 0

        async def untraced() -> None:
            nonlocal counter
            counter += 1
            await untraced_run(options, root / f"u{counter}.sqlite")

        async def traced() -> None:
            await traced_run(options, store)

        async def replay_recorded() -> None:
            await replay_run(trace, store=store)

        async def replay_bare() -> None:
            await replay_run(trace, store=None)

        async def langgraph_floor() -> None:
            await floor.ainvoke(FloorState(**dict(mcq)), config={"recursion_limit": 10 * steps_per_run})

        async def langgraph_trajectory() -> None:
            rewind()
            final = await trajectory.ainvoke(mcq, config={"recursion_limit": 10 * steps_per_run})
            assert final["exit_code"] is not None and final["iteration"] == trace.finished.output["iterations"]

        arms: dict[str, Callable[[], Awaitable[None]]] = {
            "untraced": untraced, "traced": traced, "replay_recorded": replay_recorded,
            "replay_bare": replay_bare, "floor": langgraph_floor, "trajectory": langgraph_trajectory}
        for arm in arms.values():
            await arm()
        wall: dict[str, list[float]] = {k: [] for k in arms}
        cpu: dict[str, list[float]] = {k: [] for k in arms}
        names = list(arms)
        for trial in range(trials):
            order = names[trial % len(names):] + names[:trial % len(names)]
            if trial % 2:
                order.reverse()
            for name in order:
                t, c = time.perf_counter(), time.process_time()
                for _ in range(runs):
                    await arms[name]()
                wall[name].append((time.perf_counter() - t) / runs)
                cpu[name].append((time.process_time() - c) / runs)

        lines = (trace.dir / "events.jsonl").read_text().splitlines()
        call_lines = [ln for ln in lines if '"kind":"model_call"' in ln]
        text = [sum(len(m.content or "") for m in c.request.messages) + len(c.response.text if c.response else "")
                for c in calls]
        overhead = [len(ln.encode()) - t for ln, t in zip(call_lines, text, strict=True)]

    def per_step_ms(xs: list[float]) -> list[float]:
        return [x / steps_per_run * 1000 for x in xs]

    def per_call_ms(xs: list[float]) -> list[float]:
        return [x / n_calls * 1000 for x in xs]

    def rate(xs: list[float]) -> list[float]:
        return [n_calls / x for x in xs]

    console = Console(width=150)
    table = Table(title=f"tracing on RefineBot, instant model: {steps_per_run} steps and {n_calls} model calls a run; "
                        f"median (range) of {trials} alternating trials x {runs} runs; load before "
                        f"{load[0]:.2f} {load[1]:.2f}", title_justify="left")
    for col in ("measure", "wall", "CPU", "goal"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    table.add_row("per node step, untraced run (same SQLite checkpointer), ms", span(per_step_ms(wall["untraced"]), ".3f"),
                  span(per_step_ms(cpu["untraced"]), ".3f"), "")
    table.add_row("per node step, traced run, ms", span(per_step_ms(wall["traced"]), ".3f"),
                  span(per_step_ms(cpu["traced"]), ".3f"), "")
    ratio_w = statistics.median(wall["traced"]) / statistics.median(wall["untraced"])
    ratio_c = statistics.median(cpu["traced"]) / statistics.median(cpu["untraced"])
    table.add_row("recording overhead (traced / untraced)", f"{ratio_w:.2f}x", f"{ratio_c:.2f}x", "<= 1.25x")
    table.add_row("replay recording a new trace, calls/s", span(rate(wall["replay_recorded"])),
                  span(rate(cpu["replay_recorded"])), ">= 1,500/s")
    table.add_row("  ms per replayed call", span(per_call_ms(wall["replay_recorded"]), ".3f"),
                  span(per_call_ms(cpu["replay_recorded"]), ".3f"), "")
    table.add_row("replay, nothing written, calls/s", span(rate(wall["replay_bare"])), span(rate(cpu["replay_bare"])),
                  ">= 2,500/s")
    table.add_row("  ms per replayed call", span(per_call_ms(wall["replay_bare"]), ".3f"),
                  span(per_call_ms(cpu["replay_bare"]), ".3f"), "")
    table.add_row("floor: LangGraph stepping alone, same shape and state, steps/s", span(rate(wall["floor"])),
                  span(rate(cpu["floor"])), "")
    table.add_row("  ms per step", span(per_call_ms(wall["floor"]), ".3f"), span(per_call_ms(cpu["floor"]), ".3f"), "")
    table.add_row("floor: LangGraph stepping alone, the recorded run's updates, steps/s", span(rate(wall["trajectory"])),
                  span(rate(cpu["trajectory"])), "")
    table.add_row("  ms per step", span(per_call_ms(wall["trajectory"]), ".3f"),
                  span(per_call_ms(cpu["trajectory"]), ".3f"), "")
    for arm, label in (("replay_bare", "nothing written"), ("replay_recorded", "recording")):
        above = [(r - f) / n_calls * 1000 for r, f in zip(cpu[arm], cpu["trajectory"], strict=True)]
        table.add_row(f"  replay ({label}) above that floor, CPU ms per call", span(above, ".3f"), "", "")
    table.add_row("model-call event, bytes without message text",
                  f"{statistics.median(overhead):,.0f} (median), {max(overhead):,} (max)", "", "")
    console.print(table)
    console.print("The floor is LangGraph's own cost per step on this graph's shape and state; a replay also "
                  "renders each prompt, checks each request's fingerprint and runs the graph's own code, so "
                  "it cannot answer calls faster than the floor's steps/s.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=7)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--iters", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.trials, args.runs, args.iters))
