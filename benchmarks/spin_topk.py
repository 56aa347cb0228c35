"""What SPIN-Bench's move-quality measure costs: Stockfish's top-10 search per position at SPIN-Bench's
settings (depth 15, MultiPV 10, Hash 2048 MB, Skill Level 20, a cleared engine per position) with 1
and 2 threads and with a 16 MB hash; the centipawn loss per move at depth 12 by the "restricted" and
"fresh" methods; and the connect-four solver's seven column scores per position. Positions are those
before White's moves in two 40-ply games of a random player against Stockfish at skill 0.

    .venv/bin/python benchmarks/spin_topk.py [--positions 10] [--games 2]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

from rich.console import Console
from rich.table import Table

from rolegraph.envs.spin import (
    SPINBENCH_TOP_MOVES,
    BitBullySolver,
    LossMethod,
    StockfishPlayer,
    StockfishTopMoves,
    TopMovesSettings,
    connect4_scores,
    make_env,
    stockfish_version,
)

T = TypeVar("T")


def chess_games(n: int, plies: int = 40) -> list[list[str]]:
    games = []
    for seed in range(n):
        rng, env = random.Random(seed), make_env("chess")
        engine = StockfishPlayer(skill=0)
        while len(env.moves) < plies and not env.is_terminal():
            env.apply(rng.choice(env.legal_moves()) if len(env.moves) % 2 == 0 else engine.choose(env, seed))
        engine.close()
        games.append(list(env.moves))
    return games


def fens_before_white_moves(games: list[list[str]], limit: int) -> list[str]:
    import chess

    fens = []
    for moves in games:
        board = chess.Board()
        for ply, move in enumerate(moves):
            if ply % 2 == 0:
                fens.append(board.fen())
            board.push_uci(move)
    return fens[:limit]


def timed(fn: Callable[[T], object], items: list[T]) -> list[float]:
    times = []
    for item in items:
        t = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - t)
    return times


def row(table: Table, label: str, times: list[float], per_game: int) -> None:
    table.add_row(label, str(len(times)), f"{statistics.mean(times):.2f}", f"{statistics.median(times):.2f}",
                  f"{max(times):.2f}", f"{statistics.mean(times) * per_game:.0f}")


def main(positions: int, games: int) -> None:
    console = Console(width=120)
    played = chess_games(games)
    fens = fens_before_white_moves(played, positions)
    per_game = 20  # LLM moves in a 40-ply game
    table = Table(title=f"seconds per position ({stockfish_version()}; per game: {per_game} LLM moves)",
                  title_justify="left")
    for col in ("measure", "positions", "mean s", "median s", "max s", "s per game"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    settings = {
        "top 10, SPIN-Bench's (Hash 2048, 1 thread)": SPINBENCH_TOP_MOVES,
        "top 10, Hash 2048, 2 threads": TopMovesSettings(threads=2),
        "top 10, Hash 16, 1 thread": TopMovesSettings(hash_mb=16),
    }
    for label, s in settings.items():
        engine = StockfishTopMoves(s)
        engine.top_moves(fens[0])  # start the engine and allocate its hash outside the timing
        row(table, label, timed(engine.top_moves, fens), per_game)
        engine.close()
    sf = StockfishPlayer()
    methods: tuple[LossMethod, ...] = ("restricted", "fresh")
    for method in methods:
        times: list[float] = []
        for moves in played:
            for ply in range(0, len(moves), 2):
                if len(times) >= positions:
                    break
                t = time.perf_counter()
                sf.centipawn_losses(moves, [ply], method=method)
                times.append(time.perf_counter() - t)
        row(table, f"centipawn loss, depth 12, {method}", times, per_game)
    sf.close()
    solver = BitBullySolver()
    rng = random.Random(0)
    columns: list[list[int]] = []
    while len(columns) < positions:
        env = make_env("connect4")
        while not env.is_terminal() and len(columns) < positions:
            columns.append([int(m) - 1 for m in env.moves])
            env.apply(rng.choice(env.legal_moves()))
    connect4_scores(columns[1], solver)  # load the solver outside the timing
    row(table, "connect four: 7 column scores (bitbully)",
        timed(lambda c: connect4_scores(c, solver), columns), per_game)
    console.print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--positions", type=int, default=10)
    parser.add_argument("--games", type=int, default=2)
    args = parser.parse_args()
    main(args.positions, args.games)
