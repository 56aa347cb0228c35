"""The opponents and judges of SPIN-Bench's games: a minimax solver for tic-tac-toe, bitbully and
OpenSpiel MCTS for connect four, Stockfish for chess, a rule-based Hanabi bot, and a random
legal player. Each picks a move for the seat to move; the solvers also grade a player's move
(value lost against the best move)."""

from __future__ import annotations

import random
import shutil
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, Protocol, assert_never

from rolegraph.envs.spin._games import ConnectFour, GameEnv, Hanabi, OpenSpielEnv, TicTacToe
from rolegraph.errors import UserError

if TYPE_CHECKING:
    import chess
    import chess.engine

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

ANALYSIS_DEPTH = 12
"""The default search depth of `StockfishPlayer.centipawn_losses` (`MoveQuality` says why 12)."""

MATE_SCORE = 10_000
"""What a mate is worth in centipawns: python-chess's `score(mate_score=MATE_SCORE)` scores mate in
n for the mover as MATE_SCORE - n and being mated in n as -(MATE_SCORE - n)."""

ANALYSIS_OPTIONS: dict[str, int] = {"Threads": 1, "Hash": 16, "Skill Level": 20}
"""The judging engine's settings: one thread, because a multi-threaded search is not reproducible;
a fixed hash size (Stockfish's default 16 MB), because the table's size changes what a search
keeps; full strength, because below level 20 Stockfish searches several lines and scores change."""

LossMethod = Literal["restricted", "after_move", "fresh"]
"""How `StockfishPlayer.centipawn_losses` scores a move (its docstring compares them)."""


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
    process per player object, shared by the games that use it (calls are serialised), and a
    second one with ANALYSIS_OPTIONS for `centipawn_losses`, started on first use."""

    skill: int = 20
    think_s: float = 0.05
    path: str | None = None
    _engine: Any = field(default=None, repr=False)
    _analyser: chess.engine.SimpleEngine | None = field(default=None, repr=False)
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

    def analyser(self) -> chess.engine.SimpleEngine:
        """The judging engine: a process of its own, so the playing engine's skill level never
        reaches the scores."""
        if self._analyser is None:
            import chess.engine

            self._analyser = chess.engine.SimpleEngine.popen_uci(find_stockfish(self.path))
            self._analyser.configure(ANALYSIS_OPTIONS)
        return self._analyser

    def centipawn_losses(self, moves: Sequence[str], plies: Iterable[int] | None = None, *,
                         start: str | chess.Board | None = None, depth: int = ANALYSIS_DEPTH,
                         method: LossMethod = "restricted") -> list[float]:
        """The centipawns the mover lost with each move in `plies` (indexes into `moves`, all of
        them by default), `moves` being UCI moves played from `start` (a FEN or a board, the
        standard start by default). Scores are from the mover's point of view, at search depth
        `depth`, on an engine with ANALYSIS_OPTIONS; mate in n counts as MATE_SCORE - n.

        `method="restricted"`: the engine's best score at the root minus the score of a root search
        restricted to the played move (`go depth D searchmoves MOVE`), same position, depth and
        settings, floored at 0; the engine's best move loses 0 without the second search.
        `method="after_move"` (the measure used before): the root score minus a fresh search of
        the position after the move. That search sees the move's subtree a ply deeper than the
        root search did, with its own windows and pruning, so the two scores are not like for like:
        on four 40-ply games, moves that "restricted" scores level with the best were charged 7-11
        cp on average and up to 124 cp (depth 10) or 81 cp (depth 12).
        `method="fresh"`: the root search finds the best move; the loss is a root search restricted
        to the best move minus one restricted to the played move, each of the three searches on a
        cleared engine (`ucinewgame`), floored at 0; the best move loses 0. Both sides of the
        difference are the same kind of search from the same empty hash, so neither inherits
        entries from another search: "restricted" compares a plain search with a restricted one
        that reuses the root search's hash, and the two differ on some positions by tens of
        centipawns (and by thousands where a losing move's score is unstable at the depth).

        Every position is searched from a cleared state (a new `game` key makes python-chess send
        `ucinewgame`, which empties Stockfish's hash and history tables; the restricted search then
        reuses the root search's entries, as a MultiPV search would): a loss depends on the
        position, move, depth and settings alone, not on what was analysed before, so a position
        reached by moves or given as a FEN scores the same, and games score the same in any order.

        SPIN-Bench's own chess analysis (spinbench/spinbench on GitHub:
        spinbench/tasks/evaluation/competitive/chess_score_moves.py and chess_score_plot.py)
        computes no centipawn loss. It ranks the played move among Stockfish's top 10 moves of the
        position before it (MultiPV 10 through the `stockfish` 3.28 wrapper, at that wrapper's
        default depth, 15; Skill Level 20, Hash 2048, 16 or 32 threads) and reports how often the
        move was in the top k (`StockfishTopMoves` reproduces it). "restricted" and "fresh" judge
        a move as that analysis does, by a search of the position before it in which the move is
        scored at the root; "after_move" has no counterpart there. None is SPIN-Bench's number."""
        import chess
        import chess.engine

        board = chess.Board() if start is None else chess.Board(start) if isinstance(start, str) else start.copy()
        wanted = set(range(len(moves))) if plies is None else set(plies)
        limit = chess.engine.Limit(depth=depth)
        losses: list[float] = []
        with self._lock:
            engine = self.analyser()
            for ply, uci in enumerate(moves):
                move = board.parse_uci(uci)  # raises chess.IllegalMoveError naming the move and position
                if ply in wanted:
                    losses.append(_move_loss(engine, board, move, limit, method))
                board.push(move)
        return losses

    def close(self) -> None:
        for engine in (self._engine, self._analyser):
            if engine is not None:
                engine.quit()
        self._engine = self._analyser = None


def _move_loss(engine: chess.engine.SimpleEngine, board: chess.Board, move: chess.Move,
               limit: chess.engine.Limit, method: LossMethod) -> float:
    mover = board.turn
    game = object()  # a new game: python-chess sends ucinewgame before the first search
    root = engine.analyse(board, limit, game=game)
    best = root["score"].pov(mover).score(mate_score=MATE_SCORE)
    if method == "fresh":
        pv = root.get("pv")
        if not pv or pv[0] == move:
            return 0.0
        # each search its own new game: no search starts from another's hash or history tables
        baseline = engine.analyse(board, limit, game=object(), root_moves=[pv[0]])["score"].pov(mover)
        played = engine.analyse(board, limit, game=object(), root_moves=[move])["score"].pov(mover)
        return max(0.0, float(baseline.score(mate_score=MATE_SCORE) - played.score(mate_score=MATE_SCORE)))
    if method == "restricted":
        pv = root.get("pv")
        if pv and pv[0] == move:
            return 0.0
        played = engine.analyse(board, limit, game=game, root_moves=[move])["score"].pov(mover)
    elif method == "after_move":
        board.push(move)
        try:
            played = engine.analyse(board, limit, game=game)["score"].pov(mover)
        finally:
            board.pop()
    else:
        assert_never(method)
    return max(0.0, float(best - played.score(mate_score=MATE_SCORE)))


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
