"""SPIN-Bench's top-k move measure: the played move's index in Stockfish's top ten (chess) or among
the solver's seven column scores (connect four) on hand-checked positions, its log rules (the forced
last connect-four entry, forfeits, draws, which seat is counted), and the cumulative fractions over a
small game log computed by hand and by a line-by-line port of SPIN-Bench's summary loop."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import chess
import pytest

from rolegraph.envs.spin import (
    EMPTY_BOARD_SCORES,
    FORCED_LAST_SCORES,
    FULL_COLUMN_SCORE,
    BitBullySolver,
    StockfishTopMoves,
    TopMovesSettings,
    chess_top_move_index,
    connect4_scores,
    connect4_top_move_index,
    top_moves_from_info,
)
from rolegraph.envs.spin._solvers import find_stockfish
from rolegraph.errors import UserError
from rolegraph.evals import Case, EvalRecord, EvalStore, Score, render_report, summarize
from rolegraph.evals.metrics import pooled_topk, topk_fractions
from rolegraph.evals.spin import TOPK_SCORE, GameTopMoves, MoveRank, TopMoves, game_benchmark, inspected_seat, topk_summary

# --- the wrapper's reading of a search's output ------------------------------------------------


def info(depth: int, multipv: int | None, move: str | None = None, **extra: Any) -> dict[str, Any]:
    line: dict[str, Any] = {"depth": depth, **extra}
    if multipv is not None:
        line["multipv"] = multipv
    if move is not None:
        line["pv"] = [chess.Move.from_uci(move)]
    return line


def test_top_moves_are_the_last_block_of_lines_at_the_search_depth_in_engine_order() -> None:
    infos = [
        {"string": "NNUE evaluation using nn.nnue enabled"},
        info(14, 1, "d2d4"), info(14, 2, "e2e4"), info(14, 3, "g1f3"),
        info(15, None, currmove="e2e4", currmovenumber=1),  # a progress line ends the block read backwards
        info(15, 1, "e2e4"), info(15, 2, "d2d4"), info(15, 3, "c2c4"),
    ]
    assert top_moves_from_info(infos, depth=15, count=10) == ["e2e4", "d2d4", "c2c4"]
    assert top_moves_from_info(infos, depth=15, count=2) == ["e2e4", "d2d4"]  # lines past the count are skipped
    # a final block at another depth gives nothing, as the wrapper's string comparison of depths does
    assert top_moves_from_info(infos[:4], depth=15, count=10) == []


def test_a_move_missing_from_the_top_moves_is_minus_one() -> None:
    top = ["e2e4", "d2d4", "c2c4"]
    assert [chess_top_move_index(top, m) for m in ("e2e4", "c2c4", "h2h4", None)] == [0, 2, -1, -1]


# --- connect four: SPIN-Bench's ranking of column scores -------------------------------------


def test_tied_columns_share_the_smaller_index_and_the_next_score_skips_ahead() -> None:
    assert [connect4_top_move_index([1, 1, 0], a) for a in range(3)] == [0, 0, 2]
    assert connect4_top_move_index([1, 1, 0], 7) is None  # an action outside the columns gets none
    assert connect4_top_move_index([1, 1, 0], -1) is None
    assert [connect4_top_move_index(FORCED_LAST_SCORES, a) for a in range(7)] == [0] * 7


@pytest.fixture(scope="module")
def bitbully() -> BitBullySolver:
    return BitBullySolver()


def test_the_empty_board_has_spinbench_fixed_scores(bitbully: BitBullySolver) -> None:
    scores = connect4_scores([], bitbully)
    assert scores == list(EMPTY_BOARD_SCORES) == [-2, -1, 0, 1, 0, -1, -2]
    # sorted: 1, 0, 0, -1, -1, -2, -2
    assert [connect4_top_move_index(scores, c) for c in range(7)] == [5, 3, 1, 0, 1, 3, 5]


def test_a_full_column_scores_minus_1000_and_stays_in_the_list(bitbully: BitBullySolver) -> None:
    scores = connect4_scores([0] * 6, bitbully)  # column 1 filled, first player to move
    assert scores == [FULL_COLUMN_SCORE, -2, 0, 1, -2, 0, -2]
    # sorted: 1, 0, 0, -2, -2, -2, -1000: the two 0 columns tie at 1, the -2 columns skip to 3
    assert [connect4_top_move_index(scores, c) for c in range(1, 7)] == [3, 1, 0, 3, 1, 3]


def test_a_winning_move_scores_22_minus_the_stones_the_winner_has_placed(bitbully: BitBullySolver) -> None:
    scores = connect4_scores([0, 1, 0, 1, 0, 1], bitbully)  # the first player wins in column 1 with its 4th stone
    assert scores[0] == 22 - 4
    assert connect4_top_move_index(scores, 0) == 0


def c4_output(moves: list[str], *, seats: tuple[str, str] = ("llm:player", "bitbully"), returns: tuple[float, float],
              forfeit: int | None = None) -> dict[str, Any]:
    turns = [{"player": i % 2, "move": m} for i, m in enumerate(moves)]
    if forfeit is not None:
        turns.append({"player": forfeit, "move": None})
    return {"game": "connect4", "seats": list(seats), "returns": list(returns), "forfeit": forfeit, "turns": turns}


def test_the_last_log_entry_is_ranked_first_by_spinbench_and_by_the_solver_in_the_corrected_measure() -> None:
    scorer = TopMoves("connect4")
    # a log that ends on a poor move (column 1 on the empty board): SPIN-Bench forces its scores
    ended = scorer.rank_game(c4_output(["1"], returns=(1.0, -1.0)))
    assert [(m.spinbench, m.corrected) for m in ended.moves] == [(0, 5)]
    # a drawn game's log closes with an entry with no action, so its last move is not the last entry
    drawn = scorer.rank_game(c4_output(["1"], returns=(0.0, 0.0)))
    assert [(m.spinbench, m.corrected) for m in drawn.moves if m.move is not None] == [(5, 5)]
    # a forfeit is no move: SPIN-Bench skips an entry with no action, and so does the corrected measure
    forfeited = scorer.rank_game(c4_output(["4", "4"], returns=(-1.0, 1.0), forfeit=0))
    assert [(m.move, m.spinbench, m.corrected) for m in forfeited.moves] == [("4", 0, 0), (None, None, None)]


def test_a_won_game_ranks_alike_in_both_measures(bitbully: BitBullySolver) -> None:
    # the LLM (first) stacks column 1 against a passive second player; its fourth stone wins
    ranked = TopMoves("connect4").rank_game(c4_output(["1", "2", "1", "2", "1", "2", "1"], returns=(1.0, -1.0)))
    assert [m.ply for m in ranked.moves] == [0, 2, 4, 6]  # the solver's seat is not ranked
    assert [m.spinbench for m in ranked.moves] == [m.corrected for m in ranked.moves] == [5, 0, 0, 0]
    assert ranked.moves[-1].scores is not None and ranked.moves[-1].scores[0] == 18


def test_spinbench_counts_player_one_unless_it_is_the_reference_solver() -> None:
    assert inspected_seat("chess", ["llm:a", "stockfish-0"]) == 0
    assert inspected_seat("chess", ["stockfish-3", "llm:a"]) == 1
    assert inspected_seat("connect4", ["bitbully", "llm:a"]) == 1
    assert inspected_seat("connect4", ["llm:b", "llm:a"]) == 0  # LLM against LLM: player 1 only
    assert inspected_seat("connect4", ["random", "llm:a"]) == 0  # another program moving first is counted


def test_top_k_is_refused_for_games_spinbench_does_not_rank() -> None:
    with pytest.raises(UserError, match="tictactoe"):
        TopMoves("tictactoe")
    with pytest.raises(UserError, match="tictactoe"):
        game_benchmark("tictactoe", move_quality="topk")
    names = [s.name for s in game_benchmark("connect4").scorers]
    assert "bitbully_loss" in names and TOPK_SCORE in names
    assert TOPK_SCORE not in [s.name for s in game_benchmark("tictactoe").scorers]
    assert game_benchmark("connect4", move_quality="topk").config["move_quality"] == "topk"


# --- the cumulative fractions over a small game log --------------------------------------------


def rank(ply: int, seat: int, player: str, move: str | None, spinbench: int | None,
         corrected: int | None) -> MoveRank:
    return MoveRank(ply=ply, seat=seat, player=player, move=move, spinbench=spinbench, corrected=corrected)


# three chess games: llm:a as White against Stockfish, llm:a as Black with a forfeit at the end, and
# llm:a (White) against llm:b; only the LLM entries are listed (the scorer ranks only those here)
CHESS_LOG = [
    GameTopMoves(game="chess", players=["llm:a", "stockfish-0"], inspected_seat=0, llm_seats=[0], moves=[
        rank(0, 0, "llm:a", "e2e4", 0, 0), rank(2, 0, "llm:a", "d2d4", 2, 2),
        rank(4, 0, "llm:a", "a2a4", -1, -1), rank(6, 0, "llm:a", "h2h3", 9, 9)]),
    GameTopMoves(game="chess", players=["stockfish-0", "llm:a"], inspected_seat=1, llm_seats=[1], moves=[
        rank(1, 1, "llm:a", "e7e5", 1, 1), rank(3, 1, "llm:a", "g8f6", 0, 0),
        rank(5, 1, "llm:a", None, -1, None)]),
    GameTopMoves(game="chess", players=["llm:a", "llm:b"], inspected_seat=0, llm_seats=[0, 1], moves=[
        rank(0, 0, "llm:a", "e2e4", 0, 0), rank(1, 1, "llm:b", "a7a6", 3, 3),
        rank(2, 0, "llm:a", "f1c4", 4, 4), rank(3, 1, "llm:b", "h7h5", -1, -1)]),
]


def records(log: list[GameTopMoves]) -> list[EvalRecord]:
    return [EvalRecord(case_id=f"g{i}", repeat=0, status="ok",
                       scores={TOPK_SCORE: Score(value=0.0, metadata={"topk": g.topk(), "moves": g.model_dump()})})
            for i, g in enumerate(log)]


def spinbench_compute_top_score(log: list[GameTopMoves]) -> dict[str, dict[int, float]]:
    """SPIN-Bench's chess_score_plot.compute_top_score, its counting loop kept line by line."""
    result: dict[str, dict[int, float]] = {}
    top_index = {1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 7: 0, 8: 0, 9: 0, 10: 0, 0: 0}
    for game in log:
        model = game.players[0] if game.players[0] != "stockfish-0" else game.players[1]
        inspect = 0 if game.players[0] != "stockfish-0" else 1
        if model not in result:
            result[model] = copy.deepcopy(top_index)  # type: ignore[arg-type]
        for entry in game.moves:
            if entry.seat == inspect:
                assert entry.spinbench is not None
                if entry.spinbench == -1:
                    result[model][0] += 1
                    continue
                for k in result[model]:
                    if k >= entry.spinbench + 1:
                        result[model][k] += 1
    for model in result:
        this_sum = result[model][10] + result[model][0]
        for i in range(0, 11):
            result[model][i] = result[model][i] / this_sum
    return result


