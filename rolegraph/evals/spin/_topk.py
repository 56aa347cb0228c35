"""SPIN-Bench's own move-quality measure on rolegraph's chess and connect-four games: each move's
`top_move_index` by SPIN-Bench's scoring scripts, recorded with the game, and the cumulative top-k
fractions per player pooled over games (its `compute_top_score`), beside a corrected measure."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from rolegraph.envs.spin import (
    FORCED_LAST_SCORES,
    SPINBENCH_STOCKFISH,
    SPINBENCH_TOP_MOVES,
    BitBullySolver,
    StockfishTopMoves,
    TopMovesSettings,
    chess_top_move_index,
    connect4_scores,
    connect4_top_move_index,
    stockfish_version,
)
from rolegraph.errors import UserError
from rolegraph.evals._core import Case, EvalRecord, Score
from rolegraph.evals.metrics import pooled_topk

if TYPE_CHECKING:
    import chess

TOPK_SCORE = "top1_share"
"""The scorer's name; its value is the share of the evaluated LLM seat's moves ranked first."""
TOPK_GAMES = ("chess", "connect4")
MAX_K = {"chess": 10, "connect4": 7}
"""The keys of SPIN-Bench's summary: chess 1-10 plus "outside the top 10", connect four 1-7."""
Measure = Literal["spinbench", "corrected"]
"""SPIN-Bench's measure as its scripts compute it, or the corrected one (`GameTopMoves.ranks` says how they differ)."""
MEASURES: tuple[Measure, ...] = ("spinbench", "corrected")
REFERENCE_SOLVER = {"chess": "stockfish", "connect4": "bitbully"}
"""The seat SPIN-Bench's summary never inspects (its "stockfish" and "our_solver"), by label prefix."""


class MoveRank(BaseModel):
    """One entry of a game's log as SPIN-Bench's scripts see it, and where its move ranks."""

    ply: int
    """The entry's place in the log (the turn's index; a drawn connect-four game's closing entry follows the last turn)."""
    seat: int
    """The seat that moved (0 is player 1)."""
    player: str
    """The seat's label: llm:ROLE or the solver's name."""
    move: str | None
    """The move played (UCI, or the column 1-7); None for a forfeit or the closing entry of a draw."""
    spinbench: int | None
    """SPIN-Bench's top_move_index: chess -1 when the move is not among the top ten (a forfeit
    included, whose refused action is logged there); connect four 0 for the log's last entry (its
    forced scores); None where SPIN-Bench records or counts none (a connect-four entry with no action)."""
    corrected: int | None
    """The index the engine or solver gives this very move, the last one included; None where no move was played."""
    top_moves: list[str] | None = None
    """Chess: Stockfish's top moves for the position before the move, best first."""
    scores: list[int] | None = None
    """Connect four: the seven column scores for the mover (-1000 for a full column)."""


class GameTopMoves(BaseModel):
    """A game's move ranks, as recorded in the scorer's metadata (`moves`)."""

    format_version: int = 1
    """Bumped when the recorded shape changes."""
    game: Literal["chess", "connect4"]
    players: list[str]
    """Each seat's label, in seat order."""
    inspected_seat: int
    """The seat SPIN-Bench's summary counts: player 1, unless player 1 is the reference solver."""
    llm_seats: list[int]
    """The seats the corrected measure counts: every LLM seat, each for its own player."""
    moves: list[MoveRank]
    """The entries of the seats either measure counts, in log order."""

    def topk(self) -> dict[str, Any]:
        """The ranks both measures pool, per player, as the report reads them (`metrics.pooled_topk`)."""
        return {"max_k": MAX_K[self.game], "outside": self.game == "chess",
                "measures": {measure: self.ranks(measure) for measure in MEASURES}}

    def ranks(self, measure: Measure) -> dict[str, list[int]]:
        """Per player, the ranks the measure pools. "spinbench": the inspected seat's entries, as
        SPIN-Bench counts them (player 1 only in an LLM-vs-LLM game; a chess forfeit as outside the
        top ten; connect four's last log entry forced to rank 0). "corrected": every LLM seat's
        played moves, each for its own player, the last one ranked by the solver too, a forfeit
        not counted (illegal tries are scored apart, by `illegal_per_move`).

        In complete connect-four games the forced entry changes nothing: a log ends on a winning
        move, which the solver ranks first anyway, or, in a draw, on an entry with no action."""
        out: dict[str, list[int]] = {}
        for m in self.moves:
            if measure == "spinbench" and m.seat == self.inspected_seat and m.spinbench is not None:
                out.setdefault(m.player, []).append(m.spinbench)
            elif measure == "corrected" and m.seat in self.llm_seats and m.corrected is not None:
                out.setdefault(m.player, []).append(m.corrected)
        return out


def inspected_seat(game: str, seats: Sequence[str]) -> int:
    """SPIN-Bench's rule: the first player's moves are counted, and its model named, unless it is
    the reference solver; then the second player's. In an LLM-vs-LLM game that is player 1 only,
    and against another program (random, MCTS) moving first, that program's moves."""
    return 1 if seats[0].startswith(REFERENCE_SOLVER[game]) else 0


