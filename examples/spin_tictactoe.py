"""Play SPIN-Bench games from Python: one tic-tac-toe game of the embedded model against the
minimax solver, then a small recorded benchmark with colours swapped halfway and Elo.

    .venv/bin/python examples/spin_tictactoe.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from rolegraph import Runtime
from rolegraph.evals import EvalStore, run_eval, write_report
from rolegraph.evals.spin import elo_pairs, game_benchmark
from rolegraph.evals.spin.elo import compute_elo
from rolegraph.graphs import spin


async def main() -> None:
    async with Runtime.load() as rt:  # rolegraph.toml if present, else the embedded CPU model
        game = spin.GameSpec(game="tictactoe", seats=[spin.Seat.parse("llm"), spin.Seat.parse("minimax")],
                             mode="constrained")
        result = await spin.run(game, runtime=rt)
        print("moves:", " ".join(result.moves), "| returns:", result.returns, "| trace:", result.run_id)
        for turn in result.turns:
            if turn.seat.startswith("llm"):
                print(f"  {turn.move}: {turn.reason[:70]!r}")

        store = EvalStore(Path(tempfile.mkdtemp()) / "results.sqlite")
        await run_eval(game_benchmark("tictactoe", games=4, mode="constrained"), rt, store=store, concurrency=2)
        print("Elo:", {k: round(v) for k, v in compute_elo(elo_pairs(store.records())).items()})
        print("report:", write_report(store))


if __name__ == "__main__":
    asyncio.run(main())
