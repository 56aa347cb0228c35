"""Counterfactual blame against ground truth.

1. A planted fault (examples/blame/planted.py): in failed runs of a six-step pipeline whose faulty
   step dooms the run when it answers wrongly, how often `blame` names that step, with K samples per
   call, plain and adaptive, and the live model calls each used per run.
2. Tic-tac-toe blunders: SPIN-Bench games the embedded model (constrained mode, first to move) lost
   to minimax. The known decisive move is the first LLM move after which the exact minimax value of
   the position for the LLM drops from draw or win to loss. How often blame's decisive call is that
   move, against two baselines: the last LLM move, and an LLM judge (the embedded model asked to name
   the losing move from the transcript).

    .venv/bin/python benchmarks/blame.py [--planted-runs 50] [--samples 8] [--games 20] [--skip-games]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import rolegraph as rg
from rolegraph.envs.spin import TicTacToe, tictactoe_move_values
from rolegraph.evals.blame import blame
from rolegraph.graphs import spin
from rolegraph.models import ChatRequest, FunctionModel, Message
from rolegraph.traces import NodeStarted, Trace, TraceStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "blame"))
from planted import STEPS, Task, over_http, planted, worker

console = Console(width=150)


async def planted_accuracy(runs: int, samples: int, q: float, root: Path) -> list[tuple[str, ...]]:
    store = TraceStore(root / "planted-runs")
    failed: list[tuple[Trace, int]] = []
    async with rg.Runtime.from_models({"default": FunctionModel(worker)}, traces=store) as rt:
        seed = 0
        while len(failed) < runs:
            fault = seed % (STEPS - 1)  # the fault moves: steps 0..4
            result = await planted.run(Task(fault=fault, q=q), runtime=rt, seed=seed)
            if not result.success:
                failed.append((store.load(result.run_id or ""), fault))
            seed += 1
    rows: list[tuple[str, ...]] = []
    for adaptive in (False, True):
        hits, calls, started = 0, [], time.perf_counter()
        for k, (trace, fault) in enumerate(failed):
            async with rg.Runtime.from_models({"default": FunctionModel(worker)}) as rt:
                report = await blame(trace, live=rt, out=root / f"planted-{adaptive}-{k}", samples=samples,
                                     adaptive=adaptive, progress=False)
            hits += report.decisive == fault
            calls.append(report.live_calls)
        rows.append((f"planted fault, q={q}, {'adaptive up to ' if adaptive else ''}K={samples}",
                     f"{hits}/{len(failed)} ({hits / len(failed):.0%})", f"{statistics.mean(calls):.0f}",
                     f"{time.perf_counter() - started:.1f}"))
    return rows


def blunder_ply(result: Any) -> int | None:
    """The ply of the first LLM move after which the LLM's minimax value fell to a loss."""
    env = TicTacToe()
    for turn in result.turns:
        if turn.move is None:
            return None
        if turn.seat.startswith("llm"):
            values = tictactoe_move_values(env)
            if max(values.values()) >= 0 and values[turn.move] < 0:
                return int(turn.ply)
        env.apply(turn.move)
    return None


def ply_steps(trace: Trace) -> dict[int, int]:
    """Node step of each ply (the game's n-th node step plays ply n)."""
    return {i: e.step for i, e in enumerate(sorted(trace.of_kind(NodeStarted), key=lambda e: e.step))}


JUDGE = ("Here is a tic-tac-toe game you played as X against a perfect opponent (O), move by move:\n{moves}\n"
         "You lost. Which of your own moves (give its number) was the mistake that lost the game? "
         "Answer with the number only.")


async def judge(rt: rg.Runtime, result: Any, llm_plies: list[int]) -> int | None:
    lines = []
    for turn in result.turns:
        who = "you (X)" if turn.seat.startswith("llm") else "opponent (O)"
        tag = f"#{llm_plies.index(turn.ply) + 1} " if turn.ply in llm_plies else ""
        lines.append(f"{tag}{who}: {turn.move}")
    reply = await rt.model("judge").chat(ChatRequest(messages=(
        Message(role="user", content=JUDGE.format(moves="\n".join(lines))),), max_tokens=8, temperature=0.0))
    m = re.search(r"\d+", reply.text)
    if m is None or not 1 <= int(m[0]) <= len(llm_plies):
        return None
    return llm_plies[int(m[0]) - 1]


async def tictactoe(games: int, samples: int, root: Path, max_games: int) -> list[tuple[str, ...]]:
    rt = rg.Runtime.load(env={**os.environ, "ROLEGRAPH__TRACES__DIR": str(root / "games")})
    assert rt.traces is not None
    lost: list[tuple[Any, int]] = []
    played = 0
    async with rt:
        for seed in range(max_games):
            if len(lost) >= games:
                break
            spec = spin.GameSpec(game="tictactoe", seats=[spin.Seat(kind="llm", name="player"),
                                                          spin.Seat(kind="solver", name="minimax")],
                                 mode="constrained", seed=seed)
            result = await spin.run(spec, runtime=rt)
            played += 1
            ply = blunder_ply(result)
            if result.returns[0] < 0 and ply is not None and result.run_id:
                lost.append((result, ply))
        hits = {"blame": 0, "last LLM move": 0, "LLM judge": 0}
        calls: list[int] = []
        started = time.perf_counter()
        for k, (result, ply) in enumerate(lost):
            trace = rt.traces.load(result.run_id)
            steps = ply_steps(trace)
            llm_plies = [t.ply for t in result.turns if t.seat.startswith("llm")]
            report = await blame(trace, live=rt, out=root / f"ttt-{k}", samples=samples, progress=False)
            decisive = next(s for s in report.steps if s.index == report.decisive)
            calls.append(report.live_calls)
            hits["blame"] += decisive.step == steps[ply]
            hits["last LLM move"] += llm_plies[-1] == ply
            hits["LLM judge"] += await judge(rt, result, llm_plies) == ply
            console.print(f"game {k}: blunder at ply {ply} (step {steps[ply]}), blame says step {decisive.step} "
                          f"(p {[round(s.p, 2) for s in report.steps]})")
    elapsed = time.perf_counter() - started
    n = len(lost)
    rows: list[tuple[str, ...]] = [(f"tic-tac-toe blunders ({n} lost of {played} games), {name}",
             f"{h}/{n} ({h / n:.0%})" if n else "-", f"{statistics.mean(calls):.0f}" if name == "blame" and calls else "",
             f"{elapsed:.1f}" if name == "blame" else "") for name, h in hits.items()]
    rt.close()
    return rows