def test_chess_fractions_over_a_small_log_match_the_hand_count_and_spinbench_loop() -> None:
    summary = topk_summary(records(CHESS_LOG))
    assert summary["max_k"] == 10 and summary["outside"] is True
    spin = summary["measures"]["spinbench"]
    # llm:a's counted entries: 0, 2, -1, 9 | 1, 0, -1 (the forfeit) | 0, 4 (llm:b, player 2, is not counted)
    assert list(spin) == ["llm:a"] and spin["llm:a"]["n"] == 9
    by_hand = {"1": 3 / 9, "2": 4 / 9, "3": 5 / 9, "4": 5 / 9, "5": 6 / 9, "6": 6 / 9, "7": 6 / 9, "8": 6 / 9,
               "9": 6 / 9, "10": 7 / 9, "outside": 2 / 9}
    assert spin["llm:a"]["fractions"] == pytest.approx(by_hand)
    port = spinbench_compute_top_score(CHESS_LOG)["llm:a"]
    assert {**{str(k): port[k] for k in range(1, 11)}, "outside": port[0]} == pytest.approx(by_hand)
    # corrected: the forfeit is no move, and llm:b's moves count for llm:b
    corrected = summary["measures"]["corrected"]
    assert corrected["llm:a"]["n"] == 8
    assert corrected["llm:a"]["fractions"]["1"] == pytest.approx(3 / 8)
    assert corrected["llm:a"]["fractions"]["outside"] == pytest.approx(1 / 8)
    assert corrected["llm:b"]["n"] == 2
    assert corrected["llm:b"]["fractions"] == pytest.approx(
        {"1": 0, "2": 0, "3": 0, **{str(k): 0.5 for k in range(4, 11)}, "outside": 0.5})


