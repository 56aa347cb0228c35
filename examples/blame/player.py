"""A scripted tic-tac-toe player for blame's ground truth: it plays the SPIN graph's `player` role
(X, first to move) through FunctionModel, choosing among the legal moves by their exact minimax
value with a temperature (equally good moves at random, a losing one now and then), and at its
planted move picks a losing move, when there is one, with probability `blunder`. Against minimax
only a mistake of its own loses, so a lost game's decisive move is known exactly: the first of its
moves after which its minimax value fell to a loss (`decisive_move`).

    from player import scripted_player, decisive_move, game
    rt = rg.Runtime.from_models({"default": FunctionModel(scripted_player(planted=2))}, traces="runs")
    result = spin.run_sync(game(seed=3), runtime=rt)        # lost? then: rolegraph blame RUN
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable
from typing import Any

from rolegraph.envs.spin import TicTacToe, tictactoe_move_values
from rolegraph.graphs import spin
from rolegraph.models import ChatRequest

_ROW = re.compile(r"^([123])\s+([XO.]) ([XO.]) ([XO.])\s*$", re.MULTILINE)


def game(seed: int) -> spin.GameSpec:
    """One game: the scripted player (X) against minimax."""
    return spin.GameSpec(game="tictactoe", seats=[spin.Seat(kind="llm", name="player"),
                                                  spin.Seat(kind="solver", name="minimax")],
                         mode="constrained", seed=seed, history_k=0)


def position(text: str) -> TicTacToe:
    """The position a request shows (X and O placed alternately: any order reaches it)."""
    cells = [c for row in sorted(_ROW.findall(text)) for c in row[1:]]
    assert len(cells) == 9, text
    xs = [i for i, c in enumerate(cells) if c == "X"]
    os_ = [i for i, c in enumerate(cells) if c == "O"]
    env = TicTacToe()
    for k in range(len(xs)):
        env.apply(env.action_name(xs[k]))
        if k < len(os_):
            env.apply(env.action_name(os_[k]))
    return env


def scripted_player(*, planted: int, blunder: float = 0.6, temperature: float = 0.15) -> Callable[[ChatRequest], str]:
    """The player's answers: at its move number `planted` (0 = its first), a losing move with
    probability `blunder`; elsewhere softmax(value / temperature) over the legal moves."""

    def answer(request: ChatRequest) -> str:
        env = position(request.messages[-1].content or "")
        values = tictactoe_move_values(env)
        rng = random.Random(request.seed)
        move_number = env.board().count("X")
        losing = sorted(m for m, v in values.items() if v < 0)
        if move_number == planted and losing and len(losing) < len(values) and rng.random() < blunder:
            move = rng.choice(losing)
        else:
            moves = sorted(values)
            weights = [math.exp(values[m] / temperature) for m in moves]
            move = rng.choices(moves, weights)[0]
        return json.dumps({"reason": f"move {move_number + 1}", "action": move})

    return answer


def decisive_move(result: Any) -> int | None:
    """The player's move number (0 = its first) after which its minimax value fell to a loss, in a
    game it lost; None if it did not lose that way."""
    env = TicTacToe()
    number = 0
    for turn in result.turns:
        if turn.move is None:
            return None
        if turn.seat.startswith("llm"):
            values = tictactoe_move_values(env)
            if max(values.values()) >= 0 and values[turn.move] < 0:
                return number
            number += 1
        env.apply(turn.move)
    return None
