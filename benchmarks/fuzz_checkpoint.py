"""Fuzzed model answers through graph runs with checkpoints: every run must end with its result or
AgentOutputError (the agent's typed error after its retries), and an accepted answer must come back
from the checkpoint database exactly as the model gave it.

Each run is one agent call whose typed output (an int, a float, any JSON value and a string) is kept
in the graph's state, so LangGraph's checkpointer serializes it. Answers are drawn (seeded) from:
integers beyond 64 bits, NaN and Infinity as JSON literals and as strings, JSON nested up to 200 deep,
integers over Python's 4,300-digit limit, odd strings (lone surrogates, control characters, escapes)
and random text. The table counts, per kind of answer: runs, accepted, refused with AgentOutputError,
uncaught errors (anything else: the number that must be 0) and checkpoint mismatches.

    .venv/bin/python benchmarks/fuzz_checkpoint.py [--runs 2000] [--seed 0] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import aiosqlite
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

import rolegraph as rg
from rolegraph import Agent, AgentOutputError, Runtime
from rolegraph.graphs import CHECKPOINTS, DeltaSqliteSaver, RedactingSerde, state_types
from rolegraph.models import FunctionModel
from rolegraph.prompts import PromptLibrary
from rolegraph.traces import Redactor, TraceStore


class Out(BaseModel):
    n: int = 0
    x: float = 0.0
    answer: Any = None
    note: str = ""


fuzzed = Agent(name="fuzzed", prompt="fuzzed/ask", output=Out, max_attempts=2)


class Question(BaseModel):
    q: str


class State(BaseModel):
    q: str
    out: Out | None = None


async def ask(state: State, runtime: rg.Runtime) -> dict[str, Any]:
    return {"out": await fuzzed.run(runtime, q=state.q)}


@rg.graph(input=Question, state=State, name="fuzz_checkpoint")
def fuzz_graph(g: rg.StateGraph) -> None:
    g.add_node(ask)
    g.add_edge(rg.START, "ask")
    g.add_edge("ask", rg.END)


def _big(rng: random.Random) -> str:
    n = rng.randrange(2**63, 2 ** rng.choice([64, 65, 100, 300, 3000]))
    return str(-n if rng.random() < 0.3 else n)


def _odd(rng: random.Random) -> str:
    pool = ["\ud83d", "\udc00", "\x00", "\x1f", "\u2028", "\\", '"', "é", "\U0001f600", "\ufffd", "{", "]"]
    return json.dumps("".join(rng.choice(pool) for _ in range(rng.randrange(1, 20))))


def _scalar(rng: random.Random) -> str:
    return rng.choice([_big(rng), rng.choice(["NaN", "Infinity", "-Infinity", '"NaN"', '"inf"', '"-Infinity"']),
                       _odd(rng), repr(rng.uniform(-1e300, 1e300)), str(rng.randrange(-100, 100))])


KINDS = ("big int", "NaN / Infinity", "deep nesting", "over 4,300 digits", "odd string", "random text")


def answer(kind: str, rng: random.Random) -> str:
    """One fuzzed answer of `kind` (JSON-ish text, as a model might give it)."""
    n, x, a, note = _big(rng), _scalar(rng), _scalar(rng), _odd(rng)
    if kind == "big int":
        n, a = _big(rng), f"[{_big(rng)}, {{\"k\": {_big(rng)}}}]"
    elif kind == "NaN / Infinity":
        x = rng.choice(["NaN", "Infinity", "-Infinity", '"NaN"', '"nan"', '"Infinity"', '"-inf"', '"1e999"'])
    elif kind == "deep nesting":
        depth = rng.randrange(1, 200)
        a = "[" * depth + _scalar(rng) + "]" * depth
    elif kind == "over 4,300 digits":
        n = "9" * rng.randrange(4200, 4400)
    elif kind == "odd string":
        note, a = _odd(rng), _odd(rng)
    else:
        chars = '{}[]",:0123456789eE.-\\ naINfty\ud83d'
        return "".join(rng.choice(chars) for _ in range(rng.randrange(0, 80)))
    return f'{{"n": {n}, "x": {x}, "answer": {a}, "note": {note}}}'


async def checkpointed(run_dir: Path) -> Any:
    async with aiosqlite.connect(str(run_dir / CHECKPOINTS)) as conn:
        saver = DeltaSqliteSaver(conn, serde=RedactingSerde(Redactor(env={}), types=state_types(State)))
        got = await saver.aget_tuple({"configurable": {"thread_id": run_dir.name}})
        return None if got is None else got.checkpoint["channel_values"].get("out")


async def main(runs: int, seed: int, concurrency: int) -> None:
    rng = random.Random(seed)
    plan = [(kind, answer(kind, rng)) for kind in (KINDS[i % len(KINDS)] for i in range(runs))]
    counts: dict[str, collections.Counter[str]] = {k: collections.Counter() for k in KINDS}
    uncaught: collections.Counter[str] = collections.Counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "prompts" / "fuzzed").mkdir(parents=True)
        (root / "prompts" / "fuzzed" / "ask.j2").write_text("Answer {{ q }}")
        answers = {f"q{i}": text for i, (_, text) in enumerate(plan)}
        model = FunctionModel(lambda request: answers[(request.messages[0].content or "").split()[-1]])
        rt = Runtime.from_models({"default": model}, prompts=PromptLibrary(root / "prompts"),
                                 traces=TraceStore(root / "runs"))
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int, kind: str) -> None:
            c = counts[kind]
            c["runs"] += 1
            async with gate:
                try:
                    result = await fuzz_graph.run(Question(q=f"q{i}"), runtime=rt)
                except AgentOutputError:
                    c["refused"] += 1
                    return
                except Exception as exc:  # noqa: BLE001 - what this benchmark counts
                    c["uncaught"] += 1
                    uncaught[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
                    return
                c["accepted"] += 1
                back = await checkpointed(Path(result.trace_dir or ""))
                if not isinstance(back, Out) or back.model_dump(mode="json") != result.state["out"]:
                    c["mismatch"] += 1

        started = time.perf_counter()
        await asyncio.gather(*(one(i, kind) for i, (kind, _) in enumerate(plan)))
        elapsed = time.perf_counter() - started
        await rt.aclose()
    table = Table(title=f"{runs} fuzzed graph runs with checkpoints (seed {seed}, {elapsed:.0f} s)")
    for col in ("answer", "runs", "accepted", "AgentOutputError", "uncaught errors", "checkpoint mismatches"):
        table.add_column(col, justify="left" if col == "answer" else "right")
    total: collections.Counter[str] = collections.Counter()
    for kind in KINDS:
        c = counts[kind]
        total.update(c)
        table.add_row(kind, *(str(c[k]) for k in ("runs", "accepted", "refused", "uncaught", "mismatch")))
    table.add_row("all", *(str(total[k]) for k in ("runs", "accepted", "refused", "uncaught", "mismatch")))
    console = Console(width=120)
    console.print(table)
    for what, n in uncaught.most_common(10):
        console.print(f"  {n} x {what}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.seed, args.concurrency))