def test_connect4_fractions_divide_by_every_counted_move() -> None:
    log = [GameTopMoves(game="connect4", players=["llm:a", "bitbully"], inspected_seat=0, llm_seats=[0], moves=[
               rank(0, 0, "llm:a", "4", 0, 0), rank(2, 0, "llm:a", "1", 5, 5), rank(4, 0, "llm:a", "3", 0, 2)]),
           GameTopMoves(game="connect4", players=["bitbully", "llm:a"], inspected_seat=1, llm_seats=[1], moves=[
               rank(1, 1, "llm:a", "3", 1, 1), rank(3, 1, "llm:a", None, None, None)])]
    summary = topk_summary(records(log))
    assert summary["max_k"] == 7 and summary["outside"] is False
    assert summary["measures"]["spinbench"]["llm:a"]["n"] == 4
    assert summary["measures"]["spinbench"]["llm:a"]["fractions"] == pytest.approx(
        {"1": 2 / 4, "2": 3 / 4, "3": 3 / 4, "4": 3 / 4, "5": 3 / 4, "6": 1.0, "7": 1.0, "outside": 0.0})
    assert summary["measures"]["corrected"]["llm:a"]["fractions"]["1"] == pytest.approx(1 / 4)
    assert summary["measures"]["corrected"]["llm:a"]["fractions"]["3"] == pytest.approx(3 / 4)


