"""SPIN-Bench environment costs: games per minute with a scripted random-legal player, played
through the recorded game graph (so engine and framework overhead show), next to the bare
engine loop; then one game per environment with the real embedded model.

    .venv/bin/python benchmarks/spin.py [--games 20] [--no-real]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from rolegraph import Runtime
from rolegraph.envs.spin import make_env, make_opponent
from rolegraph.envs.spin.pddl import check_plan, load_tasks
from rolegraph.graphs import spin, spin_diplomacy, spin_pddl
from rolegraph.models import ChatRequest, FunctionModel

PDDL = Path(__file__).resolve().parents[1] / "tests" / "data" / "spinbench-pddl"
SETUPS: dict[str, tuple[str, list[str], dict[str, Any]]] = {
    "tictactoe": ("tictactoe", ["llm", "minimax"], {}),
    "connect4": ("connect4", ["llm", "bitbully"], {}),
    "chess": ("chess", ["llm", "stockfish-0"], {"max_plies": 120}),
    "hanabi (2p)": ("hanabi", ["llm", "hanabi-bot"], {}),
    "hanabi (5p)": ("hanabi", ["llm", "hanabi-bot", "hanabi-bot", "hanabi-bot", "hanabi-bot"], {}),
}


def random_legal(seed: int) -> FunctionModel:
    rng = random.Random(seed)

    def answer(request: ChatRequest) -> str:
        user = next(m.content for m in request.messages if m.role == "user")
        if "Legal moves: " in user:
            legal = user.split("Legal moves: ")[1].split("\n")[0].split(", ")
            return json.dumps({"reason": "random", "action": rng.choice(legal)})
        if "negotiation round" in user:
            return json.dumps({"negotiation_strategy": "", "messages": {}})
        if "Give your orders" in user:
            lines = [ln for ln in user.split("The possible orders")[1].splitlines() if ": " in ln]
            return json.dumps({"orders": [rng.choice(ln.split(": ")[1].split("; ")) for ln in lines]})
        return "(noop)"

    return FunctionModel(answer)


def engine_loop(game: str, seats: list[str], opts: dict[str, Any], seed: int, solvers: dict[str, Any]) -> None:
    env = make_env(game, seed=seed, players=len(seats), **opts)
    rng = random.Random(seed)
    while not env.is_terminal():
        seat = seats[env.current_player()]
        env.apply(rng.choice(env.legal_moves()) if seat == "llm" else solvers[seat].choose(env, seed))


async def scripted(games: int, table: Table) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for label, (game, seats, opts) in SETUPS.items():
            n = max(2, games // 4) if game == "chess" else games
            solvers = {s: make_opponent(s, game) for s in set(seats) if s != "llm"}  # made once, as the graph does
            engine_loop(game, seats, opts, 10_000, solvers)  # warm up (bitbully's opening book, Stockfish's start)
            t = time.perf_counter()
            for i in range(n):
                await asyncio.to_thread(engine_loop, game, seats, opts, i, solvers)
            bare = n / (time.perf_counter() - t) * 60
            for solver in solvers.values():
                close = getattr(solver, "close", None)
                if close:
                    close()
            rt = Runtime.from_models({"player": random_legal(0)}, traces=Path(tmp) / label)
            plies = 0
            t = time.perf_counter()
            for i in range(n):
                spec = spin.GameSpec(game=game, seats=[spin.Seat.parse(s) for s in seats], seed=i, **opts)
                plies += len((await spin.run(spec, runtime=rt)).moves)
            graph = n / (time.perf_counter() - t) * 60
            rt.close()
            table.add_row(label, str(n), f"{plies / n:.0f}", f"{bare:,.0f}", f"{graph:,.0f}")
        rt = Runtime.from_models({"player": random_legal(0)}, traces=Path(tmp) / "dip")
        n = 3
        t = time.perf_counter()
        for i in range(n):
            await spin_diplomacy.run(spin_diplomacy.DiplomacySpec(llm_powers=["FRANCE"], end_year=1902, seed=i),
                                      runtime=rt)
        table.add_row("diplomacy (1 LLM power, 2 years)", str(n), "-", "-", f"{n / (time.perf_counter() - t) * 60:,.1f}")
        task = next(load_tasks(PDDL, domains=["blocksworld"]))
        t = time.perf_counter()
        for _ in range(20):
            check_plan(task, "(unstack b2 b4)\n(putdown b2)\n(unstack b4 b1)\n(stack b4 b5)")
        table.add_row("pddl: validate one 4-step plan", "20", "-", f"{20 / (time.perf_counter() - t) * 60:,.0f}", "-")


async def real(table: Table) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rt = Runtime.load(env={"ROLEGRAPH__TRACES__DIR": tmp})
        try:
            for label, (game, seats, opts) in SETUPS.items():
                if label == "hanabi (5p)":
                    continue
                spec = spin.GameSpec(game=game, seats=[spin.Seat.parse(s) for s in seats], mode="constrained",
                                     **({"max_plies": 40} if game == "chess" else opts))
                t = time.perf_counter()
                r = await spin.run(spec, runtime=rt)
                llm = [x for x in r.turns if x.seat == "llm:player"]
                s = time.perf_counter() - t
                outcome = f"score {r.score:.0f}" if r.score is not None else ("win" if r.returns[0] > 0 else
                                                                              "loss" if r.returns[0] < 0 else "draw")
                table.add_row(label, f"{s:.0f}", str(len(llm)), f"{s / max(1, len(llm)):.2f}",
                              f"{r.completion_tokens / s:.0f}", f"{outcome}, {r.termination}")
            t = time.perf_counter()
            d = await spin_diplomacy.run(spin_diplomacy.DiplomacySpec(
                llm_powers=["FRANCE"], end_year=1901, negotiation_rounds=1, mode="constrained"), runtime=rt)
            s = time.perf_counter() - t
            table.add_row("diplomacy (FRANCE, 1901, 1 round)", f"{s:.0f}", str(len(d.orders)), "-",
                          f"{d.completion_tokens / s:.0f}", f"{d.centers['FRANCE']} centres")
            task = next(load_tasks(PDDL, domains=["blocksworld"]))
            t = time.perf_counter()
            p = await spin_pddl.run(task, runtime=rt)
            s = time.perf_counter() - t
            table.add_row("pddl (blocksworld p49)", f"{s:.0f}", "1", f"{s:.2f}", f"{p.completion_tokens / s:.0f}",
                          "valid" if p.check.valid else f"invalid at step {p.check.failing_step}")
        finally:
            await rt.aclose()
            rt.close()


async def main(games: int, with_real: bool) -> None:
    console = Console()
    table = Table(title="games per minute, scripted random-legal player vs the solver (one process)",
                  title_justify="left")
    for col in ("environment", "games", "plies/game", "bare engine", "recorded graph"):
        table.add_column(col, justify="right" if col != "environment" else "left")
    await scripted(games, table)
    console.print(table)
    if with_real:
        table = Table(title="one game with the embedded model (SmolLM2-135M, constrained mode)", title_justify="left")
        for col in ("environment", "seconds", "LLM turns", "s/turn", "tok/s", "result"):
            table.add_column(col, justify="right" if col != "environment" else "left")
        await real(table)
        console.print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--games", type=int, default=20)
    parser.add_argument("--no-real", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.games, not args.no_real))