async def paired_efficiency(cases: int, samples: int, root: Path) -> list[tuple[str, ...]]:
    """Fork-compare against two fresh evaluations on the same cases and budget (K runs per case and
    arm), on the planted pipeline served over HTTP: the decider's model changed to one that never
    errs; a run also fails when more than one earlier step was unsure (the shared prefix matters)."""
    from rolegraph.config import EndpointConfig, RoleConfig, RuntimeConfig
    from rolegraph.evals import Benchmark, Case, EvalStore, Score, run_eval
    from rolegraph.evals.fork_compare import fork_compare
    from rolegraph.evals.metrics import paired_comparison
    from rolegraph.models.servers.loadtest import LoadTestServer

    async def success(case: Case, output: Any) -> Score:
        return Score(value=float(output["success"]))

    success.name = "success"  # type: ignore[attr-defined]
    items = [Case(id=f"c{i:03d}", input={"fault": 4, "q": 0.5, "max_unsure": 1}) for i in range(cases)]

    def bench(offset: int) -> Benchmark:
        solver = planted.solver(seed=lambda case, repeat, seed: offset + int(case.id[1:]) * 100 + repeat)
        return Benchmark(name="planted", cases=lambda: items, solver=solver, scorers=[success])

    async with LoadTestServer(delay_s=0.0, reply=over_http) as server:
        def runtime(decider: str, traces: str) -> rg.Runtime:
            roles = {"default": RoleConfig(endpoint="stub", model="stub"),
                     "decider": RoleConfig(endpoint="stub", model=decider)}
            return rg.Runtime(RuntimeConfig(endpoints={"stub": EndpointConfig(base_url=server.base_url,
                                                                              dialect="openai")}, roles=roles),
                              traces=TraceStore(root / traces))

        async with runtime("stub", "pe-runs") as rt:
            await run_eval(bench(0), rt, store=EvalStore(root / "pe-recorded" / "results.sqlite"), progress=False)
            before = server.requests
            fork = await fork_compare(root / "pe-recorded", live=rt, at="decider", model="careful", samples=samples,
                                      scorer=lambda result: result.success, progress=False)
            fork_calls = server.requests - before
        means: dict[str, dict[str, float]] = {}
        before = server.requests
        for arm, model in (("a", "stub"), ("b", "careful")):
            async with runtime(model, f"pe-{arm}-runs") as rt:
                store = EvalStore(root / f"pe-{arm}" / "results.sqlite")
                await run_eval(bench(10**6), rt, store=store, repeats=samples, progress=False)
            by: dict[str, list[float]] = {}
            for r in store.records():
                by.setdefault(r.case_id, []).append(r.scores["success"].value)
            means[arm] = {k: sum(v) / len(v) for k, v in by.items()}
        fresh_calls = server.requests - before
    fresh = paired_comparison(means["a"], means["b"])
    w_pair, w_fresh = fork.high - fork.low, fresh.diff.high - fresh.diff.low
    return [
        (f"fork-compare at the decider ({cases} cases x {samples} per arm)", f"{fork.difference:+.3f}",
         f"[{fork.low:+.3f}, {fork.high:+.3f}] width {w_pair:.3f}", str(fork_calls)),
        ("two fresh evaluations, same cases and runs", f"{fresh.diff.value:+.3f}",
         f"[{fresh.diff.low:+.3f}, {fresh.diff.high:+.3f}] width {w_fresh:.3f}", str(fresh_calls)),
        ("samples a fresh pair needs for fork-compare's width", f"{(w_fresh / w_pair) ** 2:.1f}x", "", ""),
    ]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--planted-runs", type=int, default=50)
    ap.add_argument("--q", type=float, default=0.2)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--games", type=int, default=20, help="lost games to blame")
    ap.add_argument("--max-games", type=int, default=200)
    ap.add_argument("--skip-games", action="store_true", help="only the planted fault (no embedded model)")
    ap.add_argument("--compare-cases", type=int, default=100)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="rolegraph-blame-"))
    pairs = await paired_efficiency(args.compare_cases, 4, root)
    table = Table(title="paired comparison on shared prefixes: the decider's model changed (true difference +0.5 "
                        "of the runs the prefix leaves winnable)")
    for col in ("estimate", "difference", "95% CI", "model calls"):
        table.add_column(col, justify="right")
    for row in pairs:
        table.add_row(*row)
    console.print(table)
    rows = await planted_accuracy(args.planted_runs, args.samples, args.q, root)
    if not args.skip_games:
        rows += await tictactoe(args.games, args.samples, root, args.max_games)
    table = Table(title="blame against ground truth")
    for col in ("case", "decisive step right", "live model calls per run", "wall s"):
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    asyncio.run(main())
