"""A full SPIN-Bench game with the real embedded model (SmolLM2-135M over HTTP)."""

from __future__ import annotations

from rolegraph import Runtime
from rolegraph.graphs import spin


async def test_a_constrained_tictactoe_game_against_minimax(embedded_runtime: Runtime) -> None:
    spec = spin.GameSpec(game="tictactoe", seats=[spin.Seat.parse("llm"), spin.Seat.parse("minimax")],
                         mode="constrained", seed=3)
    result = await spin.run(spec, runtime=embedded_runtime)
    # the enum keeps even this tiny model legal: the game reaches its end on the board
    assert result.forfeit is None and result.termination == "end"
    assert result.illegal == [0, 0]
    assert result.returns in ([0.0, 0.0], [-1.0, 1.0])  # nobody beats perfect play
    llm_turns = [t for t in result.turns if t.seat == "llm:player"]
    assert len(llm_turns) >= 3 and all(t.attempts == 1 for t in llm_turns)
    assert len(result.moves) == len(set(result.moves))  # every move took an empty cell