def test_fractions_refuse_ranks_past_the_list_and_are_empty_without_ranks() -> None:
    with pytest.raises(ValueError, match="ranks must be"):
        topk_fractions([0, 10], 10)
    assert pooled_topk([]) == {}
    assert topk_summary([EvalRecord(case_id="x", repeat=0, status="error", error="boom")]) == {}


def test_the_report_shows_the_fractions_per_measure(tmp_path: Path) -> None:
    store = EvalStore(tmp_path / "results.sqlite")
    store.set_meta(benchmark="spin-chess-stockfish-0-free", config={})
    writer = store.writer()
    for r in records(CHESS_LOG):
        writer.put(r)
    writer.close()
    summary = summarize(store)
    assert summary["topk"][TOPK_SCORE]["measures"]["spinbench"]["llm:a"]["n"] == 9
    html = render_report(store)
    assert f"{TOPK_SCORE}: cumulative top-k fractions, spinbench measure" in html
    assert "outside top 10" in html and "0.778" in html  # llm:a's top-10 share, 7/9
    assert f"{TOPK_SCORE}: corrected top-k fraction by k" in html  # the plot


# --- chess: Stockfish at SPIN-Bench's search settings ------------------------------------------

# 1. f3 e5 2. g4 : Qh4 mates
MATE_FEN = "rnbqkbnr/pppp1ppp/8/4p3/6P1/5P2/PPPPP2P/RNBQKBNR b KQkq - 0 2"


@pytest.fixture(scope="module")
def top_moves() -> Iterator[StockfishTopMoves]:
    try:
        find_stockfish()
    except UserError:
        pytest.skip("stockfish is not installed (Debian: apt-get install stockfish)")
    engine = StockfishTopMoves(TopMovesSettings(hash_mb=16))  # SPIN-Bench's depth and MultiPV; a small hash
    yield engine
    engine.close()


def test_a_forced_mate_is_the_top_move(top_moves: StockfishTopMoves) -> None:
    top = top_moves.top_moves(MATE_FEN)
    assert len(top) == 10 and len(set(top)) == 10
    assert chess_top_move_index(top, "d8h4") == 0


# 1. e4 e5 2. Nf3 Nc6 3. Bb5 a6 4. Ba4 b5 : the bishop must retreat to b3 (every other move loses it)
RUY_MOVES = ["e2e4", "e7e5", "g1f3", "b8c6", "f1b5", "a7a6", "b5a4", "b7b5"]
RUY_FEN = "r1bqkbnr/2pp1ppp/p1n5/1p2p3/B3P3/5N2/PPPP1PPP/RNBQK2R w KQkq - 0 5"


def test_a_quiet_retreat_is_the_top_move_and_a_knight_to_the_rim_is_outside_the_top_ten(
        top_moves: StockfishTopMoves) -> None:
    board = chess.Board(RUY_FEN)
    assert board.legal_moves.count() == 26
    top = top_moves.top_moves(RUY_FEN)
    assert chess_top_move_index(top, "a4b3") == 0  # +0.5 against -3 or worse for every other move (depth 15)
    assert chess_top_move_index(top, "f3h4") == -1  # 25th of 26 at depth 15: loses the bishop and more