def _log(output: dict[str, Any]) -> list[tuple[int, int, str | None]]:
    """(ply, seat, move) per entry of SPIN-Bench's game log for this game: one per turn, the
    forfeiting turn included, and for a drawn connect-four game one closing entry with no action
    (its game loop logs the terminated next player once more before it sees the draw)."""
    entries: list[tuple[int, int, str | None]] = [(i, t["player"], t["move"]) for i, t in enumerate(output["turns"])]
    drawn = output.get("forfeit") is None and all(r == 0 for r in output["returns"])
    if output["game"] == "connect4" and drawn and entries:
        entries.append((len(entries), 1 - entries[-1][1], None))
    return entries


@dataclass
class TopMoves:
    """The scorer: ranks the moves of the seats that either measure counts, records every
    MoveRank in its metadata with the pooled ranks per player (`metadata["topk"]`, which the report
    turns into the top-k table), and scores the share of the case's LLM seat's moves ranked first
    (corrected measure; 0.0 when it played none).

    Chess asks Stockfish for each position's top ten (`StockfishTopMoves` with `settings`,
    SPIN-Bench's by default); connect four asks bitbully for the seven column scores."""

    game: str
    settings: TopMovesSettings = SPINBENCH_TOP_MOVES
    stockfish_path: str | None = None
    name: str = TOPK_SCORE
    _stockfish: StockfishTopMoves | None = field(default=None, repr=False)
    _bitbully: BitBullySolver = field(default_factory=BitBullySolver, repr=False)

    def __post_init__(self) -> None:
        if self.game not in TOPK_GAMES:
            raise UserError(f"SPIN-Bench's top-k move fractions exist for {' and '.join(TOPK_GAMES)}, not {self.game}; "
                            "use --move-quality loss")

    def stockfish(self) -> StockfishTopMoves:
        if self._stockfish is None:
            self._stockfish = StockfishTopMoves(self.settings, self.stockfish_path)
        return self._stockfish

    def rank_game(self, output: dict[str, Any]) -> GameTopMoves:
        seats = list(output["seats"])
        inspected = inspected_seat(self.game, seats)
        llm = [i for i, s in enumerate(seats) if s.startswith("llm:")]
        wanted = {inspected, *llm}
        entries = _log(output)
        ranks: list[MoveRank] = []
        played: list[str] = []
        board = None
        if self.game == "chess":
            import chess

            board = chess.Board()  # SPIN-Bench sends each position as its FEN alone
        for n, (ply, seat, move) in enumerate(entries):
            last = n == len(entries) - 1
            if seat in wanted:
                ranks.append(self._rank(ply, seat, seats[seat], move, played, board, last))
            if move is not None:
                played.append(move)
                if board is not None:
                    board.push_uci(move)
        return GameTopMoves(game=self.game, players=seats, inspected_seat=inspected, llm_seats=llm,
                            moves=ranks)

    def _rank(self, ply: int, seat: int, player: str, move: str | None, played: list[str],
              board: chess.Board | None, last: bool) -> MoveRank:
        base = {"ply": ply, "seat": seat, "player": player, "move": move}
        if board is not None:  # chess
            top = self.stockfish().top_moves(board.fen())
            index = chess_top_move_index(top, move)
            return MoveRank(**base, spinbench=index, corrected=index if move is not None else None, top_moves=top)
        if move is None:  # SPIN-Bench skips an entry with no action; no move was played
            return MoveRank(**base, spinbench=None, corrected=None)
        column = int(move) - 1
        scores = connect4_scores([int(m) - 1 for m in played], self._bitbully)
        corrected = connect4_top_move_index(scores, column)
        spinbench = connect4_top_move_index(FORCED_LAST_SCORES if last else scores, column)
        return MoveRank(**base, spinbench=spinbench, corrected=corrected, scores=scores)

    def config(self) -> dict[str, Any]:
        """The measure's settings for the evaluation's config (chess: the engine's version too)."""
        if self.game == "connect4":
            return {"solver": "bitbully (Pons' scores: the values SPIN-Bench's connect4 solver service gives)"}
        return {"engine": stockfish_version(self.stockfish_path), **self.settings.as_dict(),
                "spinbench_used": SPINBENCH_STOCKFISH}

    async def __call__(self, case: Case, output: Any) -> Score:
        ranked = await asyncio.to_thread(self.rank_game, output)
        seat = int(case.metadata.get("llm_seat", ranked.inspected_seat))
        own = [m.corrected for m in ranked.moves if m.seat == seat and m.corrected is not None]
        first = sum(1 for r in own if r == 0)
        return Score(value=first / len(own) if own else 0.0,
                     explanation=f"{first} of {len(own)} moves ranked first" if own else "no moves played",
                     metadata={"topk": ranked.topk(), "moves": ranked.model_dump(mode="json")})

    def close(self) -> None:
        if self._stockfish is not None:
            self._stockfish.close()


def topk_summary(records: Iterable[EvalRecord], score: str = TOPK_SCORE) -> dict[str, Any]:
    """SPIN-Bench's `compute_top_score` over finished games, for both measures: per player, its
    ranks pooled over the games, then the share at most k - 1 for every k (and, in chess, the share
    outside the top ten), each over all its counted moves (SPIN-Bench divides chess by count[10] +
    count[0] and connect four by count[7]: both are every counted move). Empty without ranks."""
    return pooled_topk(r.scores[score].metadata["topk"] for r in records
                       if r.status == "ok" and score in r.scores and "topk" in r.scores[score].metadata)
