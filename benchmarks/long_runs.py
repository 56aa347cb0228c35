"""What a run costs by its length: a one-node loop whose state appends one 500-character answer per
turn (an `operator.add` list) from an instant model (FunctionModel: only rolegraph's own costs count),
run for 50 to 1,000 turns, beside raw LangGraph with its SQLite saver on the same graph.

Arms, in alternating order within each trial (so drift hits both):

- raw LangGraph + SQLite: the same nodes calling the model directly, LangGraph's AsyncSqliteSaver
  with the settings a recorded run uses (same pragmas, same durability);
- rolegraph: the graph run recorded and checkpointed (what `Graph.run` does).

Per length: bytes of events.jsonl (and of the blobs beside it) and of checkpoints.sqlite, bytes per
step, ms per step (median over trials, range in brackets) and the ratio of the two arms paired by
trial; for the recorded run: replay calls per second (`replay_run`, which records its own trace, as
`rolegraph replay` does), the time to load its trace and to render its page (`render_view`).

    .venv/bin/python benchmarks/long_runs.py [--turns 50,100,200,400,1000] [--trials 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import operator
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import aiosqlite
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START
from langgraph.graph import StateGraph as LGStateGraph
from pydantic import BaseModel, Field
from rich.console import Console
from rich.table import Table

import rolegraph as rg
from rolegraph import Runtime
from rolegraph.graphs import CHECKPOINTS, DURABILITY, SQLITE_PRAGMAS, replay_run
from rolegraph.models import ChatRequest, FunctionModel, Message
from rolegraph.traces import TraceStore, render_view

ANSWER = 500
"""Characters per answer."""


class Talk(BaseModel):
    turns: int = 50


class Said(BaseModel):
    turns: int = 0
    answers: Annotated[list[str], operator.add] = Field(default_factory=list)


class Talked(rg.RunResult):
    answers: list[str]


def instant(request: ChatRequest) -> str:
    turn = (request.messages[-1].content or "").rsplit(" ", 1)[-1]
    return f"answer {turn} ".ljust(ANSWER, "x")


MODEL = FunctionModel(instant)


def request_for(state: Said) -> ChatRequest:
    return ChatRequest(messages=(Message(role="system", content="You speak once a turn."),
                                 Message(role="user", content=f"Turn {len(state.answers)}")), max_tokens=160, seed=0)


def route(state: Said) -> str:
    return END if len(state.answers) >= state.turns else "speak"


async def raw_speak(state: Said) -> dict[str, Any]:
    return {"answers": [(await MODEL.chat(request_for(state))).text]}


def _raw_graph() -> Any:
    g = LGStateGraph(Said)
    g.add_node("speak", raw_speak)
    g.add_edge(START, "speak")
    g.add_conditional_edges("speak", route, ["speak", END])
    return g.compile()


RAW = _raw_graph()


async def speak(state: Said, runtime: Runtime) -> dict[str, Any]:
    return {"answers": [(await runtime.model("speaker").chat(request_for(state))).text]}


@rg.graph(input=Talk, state=Said, result=Talked, roles=["speaker"], name="long_runs_loop",
          recursion_limit=lambda input, options: input.turns + 10)
def loop(g: rg.StateGraph) -> None:
    g.add_node(speak)
    g.add_edge(rg.START, "speak")
    g.add_conditional_edges("speak", route, ["speak", rg.END])


# what a recorded run's checkpointer uses, read from the code that applies it
PRAGMAS: tuple[str, ...] = SQLITE_PRAGMAS


async def raw_sqlite(where: Path, turns: int) -> dict[str, float]:
    db = where / "raw.sqlite"
    async with aiosqlite.connect(str(db)) as conn:
        for pragma in PRAGMAS:
            await conn.execute(pragma)
        g = RAW.copy(update={"checkpointer": AsyncSqliteSaver(conn)})
        kwargs = {"durability": DURABILITY}
        t = time.perf_counter()
        out = await g.ainvoke(Said(turns=turns), config={"recursion_limit": turns + 10,
                                                        "configurable": {"thread_id": "raw"}}, **kwargs)
        ms = (time.perf_counter() - t) / turns * 1000
    assert len(out["answers"]) == turns
    return {"ms": ms, "checkpoints": _size(db), "events": 0, "blobs": 0}


async def rolegraph_run(where: Path, turns: int) -> dict[str, float]:
    store = TraceStore(where / "runs")
    rt = Runtime.from_models({"default": MODEL}, traces=store)
    t = time.perf_counter()
    result = await loop.run(Talk(turns=turns), runtime=rt)
    ms = (time.perf_counter() - t) / turns * 1000
    assert result.status == "ok" and len(result.answers) == turns, result
    run = store.root / (result.run_id or "")
    found = {"ms": ms, "events": _size(run / "events.jsonl"), "blobs": _size(run / "blobs"),
             "checkpoints": _size(run / CHECKPOINTS)}
    t = time.perf_counter()
    trace = store.load(result.run_id or "")
    found["load_ms"] = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    page = render_view(trace)
    found["render_ms"] = (time.perf_counter() - t) * 1000
    found["page"] = len(page.encode())
    t = time.perf_counter()
    replayed = await replay_run(trace, store=TraceStore(where / "replays"), graph=loop)
    found["replay_calls_s"] = turns / (time.perf_counter() - t)
    assert replayed.answers == result.answers
    return found


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    # a WAL left beside the file (none once it is closed) is part of what the run wrote
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


ARMS: dict[str, Callable[[Path, int], Awaitable[dict[str, float]]]] = {
    "raw LangGraph + SQLite": raw_sqlite,
    "rolegraph": rolegraph_run,
}


def span(values: list[float], fmt: str = ".2f") -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def mb(n: float) -> str:
    return f"{n / 1e6:.2f} MB"


async def main(lengths: list[int], trials: int, where: str | None) -> None:
    names = list(ARMS)
    load = os.getloadavg()
    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        counter = 0
        for name in names:  # warm both arms (imports, compiled graphs)
            counter += 1
            (Path(tmp) / str(counter)).mkdir()
            await ARMS[name](Path(tmp) / str(counter), 5)
        for turns in lengths:
            got: dict[str, list[dict[str, float]]] = {n: [] for n in names}
            for trial in range(trials):
                for name in names if trial % 2 == 0 else reversed(names):
                    counter += 1
                    run_dir = Path(tmp) / str(counter)
                    run_dir.mkdir()
                    got[name].append(await ARMS[name](run_dir, turns))
            raw, ours = got["raw LangGraph + SQLite"][-1], got["rolegraph"][-1]
            ratio = [a["ms"] / b["ms"] for a, b in zip(got["rolegraph"], got["raw LangGraph + SQLite"], strict=True)]
            stored = ours["events"] + ours["blobs"] + ours["checkpoints"]
            rows.append((str(turns), f"{turns * ANSWER / 1000:,.0f} KB", mb(raw["checkpoints"]),
                         f"{raw['checkpoints'] / turns:,.0f}", span([r["ms"] for r in got["raw LangGraph + SQLite"]]),
                         mb(ours["events"] + ours["blobs"]), mb(ours["checkpoints"]), mb(stored), f"{stored / turns:,.0f}",
                         span([r["ms"] for r in got["rolegraph"]]), span(ratio),
                         f"{statistics.median(r['replay_calls_s'] for r in got['rolegraph']):,.0f}",
                         f"{statistics.median(r['load_ms'] for r in got['rolegraph']):,.0f}",
                         f"{statistics.median(r['render_ms'] for r in got['rolegraph']):,.0f} ({ours['page'] / 1e6:.1f} MB)"))
            print(f"{turns} turns done", flush=True)
    table = Table(title=f"a one-node loop appending a {ANSWER}-character answer per turn, instant model; ms: median "
                        f"(range) of {trials} alternating trials; load before {load[0]:.2f} {load[1]:.2f}",
                  title_justify="left")
    for col in ("turns", "content", "raw: checkpoints", "raw: bytes/step", "raw: ms/step", "rg: events (+blobs)",
                "rg: checkpoints", "rg: events + checkpoints", "rg: bytes/step", "rg: ms/step",
                "rg/raw ms, paired", "replay calls/s", "load trace ms", "render page ms"):
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(*row)
    Console(width=220).print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", default="50,100,200,400,1000", help="comma-separated run lengths")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where the runs are written (default: the temp dir)")
    args = parser.parse_args()
    asyncio.run(main([int(t) for t in args.turns.split(",")], args.trials, args.dir))
