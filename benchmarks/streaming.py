"""What streaming a run costs, and what it buys, each in a table.

1. Recording cost of a streamed run against a plain one, in this process, on a RefineBot-shaped loop
   (four agents, each one model call per step, three iterations: 12 steps a run) with an instant model
   whose answers stream word by word: `graph.run`; `graph.astream` read for `updates`; for `messages`
   and `updates` (every token through LangGraph's messages stream); for `values`. Arms alternate
   within each trial; reported per run, the median over trials (and the range), and each arm's median
   ratio to the plain run of the same trial.
2. `--against DIR`: a plain run (`graph.run`, no reader: no task, no queue) in this source tree against
   the one in DIR (an earlier version, e.g. `git archive a4fb348 rolegraph | tar -x -C DIR`, whose runs
   were one `ainvoke`): each trial a fresh process per tree with PYTHONPATH set, the trees alternating.
3. `--embedded`: on the embedded model, the time to the first token of a streamed answer against the
   time to the whole answer, asked plainly, for the same requests (alternating). Skipped when the
   embedded server cannot be started here.

    .venv/bin/python benchmarks/streaming.py [--trials 15] [--runs 5] [--against DIR] [--embedded]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from rich.console import Console
from rich.table import Table

import rolegraph as rg
from rolegraph import Runtime
from rolegraph.models import ChatRequest, FunctionModel, Message
from rolegraph.prompts import PromptLibrary
from rolegraph.traces import TraceStore

ROLES = ("evaluator", "reflector", "rewriter", "checker")
ITERATIONS = 3
STEPS = len(ROLES) * ITERATIONS
ANSWER = "The answer is (b): the mitochondria make most of the cell's ATP by oxidative phosphorylation."


class LoopInput(BaseModel):
    question: str = "Which organelle makes ATP?"


class LoopState(BaseModel):
    question: str = ""
    iteration: int = 0
    notes: list[str] = Field(default_factory=list)


def _loop(g: rg.StateGraph) -> None:
    agents = {role: rg.Agent(name=role, prompt=f"bench/{role}", output=str) for role in ROLES}

    def node_for(role: str) -> Callable[[LoopState, Runtime], Awaitable[dict[str, Any]]]:
        async def node(state: LoopState, runtime: Runtime) -> dict[str, Any]:
            text = await agents[role].run(runtime, question=state.question, iteration=state.iteration)
            update: dict[str, Any] = {"notes": [*state.notes, f"{role}: {text[:20]}"]}
            if role == ROLES[-1]:
                update["iteration"] = state.iteration + 1
            return update
        node.__name__ = role
        return node

    for role in ROLES:
        g.add_node(role, node_for(role))
    g.add_edge(rg.START, ROLES[0])
    for a, b in itertools.pairwise(ROLES):
        g.add_edge(a, b)
    g.add_conditional_edges(ROLES[-1], lambda s: rg.END if s.iteration >= ITERATIONS else "next",
                            {rg.END: rg.END, "next": ROLES[0]})


loop = rg.graph(input=LoopInput, state=LoopState, name="stream_bench", recursion_limit=100)(_loop)


def prompts(folder: Path) -> PromptLibrary:
    (folder / "bench").mkdir(parents=True, exist_ok=True)
    for role in ROLES:
        (folder / "bench" / f"{role}.j2").write_text(f"You are the {role}. {{{{ question }}}} (round {{{{ iteration }}}})")
    return PromptLibrary(folder)


# -- 1. a streamed run against a plain one -------------------------------------------------------------


async def _plain(rt: Runtime) -> None:
    await loop.run(LoopInput(), runtime=rt)


def _reader(modes: Any) -> Callable[[Runtime], Awaitable[None]]:
    async def read(rt: Runtime) -> None:
        async for _ in loop.astream(LoopInput(), runtime=rt, stream_mode=modes):
            pass
    return read


ARMS: dict[str, Callable[[Runtime], Awaitable[None]]] = {
    "plain run (graph.run)": _plain,
    "astream: updates": _reader("updates"),
    "astream: messages + updates (tokens)": _reader(["messages", "updates"]),
    "astream: values": _reader("values"),
}


async def streamed_against_plain(trials: int, runs: int, where: Path, console: Console) -> None:
    rt = Runtime.from_models({"default": FunctionModel(lambda r: ANSWER)}, prompts=prompts(where / "prompts"),
                             traces=TraceStore(where / "runs"))
    for arm in ARMS.values():  # warm: compiled graphs, prompt hashes, first imports
        await arm(rt)
    wall: dict[str, list[float]] = {name: [] for name in ARMS}
    cpu: dict[str, list[float]] = {name: [] for name in ARMS}
    names = list(ARMS)
    for trial in range(trials):
        order = names[trial % len(names):] + names[:trial % len(names)]
        for name in order:
            w0, c0 = time.perf_counter(), time.process_time()
            for _ in range(runs):
                await ARMS[name](rt)
            wall[name].append((time.perf_counter() - w0) / runs * 1000)
            cpu[name].append((time.process_time() - c0) / runs * 1000)
    plain = names[0]
    table = Table(title=f"A streamed run against a plain run ({STEPS} steps, {STEPS} model calls a run; "
                        f"{trials} trials x {runs} runs, arms alternating)")
    for column in ("arm", "ms / run (median)", "range", "CPU ms / run", "x plain (median of per-trial ratios)"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for name in names:
        ratios = [a / b for a, b in zip(wall[name], wall[plain], strict=True)]
        table.add_row(name, f"{statistics.median(wall[name]):.2f}", f"{min(wall[name]):.2f}-{max(wall[name]):.2f}",
                      f"{statistics.median(cpu[name]):.2f}", f"{statistics.median(ratios):.3f}")
    console.print(table)


# -- 2. a plain run in this tree against an earlier one ----------------------------------------------

CHILD = "--child-plain-runs"


async def _child(runs: int) -> None:
    """In a fresh process whose PYTHONPATH picks the tree: ms per plain run (graph.run), after two warm runs."""
    with tempfile.TemporaryDirectory() as scratch:
        where = Path(scratch)
        rt = Runtime.from_models({"default": FunctionModel(lambda r: ANSWER)}, prompts=prompts(where / "prompts"),
                                 traces=TraceStore(where / "runs"))
        for _ in range(2):
            await _plain(rt)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            await _plain(rt)
            times.append((time.perf_counter() - started) * 1000)
    print(json.dumps({"ms": statistics.median(times), "rolegraph": rg.__file__}))


def plain_against_tree(other: Path, trials: int, runs: int, console: Console) -> None:
    here = Path(__file__).resolve().parents[1]
    trees = {"this tree": here, f"{other}": other.resolve()}
    times: dict[str, list[float]] = {name: [] for name in trees}
    for trial in range(trials):
        for name in (list(trees) if trial % 2 == 0 else list(reversed(trees))):
            env = {**os.environ, "PYTHONPATH": str(trees[name])}
            done = subprocess.run([sys.executable, __file__, CHILD, str(runs)], env=env, capture_output=True, text=True,
                                  check=True, cwd=tempfile.gettempdir())
            got = json.loads(done.stdout.strip().splitlines()[-1])
            assert got["rolegraph"].startswith(str(trees[name])), f"{name} imported {got['rolegraph']}"
            times[name].append(got["ms"])
    table = Table(title=f"A plain run (graph.run, {STEPS} steps, recorded and checkpointed): this tree against "
                        f"{other} ({trials} processes each, alternating; median of {runs} runs each)")
    for column in ("tree", "ms / run (median)", "range", "ms / step"):
        table.add_column(column, justify="left" if column == "tree" else "right")
    for name, values in times.items():
        table.add_row(name, f"{statistics.median(values):.2f}", f"{min(values):.2f}-{max(values):.2f}",
                      f"{statistics.median(values) / STEPS:.3f}")
    ratios = [a / b for a, b in zip(times["this tree"], times[f"{other}"], strict=True)]
    console.print(table)
    console.print(f"this tree / {other}: median ratio {statistics.median(ratios):.3f} "
                  f"(range {min(ratios):.3f}-{max(ratios):.3f})")


# -- 3. time to first token on the embedded model --------------------------------------------------


async def first_token_against_whole(n: int, console: Console) -> None:
    from rolegraph.errors import ServerStartError

    rt = Runtime.load()
    model = rt.unrecorded_model("default")
    try:
        await model.chat(ChatRequest(messages=(Message(role="user", content="Say hi."),), max_tokens=4))
    except ServerStartError as exc:
        console.print(f"[yellow]skipped the embedded model: {exc}[/]")
        return
    first, streamed_total, whole = [], [], []
    for i in range(n):
        request = ChatRequest(messages=(Message(role="user", content=f"Explain in a few sentences why the sky is blue "
                                                                      f"({i})."),), max_tokens=96, seed=i)
        for streaming in ((True, False) if i % 2 == 0 else (False, True)):
            started = time.perf_counter()
            if streaming:
                seen: list[float] = []

                async def on_token(piece: str, seen: list[float] = seen, started: float = started) -> None:
                    if not seen:
                        seen.append(time.perf_counter() - started)

                await model.chat_stream(request, on_token)  # type: ignore[attr-defined]
                first.append(seen[0] if seen else float("nan"))
                streamed_total.append(time.perf_counter() - started)
            else:
                await model.chat(request)
                whole.append(time.perf_counter() - started)
    await rt.aclose()
    rt.close()
    table = Table(title=f"The embedded model: first token against the whole answer ({n} requests, 96 tokens at most)")
    for column in ("", "median s", "range s"):
        table.add_column(column, justify="left" if not column else "right")
    for name, values in (("first token, streamed", first), ("whole answer, streamed", streamed_total),
                         ("whole answer, asked plainly", whole)):
        table.add_row(name, f"{statistics.median(values):.3f}", f"{min(values):.3f}-{max(values):.3f}")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=15)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--against", type=Path, default=None,
                        help="another source tree (a folder holding rolegraph/) to time a plain run against")
    parser.add_argument("--embedded", action="store_true", help="also time first tokens on the embedded model")
    parser.add_argument("--requests", type=int, default=8, help="requests for --embedded")
    args = parser.parse_args()
    console = Console(width=150)
    with tempfile.TemporaryDirectory() as scratch:
        asyncio.run(streamed_against_plain(args.trials, args.runs, Path(scratch), console))
    if args.against is not None:
        plain_against_tree(args.against, args.trials, args.runs, console)
    if args.embedded:
        asyncio.run(first_token_against_whole(args.requests, console))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == CHILD:
        asyncio.run(_child(int(sys.argv[2])))
    else:
        main()
