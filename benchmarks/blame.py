"""Counterfactual blame against ground truth: accuracy and cost.

1. Planted pipelines (examples/blame/chain.py): 6, 30 and 100 model calls, the fault at a random
   call, two noise levels (low: the fault answers wrongly 20% of the time; high: 50%, and every
   other call slips, 10% of the time or 3 times a run on long runs, more than two slips before the
   fault also failing the run),
   in failed runs whose one cause is the fault. Methods: the full sweep (K = 8 per call), the
   adaptive sweep (up to 8), bisection (up to 16 per call it samples), and the baselines: the last
   call of the failing role, and an LLM judge given the transcript (`--judge CONFIG`, the role
   `judge` of that rolegraph.toml; `--judge embedded` for the embedded model). Per method and case:
   how often the decisive call is the fault, the median live model calls and tokens of a blame.
2. The scripted tic-tac-toe player (examples/blame/player.py) against minimax: lost games, the
   decisive move known exactly from the minimax values; the same methods.
3. A paired comparison on shared prefixes (fork-compare) against two fresh evaluations.
4. Tic-tac-toe games the embedded model lost to minimax (needs the embedded model; --skip-games).

    .venv/bin/python benchmarks/blame.py [--runs 50] [--lengths 6,30,100] [--games 50]
        [--long-runs 50] [--long-sweep-runs 5] [--judge CONFIG|embedded ...] [--skip-games] [--skip-paired]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import rolegraph as rg
from rolegraph.envs.spin import TicTacToe, tictactoe_move_values
from rolegraph.evals.blame import BlameReport, blame
from rolegraph.graphs import spin
from rolegraph.models import ChatRequest, FunctionModel, Message
from rolegraph.traces import NodeStarted, Trace, TraceStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "blame"))
from chain import Chain, chain, slipped, wrong
from chain import worker as chain_worker
from planted import over_http, planted
from player import decisive_move, game, scripted_player

console = Console(width=150)


NOISE = {"low": {"q": 0.2}, "high": {"q": 0.5, "max_slips": 2}}
"""High noise also has slips: 10% of calls on runs up to 30 calls, 3 per run on longer ones."""
METHODS = {"sweep": {"method": "sweep", "samples": 8}, "adaptive sweep": {"method": "sweep", "samples": 8,
                                                                         "adaptive": True},
           "bisect": {"method": "bisect"}}


@dataclass
class Case:
    """One failed run to blame, with the exact decisive call and how to re-sample it."""

    trace: Trace
    truth: int
    """The decisive call's index in run order."""
    worker: Any
    transcript: list[str]
    """What a judge reads: one line per model call, in run order."""
    failing_role_last: int
    """The index of the failing role's last call (the baseline's answer)."""


@dataclass
class Tally:
    right: int = 0
    runs: int = 0
    calls: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    wall: float = 0.0


async def planted_cases(length: int, noise: str, runs: int, root: Path) -> list[Case]:
    """Failed runs of an n-call chain whose one cause is the fault, the fault at a random call."""
    store = TraceStore(root / f"chain-{length}-{noise}")
    rng = random.Random(length * 1000 + len(noise))
    cases: list[Case] = []
    async with rg.Runtime.from_models({"default": FunctionModel(chain_worker)}, traces=store) as rt:
        seed = 0
        while len(cases) < runs:
            fault = rng.randrange(length - 1)
            noise_of = {**NOISE[noise], **({"slip": min(0.1, 3 / length)} if noise == "high" else {})}
            task = Chain(length=length, fault=fault, **noise_of)  # type: ignore[arg-type]
            for _ in range(500):  # a failed run whose one cause is the fault (else another fault)
                seed += 1
                result = await chain.run(task, runtime=rt, seed=seed)
                slips = sum(slipped(a) for a in result.answers[:fault])
                if not result.success and wrong(result.answers[fault]) and slips <= (task.max_slips or length):
                    lines = [f"call {i} (worker): {a}" for i, a in enumerate(result.answers)]
                    cases.append(Case(store.load(result.run_id or ""), fault, chain_worker, lines, length - 1))
                    break
    return cases


