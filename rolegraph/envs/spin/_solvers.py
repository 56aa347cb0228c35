"""The opponents and judges of SPIN-Bench's games: a minimax solver for tic-tac-toe, bitbully and
OpenSpiel MCTS for connect four, Stockfish for chess, a rule-based Hanabi bot, and a random
legal player. Each picks a move for the seat to move; the solvers also grade a player's move
(value lost against the best move)."""

from __future__ import annotations

import random
import shutil
import threading
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

from rolegraph.envs.spin._games import ConnectFour, GameEnv, Hanabi, OpenSpielEnv, TicTacToe
from rolegraph.errors import UserError

STOCKFISH_PATHS = ("stockfish", "/usr/games/stockfish")


class Opponent(Protocol):
    """Chooses a move for the seat to move. Deterministic for a given (seed, position)."""

    @property
    def name(self) -> str: ...

    def choose(self, env: GameEnv, seed: int) -> str: ...


def _rng(seed: int, env: GameEnv) -> random.Random:
    return random.Random(f"{seed}:{len(env.moves)}")


@dataclass(frozen=True)
class RandomPlayer:
    """A uniformly random legal move (the scripted player for engine benchmarks)."""

    name: str = "random"

    def choose(self, env: GameEnv, seed: int) -> str:
        return _rng(seed, env).choice(env.legal_moves())


# --- tic-tac-toe: exact minimax --------------------------------------------------------------

_LINES = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6))


def _winner(cells: tuple[str, ...]) -> str | None:
    for a, b, c in _LINES:
        if cells[a] != "." and cells[a] == cells[b] == cells[c]:
            return cells[a]
    return None


@cache
def _negamax(cells: tuple[str, ...], mark: str) -> int:
    """The value of the position for `mark`, to move: +1 win, 0 draw, -1 loss."""
    other = "O" if mark == "X" else "X"
    if _winner(cells) is not None:
        return -1  # the previous mover (other) completed a line
    empty = [i for i, c in enumerate(cells) if c == "."]
    if not empty:
        return 0
    return max(-_negamax((*cells[:i], mark, *cells[i + 1:]), other) for i in empty)


def tictactoe_move_values(env: TicTacToe) -> dict[str, int]:
    """Each legal move's minimax value for the player making it."""
    cells = tuple(env.board())
    mark = TicTacToe.MARKS[env.current_player()]
    other = "O" if mark == "X" else "X"
    values = {}
    for move in env.legal_moves():
        i = "ABC".index(move[0]) + 3 * (int(move[1]) - 1)
        values[move] = -_negamax((*cells[:i], mark, *cells[i + 1:]), other)
    return values


@dataclass(frozen=True)
class Minimax:
    """Perfect tic-tac-toe; ties between equally good moves are broken at random."""

    name: str = "minimax"

    def choose(self, env: GameEnv, seed: int) -> str:
        assert isinstance(env, TicTacToe)
        values = tictactoe_move_values(env)
        best = max(values.values())
        return _rng(seed, env).choice(sorted(m for m, v in values.items() if v == best))


# --- connect four: bitbully (perfect) and MCTS ------------------------------------------------

@dataclass
class BitBullySolver:
    """bitbully's perfect connect-four solver with its opening book; ties broken at random."""

    name: str = "bitbully"
    _agent: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def agent(self) -> Any:
        with self._lock:
            if self._agent is None:
                from bitbully import BitBully

                self._agent = BitBully()
            return self._agent

    def scores(self, env: ConnectFour) -> dict[str, int]:
        """Each legal move's solver score for the player making it (higher is better)."""
        from bitbully import Board

        board = Board.from_moves(env.columns())
        agent = self.agent()
        with self._lock:  # the solver's transposition table is not shared safely across threads
            scored = agent.score_all_moves(board)
        return {str(col + 1): int(v) for col, v in scored.items()}

    def choose(self, env: GameEnv, seed: int) -> str:
        assert isinstance(env, ConnectFour)
        scores = self.scores(env)
        best = max(scores.values())
        return _rng(seed, env).choice(sorted(m for m, v in scores.items() if v == best))


@dataclass(frozen=True)
class MCTSPlayer:
    """OpenSpiel's MCTS with random rollouts; `simulations` sets its strength."""

    simulations: int = 100
    rollouts: int = 1

    @property
    def name(self) -> str:
        return f"mcts-{self.simulations}"

    def choose(self, env: GameEnv, seed: int) -> str:
        import numpy as np
        from open_spiel.python.algorithms import mcts

        assert isinstance(env, OpenSpielEnv)
        rng = np.random.RandomState(_rng(seed, env).randrange(2**31))
        bot = mcts.MCTSBot(env.spiel_game, uct_c=2.0, max_simulations=self.simulations,
                           evaluator=mcts.RandomRolloutEvaluator(self.rollouts, rng), random_state=rng, solve=True)
        return env.action_name(bot.step(env.state))


# --- chess: Stockfish -------------------------------------------------------------------------

def find_stockfish(path: str | None = None) -> str:
    for candidate in ((path,) if path else STOCKFISH_PATHS):
        found = shutil.which(candidate)
        if found:
            return found
    raise UserError("Stockfish was not found: install it (Debian: apt-get install stockfish) "
                    "or pass its path with --stockfish")


