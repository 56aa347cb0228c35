"""SPIN-Bench's move-quality measure at the level of one position: where the played move ranks
among Stockfish's top ten moves (chess) or among the solver's seven column scores (connect four),
by the rules of SPIN-Bench's scoring scripts (`spinbench/tasks/evaluation/competitive/`)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from rolegraph.envs.spin._games import ConnectFour
from rolegraph.envs.spin._solvers import BitBullySolver, find_stockfish

if TYPE_CHECKING:
    import chess.engine

EMPTY_BOARD_SCORES = (-2, -1, 0, 1, 0, -1, -2)
"""The seven scores SPIN-Bench's solver service answers for the empty board, without solving it."""
FULL_COLUMN_SCORE = -1000
"""A column that cannot be played: Pascal Pons' solver scores it -1000 and the list keeps it."""
FORCED_LAST_SCORES = (-18,) * 7
"""What SPIN-Bench writes as the scores of a connect-four log's last entry, which it never sends to
the solver: every column ties, so that entry's move ranks 0 whatever it was."""


@dataclass(frozen=True)
class TopMovesSettings:
    """The engine settings of SPIN-Bench's chess move scoring (`chess_score_moves.py`, through the
    `stockfish` 3.28.0 wrapper): `get_top_moves(10)` at the wrapper's default depth 15, with
    Skill Level 20 (UCI_LimitStrength off), Move Overhead 10 and Hash 2048 MB.

    Threads: SPIN-Bench used 32 (16 and 8 in earlier versions of its script); the default here is
    1, because a multi-threaded search is not reproducible and gives another top ten on another
    run. SPIN-Bench's setup names Stockfish 17.1; the engine found here may be another version
    (`StockfishTopMoves.version` says which, and the evaluation's config records it)."""

    depth: int = 15
    """Search depth (`go depth`); only the lines of this depth are read, as the wrapper does."""
    count: int = 10
    """MultiPV: how many top moves are asked for."""
    hash_mb: int = 2048
    threads: int = 1
    skill: int = 20
    move_overhead_ms: int = 10

    def options(self) -> dict[str, Any]:
        """The UCI options sent before the first search."""
        return {"Threads": self.threads, "Hash": self.hash_mb, "Skill Level": self.skill,
                "UCI_LimitStrength": False, "Move Overhead": self.move_overhead_ms}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


SPINBENCH_TOP_MOVES = TopMovesSettings()
ENGINE_TIMEOUT_S = 300.0
"""How long a command (not a search) may take to start before the engine counts as hung."""
SPINBENCH_STOCKFISH = {"version": "Stockfish 17.1", "threads": 32, "earlier_threads": [16, 8],
                       "wrapper": "stockfish 3.28.0"}
"""What SPIN-Bench's own runs used where it differs from, or is not shown by, TopMovesSettings."""


def top_moves_from_info(infos: Iterable[Mapping[str, Any]], *, depth: int, count: int) -> list[str]:
    """The top moves as the `stockfish` 3.28.0 wrapper's `get_top_moves` reads them from one
    search's output: going back from the end, every line with a `multipv` at exactly `depth` (and
    a multipv number of at most `count`) gives its first PV move, until the first line that is not
    such a line; the moves keep the engine's order. `infos` are the search's info lines in order,
    as python-chess parses them."""
    lines = list(infos)
    top: list[str] = []
    for info in reversed(lines):
        if "multipv" not in info or "depth" not in info or info["depth"] != depth:
            break
        if info["multipv"] <= count and info.get("pv"):
            top.insert(0, info["pv"][0].uci())
    return top


def chess_top_move_index(top: Sequence[str], move: str | None) -> int:
    """The played UCI move's position in the top-move list, -1 when it is not there (a refused
    move, recorded as None, is never there)."""
    return top.index(move) if move in top else -1


@dataclass
class StockfishTopMoves:
    """Stockfish answering SPIN-Bench's question for one position at a time: the top moves, each
    search from a cleared engine (`ucinewgame`, as the wrapper's `set_fen_position` sends) and from
    the FEN alone, as SPIN-Bench sends it. One engine process, calls serialised, started on first use.

    It sends the wrapper's UCI commands through python-chess (`ucinewgame`, `position fen`,
    `setoption MultiPV`, `go depth`) and reads the answer by the wrapper's rule
    (`top_moves_from_info`); on positions checked against the wrapper itself the lists were equal."""

    settings: TopMovesSettings = SPINBENCH_TOP_MOVES
    path: str | None = None
    _engine: chess.engine.SimpleEngine | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def engine(self) -> chess.engine.SimpleEngine:
        if self._engine is None:
            import chess.engine

            # a 2 GB hash takes seconds to allocate and clear on a busy machine (ucinewgame clears
            # it before every search): python-chess's 10 s default would give up on a healthy engine
            self._engine = chess.engine.SimpleEngine.popen_uci(find_stockfish(self.path), timeout=ENGINE_TIMEOUT_S)
            self._engine.configure(self.settings.options())
        return self._engine

    @property
    def version(self) -> str:
        """The engine's name and version as it reports them ('Stockfish 15.1')."""
        with self._lock:
            return str(self.engine().id.get("name", "unknown"))

    def top_moves(self, fen: str) -> list[str]:
        """The engine's top moves (UCI) for the position `fen`, best first."""
        import chess
        import chess.engine

        board = chess.Board(fen)
        limit = chess.engine.Limit(depth=self.settings.depth)
        with self._lock:
            engine = self.engine()
            with engine.analysis(board, limit, multipv=self.settings.count, game=object()) as search:
                infos = [dict(info) for info in search]
        return top_moves_from_info(infos, depth=self.settings.depth, count=self.settings.count)

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.quit()
                self._engine = None


def stockfish_version(path: str | None = None) -> str:
    """The name the Stockfish binary reports, from a short UCI handshake (no search, no hash)."""
    import chess.engine

    engine = chess.engine.SimpleEngine.popen_uci(find_stockfish(path))
    try:
        return str(engine.id.get("name", "unknown"))
    finally:
        engine.quit()


def connect4_scores(columns: Sequence[int], solver: BitBullySolver) -> list[int]:
    """The seven column scores of the position reached by `columns` (0-based moves), for the
    player to move, as SPIN-Bench's solver service answers them: Pons' convention (a win is
    22 minus the stones the winner will have placed, a loss its negative, a draw 0), -1000 for a
    full column, and the fixed EMPTY_BOARD_SCORES for the empty board."""
    if not columns:
        return list(EMPTY_BOARD_SCORES)
    env = ConnectFour()
    env.replay([str(c + 1) for c in columns])
    scored = solver.scores(env)  # legal columns only, numbered 1-7
    return [scored.get(str(c + 1), FULL_COLUMN_SCORE) for c in range(7)]


def connect4_top_move_index(scores: Sequence[int], action: int) -> int | None:
    """SPIN-Bench's `top_move_index` for column `action` (0-based): the position of its score in
    the scores sorted from best to worst, so tied columns share the smaller index and the next
    score skips ahead ([1, 1, 0] gives 0, 0, 2); None for an action outside 0-6."""
    if not 0 <= action < len(scores):
        return None
    return sorted(scores, reverse=True).index(scores[action])