async def game_cases(games: int, root: Path) -> tuple[list[Case], int]:
    """Lost games of the scripted player against minimax (its planted move cycles over 1-3)."""
    store = TraceStore(root / "scripted-games")
    cases: list[Case] = []
    seed = 0
    while len(cases) < games:
        player = scripted_player(planted=1 + seed % 3, blunder=0.35)
        async with rg.Runtime.from_models({"default": FunctionModel(player)}, traces=store) as rt:
            result = await spin.run(game(seed), runtime=rt)
        seed += 1
        truth = decisive_move(result)
        if result.returns[0] >= 0 or truth is None:
            continue
        moves = [t for t in result.turns if t.seat.startswith("llm")]
        lines = [f"your move {moves.index(t) + 1} (X): {t.move}" if t in moves else f"opponent (O): {t.move}"
                 for t in result.turns]
        cases.append(Case(store.load(result.run_id or ""), truth, player, lines, len(moves) - 1))
    return cases, seed


PIPELINE_JUDGE = ("A pipeline made these model calls in order, and the run failed:\n{lines}\n"
                  "Which call's answer made it fail? Answer with the call's number only.")
GAME_JUDGE = ("You played this tic-tac-toe game as X against a perfect opponent (O), move by move:\n{lines}\n"
              "You lost. Which of your own moves was the mistake that lost the game? Give its number among your "
              "moves (1 for your first move), and nothing else.")


async def judge_pick(rt: rg.Runtime, case: Case, game_case: bool) -> tuple[int | None, int]:
    """The judge's answer as a call index, and the tokens it spent."""
    prompt = (GAME_JUDGE if game_case else PIPELINE_JUDGE).format(lines="\n".join(case.transcript))
    reply = await rt.model("judge").chat(ChatRequest(messages=(Message(role="user", content=prompt),), max_tokens=8,
                                                     temperature=0.0))
    m = re.search(r"\d+", reply.text)
    pick = None if m is None else int(m[0]) - (1 if game_case else 0)
    return pick, reply.usage.total_tokens


async def run_methods(name: str, cases: list[Case], root: Path, methods: list[str], judges: list[str],
                      limit: dict[str, int]) -> dict[str, Tally]:
    tallies: dict[str, Tally] = {}
    game_case = name.startswith("tic-tac-toe")
    for method in methods:
        t = tallies.setdefault(method, Tally())
        for k, case in enumerate(cases[: limit.get(method, len(cases))]):
            started = time.perf_counter()
            async with rg.Runtime.from_models({"default": FunctionModel(case.worker)}) as rt:
                report: BlameReport = await blame(case.trace, live=rt, out=root / f"{name}-{method}-{k}",
                                                  progress=False, **METHODS[method])  # type: ignore[arg-type]
            t.wall += time.perf_counter() - started
            t.runs += 1
            t.right += report.decisive == case.truth
            t.calls.append(report.live_calls)
            t.tokens.append(report.tokens)
    t = tallies.setdefault("baseline: last call of the failing role", Tally())
    for case in cases:
        t.runs += 1
        t.right += case.failing_role_last == case.truth
        t.calls.append(0)
        t.tokens.append(0)
    for ref in judges:
        t = tallies.setdefault(f"baseline: LLM judge ({ref})", Tally())
        runtime = rg.Runtime.load(None if ref == "embedded" else Path(ref))
        async with runtime:
            for case in cases:
                started = time.perf_counter()
                pick, tokens = await judge_pick(runtime, case, game_case)
                t.wall += time.perf_counter() - started
                t.runs += 1
                t.right += pick == case.truth
                t.calls.append(1)
                t.tokens.append(tokens)
    return tallies