@dataclass
class StockfishPlayer:
    """Stockfish at a skill level (0-20) over UCI, thinking `think_s` seconds a move. One engine
    process per player object, shared by the games that use it (calls are serialised)."""

    skill: int = 20
    think_s: float = 0.05
    path: str | None = None
    _engine: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.skill <= 20:
            raise UserError(f"Stockfish skill level must be 0-20, not {self.skill}")

    @property
    def name(self) -> str:
        return f"stockfish-{self.skill}"

    def engine(self) -> Any:
        if self._engine is None:
            import chess.engine

            self._engine = chess.engine.SimpleEngine.popen_uci(find_stockfish(self.path))
            self._engine.configure({"Skill Level": self.skill, "Threads": 1})
        return self._engine

    def choose(self, env: GameEnv, seed: int) -> str:
        import chess.engine

        from rolegraph.envs.spin._games import Chess

        assert isinstance(env, Chess)
        with self._lock:
            engine = self.engine()
            # below level 20 Stockfish picks among good moves with its own clock-seeded generator:
            # its moves are not reproducible, which is why games record them as tool calls
            result = engine.play(env.board, chess.engine.Limit(time=self.think_s))
        assert result.move is not None
        return str(result.move.uci())

    def centipawn_losses(self, moves: list[str], plies: list[int], *, depth: int = 10) -> list[float]:
        """For each ply in `plies`, the centipawns the mover lost against the engine's best line
        (mate scores count as 10,000), at a fixed search depth."""
        import chess
        import chess.engine

        board = chess.Board()
        wanted = set(plies)
        losses: list[float] = []
        with self._lock:
            engine = self.engine()
            for ply, move in enumerate(moves):
                if ply in wanted:
                    mover = board.turn
                    before = engine.analyse(board, chess.engine.Limit(depth=depth))["score"].pov(mover)
                    board.push(chess.Move.from_uci(move))
                    after = engine.analyse(board, chess.engine.Limit(depth=depth))["score"].pov(mover)
                    losses.append(max(0.0, float(before.score(mate_score=10_000) - after.score(mate_score=10_000))))
                else:
                    board.push(chess.Move.from_uci(move))
        return losses

    def close(self) -> None:
        if self._engine is not None:
            self._engine.quit()
            self._engine = None


# --- Hanabi: a rule-based teammate ------------------------------------------------------------

@dataclass(frozen=True)
class HanabiBot:
    """Plays a card known to be playable; else hints a teammate's playable card; else discards
    its oldest card with no hint; else plays its newest card."""

    name: str = "hanabi-bot"

    def choose(self, env: GameEnv, seed: int) -> str:
        assert isinstance(env, Hanabi)
        legal = env.legal_moves()
        view = env.view(env.current_player())
        fw = view.fireworks
        for i, card in enumerate(view.hands[0]):
            ranks = [int(r) for r in card.ranks]
            colors = list(card.colors)
            if len(ranks) == 1 and all(fw[c] == ranks[0] - 1 for c in colors):
                return f"Play {i}"
        if view.info > 0:
            for offset, hand in enumerate(view.hands[1:], start=1):
                for card in hand:
                    color, rank = card.card[0], int(card.card[1])
                    if fw[color] == rank - 1 and card.hint[1] == "X":
                        move = f"Reveal player +{offset} rank {rank}"
                        if move in legal:
                            return move
                    if fw[color] == rank - 1 and card.hint[0] == "X":
                        move = f"Reveal player +{offset} color {color}"
                        if move in legal:
                            return move
        for i, card in enumerate(view.hands[0]):
            if card.hint == "XX" and f"Discard {i}" in legal:
                return f"Discard {i}"
        if "Discard 0" in legal:
            return "Discard 0"
        return f"Play {len(view.hands[0]) - 1}" if f"Play {len(view.hands[0]) - 1}" in legal else legal[0]


def make_opponent(spec: str, game: str) -> Opponent:
    """An opponent from its name: random, minimax, bitbully, mcts[-N], stockfish[-L], hanabi-bot."""
    name, _, arg = spec.partition("-") if not spec.startswith("hanabi") else (spec, "", "")
    if name == "random":
        return RandomPlayer()
    if name == "minimax" and game == "tictactoe":
        return Minimax()
    if name == "bitbully" and game == "connect4":
        return BitBullySolver()
    if name == "mcts" and game in ("tictactoe", "connect4"):
        return MCTSPlayer(simulations=int(arg or 100))
    if name == "stockfish" and game == "chess":
        return StockfishPlayer(skill=int(arg or 20))
    if name == "hanabi-bot" and game == "hanabi":
        return HanabiBot()
    raise UserError(f"no opponent {spec!r} for {game}; use one of: {', '.join(OPPONENTS[game])}")


OPPONENTS = {
    "tictactoe": ("minimax", "mcts-N", "random"),
    "connect4": ("bitbully", "mcts-N", "random"),
    "chess": ("stockfish-L (L = skill 0-20)", "random"),
    "hanabi": ("hanabi-bot", "random"),
}
