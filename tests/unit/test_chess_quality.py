"""Centipawn loss from Stockfish: scored from any position, the best move losing 0, and the same
losses whatever was analysed before (needs the stockfish binary; skipped without it)."""

from __future__ import annotations

from collections.abc import Iterator

import chess
import pytest

from rolegraph.envs.spin import LossMethod, StockfishPlayer
from rolegraph.envs.spin._solvers import find_stockfish
from rolegraph.errors import UserError
from rolegraph.evals.spin._bench import MoveQuality

DEPTH = 8  # shallow, to keep the file fast; the positions below are decided well within it

# 1. e4 e5 2. Nf3 Qh4?? : the queen hangs to Nxh4
HANGING_MOVES = ["e2e4", "e7e5", "g1f3", "d8h4"]
HANGING_FEN = "rnb1kbnr/pppp1ppp/8/4p3/4P2q/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3"
# 1. f3 e5 2. g4 : Qh4 mates
MATE_MOVES = ["f2f3", "e7e5", "g2g4"]
MATE_FEN = "rnbqkbnr/pppp1ppp/8/4p3/6P1/5P2/PPPPP2P/RNBQKBNR b KQkq - 0 2"

GAME_A = ["e2e4", "e7e5", "g1f3", "b8c6", "f1c4", "g8f6", "f3g5", "d7d5", "e4d5", "f6d5", "g5f7", "e8f7"]
GAME_B = ["d2d4", "d7d5", "c2c4", "e7e6", "b1c3", "g8f6", "c1g5", "f8e7", "e2e3", "b8d7", "g1f3", "h7h6"]


@pytest.fixture
def stockfish() -> Iterator[StockfishPlayer]:
    try:
        find_stockfish()
    except UserError:
        pytest.skip("stockfish is not installed (Debian: apt-get install stockfish)")
    sf = StockfishPlayer()
    yield sf
    sf.close()


def board_after(moves: list[str]) -> chess.Board:
    board = chess.Board()
    for m in moves:
        board.push_uci(m)
    return board


def test_the_fens_are_the_positions_the_moves_reach() -> None:
    assert board_after(HANGING_MOVES).fen() == HANGING_FEN
    assert board_after(MATE_MOVES).fen() == MATE_FEN


def test_best_move_loses_nothing_and_a_blunder_loses_a_lot_from_a_fen(stockfish: StockfishPlayer) -> None:
    take, ignore = stockfish.centipawn_losses(["f3h4"], start=HANGING_FEN, depth=DEPTH) + \
        stockfish.centipawn_losses(["a2a3"], start=HANGING_FEN, depth=DEPTH)
    assert take == 0.0
    assert ignore > 400  # the queen not taken (black's queen then takes e4 with check)
    mate, miss = stockfish.centipawn_losses(["d8h4"], start=MATE_FEN, depth=DEPTH) + \
        stockfish.centipawn_losses(["a7a6"], start=MATE_FEN, depth=DEPTH)
    assert mate == 0.0
    assert miss > 5000  # mate in one is worth 9,999; the position without it far less


@pytest.mark.parametrize("method", ["restricted", "after_move", "fresh"])
def test_a_fen_and_the_moves_that_reach_it_score_alike(stockfish: StockfishPlayer, method: LossMethod) -> None:
    for moves, fen, replies in ((HANGING_MOVES, HANGING_FEN, ["f3h4", "a2a3", "b1c3"]),
                                (MATE_MOVES, MATE_FEN, ["d8h4", "a7a6", "g8f6"])):
        for reply in replies:
            from_fen = stockfish.centipawn_losses([reply], start=fen, depth=DEPTH, method=method)
            from_board = stockfish.centipawn_losses([reply], start=board_after(moves), depth=DEPTH,
                                                    method=method)
            from_start = stockfish.centipawn_losses([*moves, reply], [len(moves)], depth=DEPTH,
                                                    method=method)
            assert from_fen == from_board == from_start, (fen, reply)


def test_fresh_losses_rank_the_best_move_at_zero_and_the_blunders_high(stockfish: StockfishPlayer) -> None:
    # "fresh": the best move's and the played move's restricted searches, each on a cleared engine
    take, ignore = (stockfish.centipawn_losses([m], start=HANGING_FEN, depth=DEPTH, method="fresh")[0]
                    for m in ("f3h4", "a2a3"))
    assert take == 0.0 and ignore > 400
    mate, miss = (stockfish.centipawn_losses([m], start=MATE_FEN, depth=DEPTH, method="fresh")[0]
                  for m in ("d8h4", "a7a6"))
    assert mate == 0.0 and miss > 5000
    # a loss is the position's and the move's alone: the same whatever the engine searched before
    before = stockfish.centipawn_losses(["b1c3"], start=HANGING_FEN, depth=DEPTH, method="fresh")
    stockfish.centipawn_losses(GAME_A, depth=DEPTH, method="fresh")
    assert stockfish.centipawn_losses(["b1c3"], start=HANGING_FEN, depth=DEPTH, method="fresh") == before


def test_a_start_board_is_not_changed(stockfish: StockfishPlayer) -> None:
    board = board_after(HANGING_MOVES)
    stockfish.centipawn_losses(["f3h4", "e8d8"], start=board, depth=DEPTH)
    assert board.fen() == HANGING_FEN and len(board.move_stack) == len(HANGING_MOVES)


def test_an_illegal_move_is_refused(stockfish: StockfishPlayer) -> None:
    with pytest.raises(chess.IllegalMoveError):
        stockfish.centipawn_losses(["e2e5"], depth=DEPTH)


def _output(moves: list[str]) -> dict[str, object]:
    return {"moves": moves, "turns": [{"move": m, "player": i % 2} for i, m in enumerate(moves)]}


def test_move_quality_does_not_depend_on_what_was_analysed_before(stockfish: StockfishPlayer) -> None:
    # two scorers, each with its own engine process, analyse the same games in opposite orders;
    # one of them analyses a game a second time after the other game
    first, second = MoveQuality("chess", depth=DEPTH), MoveQuality("chess", depth=DEPTH)
    try:
        a_then_b = [first.losses(_output(GAME_A), 0), first.losses(_output(GAME_B), 1)]
        b_then_a = [second.losses(_output(GAME_B), 1), second.losses(_output(GAME_A), 0)][::-1]
        assert a_then_b == b_then_a
        assert first.losses(_output(GAME_A), 0) == a_then_b[0]
        # the moves of the other seat being analysed too changes nothing either
        both = stockfish.centipawn_losses(GAME_A, depth=DEPTH)
        assert both[0::2] == a_then_b[0]
        assert any(a_then_b[0]) and any(a_then_b[1])  # not all best moves: the losses are worth comparing
    finally:
        first.close()
        second.close()