async def ground_truth(args: argparse.Namespace, root: Path) -> Table:
    table = Table(title="blame against ground truth: the decisive call named, and what it cost (medians per run)")
    for col in ("case", "method", "runs", "decisive right", "live calls", "fewer than sweep", "tokens", "wall s"):
        table.add_column(col, justify="left" if col in ("case", "method") else "right")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for length in [int(x) for x in args.lengths.split(",") if x.strip()]:
        for noise in args.noise.split(","):
            cases = await planted_cases(length, noise, args.runs if length < 100 else args.long_runs, root)
            limit = {m: args.long_sweep_runs for m in ("sweep", "adaptive sweep")} if length >= 100 else {}
            name = f"planted {length} calls, {noise} noise"
            add_rows(table, name, await run_methods(name, cases, root, methods, args.judge, limit))
            console.print(f"{name}: done")
    if args.games:
        cases, played = await game_cases(args.games, root)
        name = f"tic-tac-toe scripted player ({len(cases)} lost of {played})"
        add_rows(table, name, await run_methods(name, cases, root, methods, args.judge, {}))
    return table


def add_rows(table: Table, name: str, tallies: dict[str, Tally]) -> None:
    sweep = statistics.median(tallies["sweep"].calls) if "sweep" in tallies and tallies["sweep"].calls else None
    for method, t in tallies.items():
        calls = statistics.median(t.calls) if t.calls else 0
        fewer = f"{sweep / calls:.1f}x" if sweep and calls and method in METHODS else ""
        table.add_row(name, method, str(t.runs), f"{t.right}/{t.runs} ({t.right / max(t.runs, 1):.0%})",
                      f"{calls:.0f}", fewer, f"{statistics.median(t.tokens) if t.tokens else 0:.0f}",
                      f"{t.wall:.1f}" if t.wall else "")
        name = ""


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
            report = await blame(trace, live=rt, out=root / f"ttt-{k}", samples=samples, method="sweep", progress=False)
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
    ap.add_argument("--runs", type=int, default=50, help="failed runs per planted case")
    ap.add_argument("--lengths", default="6,30,100")
    ap.add_argument("--noise", default="low,high")
    ap.add_argument("--methods", default="sweep,adaptive sweep,bisect")
    ap.add_argument("--long-runs", type=int, default=50, help="failed runs per 100-call case")
    ap.add_argument("--long-sweep-runs", type=int, default=5,
                    help="runs of the sweeps on 100-call cases (each costs 40,400 live calls at K = 8)")
    ap.add_argument("--games", type=int, default=50, help="lost games of the scripted player to blame")
    ap.add_argument("--judge", action="append", default=[],
                    help="rolegraph.toml whose role `judge` judges transcripts, or 'embedded' (repeatable)")
    ap.add_argument("--samples", type=int, default=8, help="K of the embedded-model games' sweep")
    ap.add_argument("--embedded-games", type=int, default=20, help="embedded-model games lost to blame")
    ap.add_argument("--max-games", type=int, default=200)
    ap.add_argument("--skip-games", action="store_true", help="no embedded-model games")
    ap.add_argument("--skip-paired", action="store_true", help="no fork-compare table")
    ap.add_argument("--compare-cases", type=int, default=100)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="rolegraph-blame-"))
    console.print(await ground_truth(args, root))
    if not args.skip_paired:
        pairs = await paired_efficiency(args.compare_cases, 4, root)
        table = Table(title="paired comparison on shared prefixes: the decider's model changed (true difference +0.5 "
                            "of the runs the prefix leaves winnable)")
        for col in ("estimate", "difference", "95% CI", "model calls"):
            table.add_column(col, justify="right")
        for row in pairs:
            table.add_row(*row)
        console.print(table)
    if not args.skip_games:
        table = Table(title="tic-tac-toe games the embedded model lost to minimax")
        for col in ("case", "decisive step right", "live model calls per run", "wall s"):
            table.add_column(col, justify="right")
        for row in await tictactoe(args.embedded_games, args.samples, root, args.max_games):
            table.add_row(*row)
        console.print(table)


if __name__ == "__main__":
    asyncio.run(main())