def test_a_chess_game_ranks_the_position_before_each_llm_move_and_a_forfeit_as_outside(
        top_moves: StockfishTopMoves) -> None:
    # a shallow search keeps this fast: it checks which positions are asked and how entries count
    scorer = TopMoves("chess", settings=TopMovesSettings(depth=8, hash_mb=16))
    try:
        moves = [*RUY_MOVES, "f3h4", "d8h4"]
        turns = [{"player": i % 2, "move": m} for i, m in enumerate(moves)] + [{"player": 0, "move": None}]
        output = {"game": "chess", "seats": ["llm:player", "stockfish-0"], "returns": [-1.0, 1.0], "forfeit": 0,
                  "turns": turns}
        ranked = scorer.rank_game(output)
        assert [m.ply for m in ranked.moves] == [0, 2, 4, 6, 8, 10]  # White's entries only, the forfeit included
        eighth = ranked.moves[4]
        assert eighth.move == "f3h4" and eighth.top_moves is not None and eighth.top_moves[0] == "a4b3"
        assert (eighth.spinbench, eighth.corrected) == (-1, -1)
        assert (ranked.moves[5].spinbench, ranked.moves[5].corrected) == (-1, None)
        score = asyncio.run(scorer(Case(id="g", input={}, metadata={"llm_seat": 0}), output))
        assert score.metadata["topk"]["measures"]["spinbench"]["llm:player"][-2:] == [-1, -1]
        assert len(score.metadata["topk"]["measures"]["corrected"]["llm:player"]) == 5
        assert score.value == sum(m.corrected == 0 for m in ranked.moves) / 5
    finally:
        scorer.close()


def test_the_benchmark_config_records_the_engine_and_its_settings(top_moves: StockfishTopMoves) -> None:
    config = game_benchmark("chess", move_quality="both", loss_method="fresh").config
    assert config["move_quality"] == "both" and config["loss"] == {"method": "fresh", "depth": 12}
    assert config["topk"]["engine"].startswith("Stockfish")
    assert (config["topk"]["depth"], config["topk"]["count"], config["topk"]["hash_mb"]) == (15, 10, 2048)
    assert config["topk"]["spinbench_used"]["threads"] == 32


# --- the command -----------------------------------------------------------------------------


def first_legal_move_server() -> Any:
    """An OpenAI-style chat endpoint whose player always plays the first legal move it is shown."""
    import json

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        move = user.split("Legal moves: ")[1].split("\n")[0].split(", ")[0]
        content = json.dumps({"reason": "first", "action": move})
        return JSONResponse({"id": "c", "object": "chat.completion", "created": 0, "model": "m",
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": content}}],
                             "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

    async def models(request: Request) -> JSONResponse:
        return JSONResponse({"data": [{"id": "m", "owned_by": "openai"}]})

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]), Route("/v1/models", models)])


def test_the_connect4_command_prints_and_reports_both_measures(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from tests.conftest import serve_app

    with serve_app(first_legal_move_server()) as port:
        (tmp_path / "rolegraph.toml").write_text(
            f'[endpoints.stub]\nbase_url = "http://127.0.0.1:{port}/v1"\ndialect = "openai"\n'
            '[roles.default]\nendpoint = "stub"\nmodel = "m"\n')
        done = subprocess.run([sys.executable, "-m", "rolegraph", "eval", "spin.connect4", "--games", "2",
                               "--out", str(tmp_path / "evals")], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "top-k move fractions (spinbench)" in done.stdout and "top-k move fractions (corrected)" in done.stdout
    summary = json.loads(next((tmp_path / "evals").glob("*/summary.json")).read_text())
    # the LLM moves first in one game and second in the other: both count for llm:player
    moves = {measure: entry["llm:player"]["n"] for measure, entry in summary["topk"]["measures"].items()}
    assert moves["spinbench"] == moves["corrected"] > 0
    assert summary["metrics"][TOPK_SCORE]["n"] == 2 and "bitbully_loss" in summary["metrics"]
    report = next((tmp_path / "evals").glob("*/report/report.html")).read_text()
    assert "cumulative top-k fractions, spinbench measure" in report


def test_an_unknown_move_quality_is_refused_before_any_game() -> None:
    from typer.testing import CliRunner

    from rolegraph.cli import app

    refused = CliRunner().invoke(app, ["eval", "spin.connect4", "--move-quality", "top5"])
    assert isinstance(refused.exception, UserError)
    assert "--move-quality is topk, loss or both, not 'top5'" in str(refused.exception)
