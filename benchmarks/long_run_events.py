"""What a long run's log weighs: a one-node loop whose state appends one 500-character answer per turn
(an `operator.add` list, no model), run for 50 to 400 turns, its steps' states written whole at every
step (`snapshot_every=1`: as traces were before, plus each digest) and as changes (the default). Prints events.jsonl
bytes (and per step), the blobs beside it, checkpoints.sqlite, ms per step, and the time to load the
trace (which rebuilds and checks every step's state).

    .venv/bin/python benchmarks/long_run_events.py [--turns 50 100 200 400]
"""

from __future__ import annotations

import argparse
import asyncio
import operator
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

import rolegraph as rg
from rolegraph import Runtime
from rolegraph.traces import NodeStarted, TraceStore


class Turns(BaseModel):
    turns: int


class State(TypedDict, total=False):
    turns: int
    answers: Annotated[list[str], operator.add]


async def speak(state: State) -> dict[str, Any]:
    n = len(state.get("answers", []))
    return {"answers": [f"answer {n:04d} " + "x" * 489]}


@rg.graph(input=Turns, state=State, name="long_loop", recursion_limit=lambda turns, options: turns.turns + 10,
          start=lambda turns: {"turns": turns.turns, "answers": []})
def long_loop(graph: rg.StateGraph) -> None:
    graph.add_node(speak)
    graph.add_edge(rg.START, "speak")
    graph.add_conditional_edges("speak", lambda s: rg.END if len(s["answers"]) >= s["turns"] else "speak",
                                ["speak", rg.END])


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else (
        path.stat().st_size if path.exists() else 0)


async def measure(root: Path, turns: int, every: int | None) -> tuple[int, int, int, float, float]:
    """A run of `turns` turns, each step's state written whole every `every` steps (None: the default)."""
    store = TraceStore(root / "runs") if every is None else TraceStore(root / "runs", snapshot_every=every)
    runtime = Runtime.from_models({}, traces=store)
    started = time.perf_counter()
    result = await long_loop.run(Turns(turns=turns), runtime=runtime)
    per_step = (time.perf_counter() - started) / turns * 1000
    run = root / "runs" / (result.run_id or "")
    started = time.perf_counter()
    trace = store.load(result.run_id or "")
    load_s = time.perf_counter() - started
    last = trace.of_kind(NodeStarted)[-1]
    assert len(last.state["answers"]) == turns - 1, "the last step's state was not reconstructed"
    return (size(run / "events.jsonl"), size(run / "blobs"), size(run / "checkpoints.sqlite"), per_step, load_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, nargs="+", default=[50, 100, 200, 400])
    args = parser.parse_args()
    table = Table(title="a one-node loop appending a 500-character answer per turn (no model)")
    for col in ("turns", "content", "states", "events.jsonl", "bytes/step (events)", "blobs", "checkpoints.sqlite",
                "ms/step", "load trace (ms)"):
        table.add_column(col, justify="right")
    for turns in args.turns:
        for every, how in ((1, "whole"), (None, "changes")):
            with tempfile.TemporaryDirectory() as tmp:
                events, blobs, checkpoints, ms, load_s = asyncio.run(measure(Path(tmp), turns, every))
            table.add_row(str(turns), f"{turns * 500 / 1000:,.0f} KB", how, f"{events / 1e6:.2f} MB",
                          f"{events / turns:,.0f}", f"{blobs / 1e6:.2f} MB", f"{checkpoints / 1e6:.2f} MB", f"{ms:.2f}",
                          f"{load_s * 1000:.0f}")
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
