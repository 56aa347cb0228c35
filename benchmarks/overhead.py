"""What rolegraph adds per node step, next to its peers, on a RefineBot-shaped loop: four roles, each
one model call per step, three iterations (12 steps a run; `--iterations` sets another count), an instant
model (no server, no sleeps).

Arms, run in alternating order within each trial (so drift hits all of them):

- plain asyncio: the same four calls in a for loop, the state a pydantic model;
- raw LangGraph, no checkpointer;
- raw LangGraph + SQLite, as LangGraph ships it (AsyncSqliteSaver on a fresh file, default durability);
- raw LangGraph + SQLite with the settings rolegraph uses (same pragmas, same durability):
  the reference for the 1.10x goal, since it is the same checkpointer;
- rolegraph, recorded (every step and model call written to the trace), no checkpointer;
- rolegraph, recorded + checkpointed (what `Graph.run` does).

Every arm opens what it writes per run (a fresh SQLite file, a fresh trace directory), as a run does.
Reported per node step: the median over trials of wall time and of CPU time (process_time, less
disturbed by other load on the machine), with the range over trials; and each comparison as the
median of its per-trial ratios (the two arms of a ratio ran seconds apart). Many short trials: a burst of
load elsewhere then lands in a few trials of every arm, and the median steps over it.

A run's fixed costs (its trace directory and log, its index rows, opening its checkpoint file) are
spread over its steps: `--iterations 12` shows the cost per step of a longer run, where they weigh
less, and `--dir` puts the runs on another disk (file creation costs differ from disk to disk).

    .venv/bin/python benchmarks/overhead.py [--trials 30] [--runs 4] [--iterations 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosqlite
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START
from langgraph.graph import StateGraph as LGStateGraph
from pydantic import BaseModel, Field
from rich.console import Console
from rich.table import Table

import rolegraph as rg
import rolegraph.graphs
from rolegraph import Runtime
from rolegraph.graphs import run_graph
from rolegraph.models import ChatRequest, FunctionModel, Message
from rolegraph.traces import TraceStore

ROLES = ("evaluator", "reflector", "rewriter", "checker")
ITERATIONS = 3


class LoopInput(BaseModel):
    question: str = "Which organelle makes ATP?"
    iterations: int = ITERATIONS


class LoopState(BaseModel):
    question: str = ""
    iteration: int = 0
    iterations: int = ITERATIONS
    notes: list[str] = Field(default_factory=list)


class Loop:
    input = LoopInput()
    """What every arm runs (main sets its iterations)."""


def start_state() -> LoopState:
    return LoopState(**Loop.input.model_dump())


def limit(inp: LoopInput | None = None) -> int:
    return len(ROLES) * (inp or Loop.input).iterations + 10


def instant(request: ChatRequest) -> str:
    return "The answer is (b)"


def request_for(role: str, state: LoopState) -> ChatRequest:
    return ChatRequest(messages=(Message(role="system", content=f"You are the {role}."),
                                 Message(role="user", content=f"{state.question} (round {state.iteration})")),
                       max_tokens=64, seed=0)


def update_for(role: str, state: LoopState, text: str) -> dict[str, Any]:
    update: dict[str, Any] = {"notes": [*state.notes, f"{role}: {text}"]}
    if role == ROLES[-1]:
        update["iteration"] = state.iteration + 1
    return update


def route(state: LoopState) -> str:
    return END if state.iteration >= state.iterations else "next"


def add_loop(g: Any, node_for: Callable[[str], Any]) -> None:
    for role in ROLES:
        g.add_node(role, node_for(role))
    g.add_edge(START, ROLES[0])
    for a, b in itertools.pairwise(ROLES):
        g.add_edge(a, b)
    g.add_conditional_edges(ROLES[-1], route, {END: END, "next": ROLES[0]})


# -- the arms ------------------------------------------------------------------------------

MODEL = FunctionModel(instant)


async def plain_asyncio(_: Path) -> None:
    state = start_state()
    while True:
        for role in ROLES:
            response = await MODEL.chat(request_for(role, state))
            state = state.model_copy(update=update_for(role, state, response.text))
        if route(state) == END:
            return


def raw_node(role: str) -> Callable[[LoopState], Awaitable[dict[str, Any]]]:
    async def node(state: LoopState) -> dict[str, Any]:
        response = await MODEL.chat(request_for(role, state))
        return update_for(role, state, response.text)
    return node


def _raw_graph() -> Any:
    g = LGStateGraph(LoopState)
    add_loop(g, raw_node)
    return g.compile()


RAW = _raw_graph()


async def raw_langgraph(_: Path) -> None:
    await RAW.ainvoke(start_state(), config={"recursion_limit": limit()})


async def raw_sqlite_default(db: Path) -> None:
    async with aiosqlite.connect(str(db)) as conn:
        g = RAW.copy(update={"checkpointer": AsyncSqliteSaver(conn)})
        await g.ainvoke(start_state(), config={"recursion_limit": limit(), "configurable": {"thread_id": db.stem}})


# rolegraph's own SQLite settings, read from the code that applies them (so the reference
# cannot drift from what a recorded run does)
PRAGMAS: tuple[str, ...] = getattr(rolegraph.graphs, "SQLITE_PRAGMAS", ("PRAGMA page_size = 1024",))
DURABILITY: Any = getattr(rolegraph.graphs, "DURABILITY", None)


async def raw_sqlite_same(db: Path) -> None:
    async with aiosqlite.connect(str(db)) as conn:
        for pragma in PRAGMAS:
            await conn.execute(pragma)
        g = RAW.copy(update={"checkpointer": AsyncSqliteSaver(conn)})
        kwargs = {"durability": DURABILITY} if DURABILITY is not None else {}
        await g.ainvoke(start_state(), config={"recursion_limit": limit(), "configurable": {"thread_id": db.stem}},
                        **kwargs)


def rg_node(role: str) -> Callable[[LoopState, Runtime], Awaitable[dict[str, Any]]]:
    async def node(state: LoopState, runtime: Runtime) -> dict[str, Any]:
        response = await runtime.model(role).chat(request_for(role, state))
        return update_for(role, state, response.text)
    node.__name__ = role
    return node


@rg.graph(input=LoopInput, state=LoopState, roles=ROLES, recursion_limit=lambda inp, options: limit(inp),
          name="overhead_loop")
def loop_graph(g: rg.StateGraph) -> None:
    add_loop(g, rg_node)


RUNTIMES: dict[Path, Runtime] = {}


def _runtime(root: Path) -> Runtime:
    if root not in RUNTIMES:
        RUNTIMES[root] = Runtime.from_models({"default": MODEL}, traces=TraceStore(root / "runs"))
    return RUNTIMES[root]


async def rolegraph_recorded(db: Path) -> None:
    rt = _runtime(db.parent)
    manifest = loop_graph.manifest(Loop.input, runtime=rt)
    await run_graph(loop_graph, manifest, rt, checkpoint=False)


async def rolegraph_checkpointed(db: Path) -> None:
    await loop_graph.run(Loop.input, runtime=_runtime(db.parent))


ARMS: dict[str, Callable[[Path], Awaitable[None]]] = {
    "plain asyncio": plain_asyncio,
    "raw LangGraph": raw_langgraph,
    "raw LangGraph + SQLite (LangGraph defaults)": raw_sqlite_default,
    "raw LangGraph + SQLite (rolegraph's settings)": raw_sqlite_same,
    "rolegraph recorded, no checkpointer": rolegraph_recorded,
    "rolegraph recorded + checkpoint": rolegraph_checkpointed,
}


def span(values: list[float], fmt: str = ".3f") -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


async def main(trials: int, runs: int, iterations: int, where: str | None) -> None:
    Loop.input = LoopInput(iterations=iterations)
    steps = len(ROLES) * iterations
    names = list(ARMS)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        root = Path(tmp)
        for name in names:  # warm every arm once (imports, compiled graphs, prompt caches)
            await ARMS[name](root / f"warm-{names.index(name)}.sqlite")
        counter = 0
        for trial in range(trials):
            order = names[trial % len(names):] + names[:trial % len(names)]  # rotate who goes first
            if trial % 2:
                order.reverse()
            for name in order:
                t, c = time.perf_counter(), time.process_time()
                for _ in range(runs):
                    counter += 1
                    await ARMS[name](root / f"r{counter}.sqlite")
                MODEL.requests.clear()
                wall[name].append((time.perf_counter() - t) / (runs * steps) * 1000)
                cpu[name].append((time.process_time() - c) / (runs * steps) * 1000)

    same = "raw LangGraph + SQLite (rolegraph's settings)"
    table = Table(title=f"per node step, {len(ROLES)} roles x {iterations} iterations ({steps} steps a run), instant "
                        f"model, runs written under {where or tempfile.gettempdir()}; median (range) of {trials} "
                        f"alternating trials x {runs} runs; load before {load[0]:.2f} {load[1]:.2f}",
                  title_justify="left")
    for col in ("arm", "wall ms/step", "CPU ms/step", "x reference, paired by trial: wall; CPU"):
        table.add_column(col, justify="left" if col == "arm" else "right")
    refs = {"rolegraph recorded, no checkpointer": "raw LangGraph", "rolegraph recorded + checkpoint": same,
            "raw LangGraph + SQLite (LangGraph defaults)": same}
    for name in names:
        ratio = ""
        if name in refs:
            ref = refs[name]  # each trial's ratio, its two arms run minutes apart at most: load cancels
            rw = [a / b for a, b in zip(wall[name], wall[ref], strict=True)]
            rc = [a / b for a, b in zip(cpu[name], cpu[ref], strict=True)]
            ratio = f"{span(rw, '.2f')}; {span(rc, '.2f')} vs {ref}"
        table.add_row(name, span(wall[name]), span(cpu[name]), ratio)
    console = Console(width=160)
    console.print(table)
    console.print(f"rolegraph's SQLite settings: {'; '.join(PRAGMAS)}; durability {DURABILITY or 'LangGraph default'}. "
                  "Goal: recorded + checkpoint <= 1.10x the same checkpointer.")
    if DURABILITY == "sync":
        console.print("Durability of a recorded run: each step's checkpoint is committed before the next step "
                      "starts, so a SIGKILL loses at most the step in flight (its finished model calls are "
                      "answered from the trace on resume); WAL with synchronous=NORMAL loses no commit to a "
                      "killed process, only to a power cut or an OS crash.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=ITERATIONS,
                        help="loop iterations a run (4 steps each); 3 is the issue's loop")
    parser.add_argument("--dir", default=None, help="where the runs are written (default: the system's temp dir)")
    args = parser.parse_args()
    asyncio.run(main(args.trials, args.runs, args.iterations, args.dir))
