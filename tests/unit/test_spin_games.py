"""SPIN-Bench environments against their engines, the solvers, and Elo."""

from __future__ import annotations

import pytest

from rolegraph.envs.spin import (
    BitBullySolver,
    HanabiBot,
    IllegalMove,
    MCTSPlayer,
    Minimax,
    RandomPlayer,
    StockfishPlayer,
    make_env,
    make_opponent,
)
from rolegraph.envs.spin._games import parse_hanabi
from rolegraph.envs.spin._solvers import find_stockfish, tictactoe_move_values
from rolegraph.errors import UserError
from rolegraph.evals.spin.elo import PairRecord, compute_elo, expected, tally


def play(env, moves):  # type: ignore[no-untyped-def]
    for m in moves:
        env.apply(m)
    return env


def test_tictactoe_moves_win_and_draw() -> None:
    env = make_env("tictactoe")
    assert env.legal_moves() == ["A1", "B1", "C1", "A2", "B2", "C2", "A3", "B3", "C3"]
    assert env.current_player() == 0
    play(env, ["A1", "A2", "B1", "B2"])
    assert "A1" not in env.legal_moves() and len(env.legal_moves()) == 5
    assert env.describe(0).splitlines()[1] == "1  X X ."
    env.apply("c1")  # case forgiven, recorded as the legal name
    assert env.moves[-1] == "C1" and env.is_terminal() and env.returns() == [1.0, -1.0]
    draw = play(make_env("tictactoe"), ["B2", "A1", "C1", "A3", "A2", "C2", "B1", "B3", "C3"])
    assert draw.is_terminal() and draw.returns() == [0.0, 0.0]


def test_illegal_moves_are_refused_with_the_legal_list() -> None:
    env = make_env("tictactoe", moves=["B2"])
    with pytest.raises(IllegalMove, match=r"'B2' is not a legal move here\. Legal moves: A1, B1"):
        env.apply("B2")
    with pytest.raises(IllegalMove):
        env.apply("D4")
    assert env.moves == ["B2"]  # nothing changed


def test_connect_four_vertical_win() -> None:
    env = make_env("connect4")
    assert env.legal_moves() == [str(c) for c in range(1, 8)]
    play(env, ["4", "5", "4", "5", "4", "5"])
    assert not env.is_terminal()
    env.apply("4")
    assert env.is_terminal() and env.returns() == [1.0, -1.0]
    full = make_env("connect4", moves=["1"] * 6)
    assert "1" not in full.legal_moves()


def test_chess_uci_checkmate_and_san_forgiven() -> None:
    env = make_env("chess")
    assert len(env.legal_moves()) == 20 and "e2e4" in env.legal_moves()
    env.apply("f3")  # SAN is accepted and recorded in UCI
    assert env.moves == ["f2f3"]
    play(env, ["e7e5", "g2g4", "d8h4"])
    assert env.is_terminal() and env.returns() == [-1.0, 1.0] and env.termination() == "checkmate"
    with pytest.raises(IllegalMove, match="UCI"):
        make_env("chess").apply("castle!")
    with pytest.raises(IllegalMove, match="not legal"):
        make_env("chess").apply("e2e5")


def test_chess_ply_limit_is_a_draw() -> None:
    env = make_env("chess", max_plies=4, moves=["g1f3", "g8f6", "f3g1", "f6g8"])
    assert env.is_terminal() and env.returns() == [0.0, 0.0] and env.termination() == "max_plies"


@pytest.mark.parametrize(("players", "hand"), [(2, 5), (3, 5), (4, 5), (5, 4)])
def test_hanabi_hand_sizes_and_moves(players: int, hand: int) -> None:
    env = make_env("hanabi", players=players, seed=1)
    view = env.view(0)
    assert len(view.hands) == players and all(len(h) == hand for h in view.hands)
    assert view.lives == 3 and view.info == 8 and view.score == 0
    assert all(c.card == "XX" for c in view.hands[0])  # one's own cards are hidden
    assert all(c.card != "XX" for c in view.hands[1])
    legal = env.legal_moves()
    assert "Play 0" in legal and not any(m.startswith("Discard") for m in legal)  # 8 info tokens: no discard
    assert any(m.startswith("Reveal player +1") for m in legal)


def test_hanabi_deal_is_seeded() -> None:
    assert make_env("hanabi", seed=3).describe(1) == make_env("hanabi", seed=3).describe(1)
    assert make_env("hanabi", seed=3).describe(1) != make_env("hanabi", seed=4).describe(1)


def test_hanabi_play_scores_and_misplay_costs_a_life() -> None:
    env = make_env("hanabi", seed=0)
    # seat 1 plays its cards blind; whether each lands is decided by the engine and read back
    env.apply(next(m for m in env.legal_moves() if m.startswith("Reveal player +1")))
    before = env.view(1)
    card = env.view(0).hands[1][0].card
    env.apply("Play 0")
    after = env.view(1)
    playable = before.fireworks[card[0]] == int(card[1]) - 1
    assert after.score == before.score + playable
    assert after.lives == before.lives - (not playable)
    assert env.returns() == [float(after.score)] * 2


def test_parse_hanabi_observation() -> None:
    text = ("Life tokens: 2\nInfo tokens: 5\nFireworks: R1 Y0 G2 W0 B0 \nHands:\nCur player\n"
            "XX || RX|R12345\nXX || X3|RYGWB3\n-----\nB4 || XX|RYGWB12345\nDeck size: 30\nDiscards: W1 G3\n")
    view = parse_hanabi(text)
    assert (view.lives, view.info, view.deck, view.score) == (2, 5, 30, 3)
    assert view.hands[0][0].hint == "RX" and view.hands[0][1].ranks == "3" and view.hands[1][0].card == "B4"
    assert view.discards == ["W1", "G3"]


def test_minimax_values_and_perfect_play_always_draws() -> None:
    env = make_env("tictactoe", moves=["A1", "B2", "B1"])  # O must block at C1
    values = tictactoe_move_values(env)
    assert values["C1"] == 0 and all(v == -1 for m, v in values.items() if m != "C1")
    solver = Minimax()
    for seed in range(12):
        g = make_env("tictactoe")
        while not g.is_terminal():
            g.apply(solver.choose(g, seed))
        assert g.returns() == [0.0, 0.0]
    first_moves = {solver.choose(make_env("tictactoe"), s) for s in range(30)}
    assert len(first_moves) > 1  # ties are broken at random: every opening draws


def test_bitbully_first_player_wins_from_the_empty_board() -> None:
    solver = BitBullySolver()
    env = make_env("connect4")
    while not env.is_terminal():
        env.apply(solver.choose(env, 0))
    assert env.returns() == [1.0, -1.0]
    assert solver.scores(make_env("connect4"))["4"] == max(solver.scores(make_env("connect4")).values())


def test_mcts_takes_an_immediate_win() -> None:
    env = make_env("connect4", moves=["1", "2", "1", "2", "1", "2"])
    assert MCTSPlayer(simulations=200).choose(env, 0) == "1"


def test_hanabi_bot_plays_whole_games_legally() -> None:
    for players in (2, 5):
        env = make_env("hanabi", players=players, seed=7)
        bot = HanabiBot()
        while not env.is_terminal():
            env.apply(bot.choose(env, 0))
        assert 0 <= env.returns()[0] <= 25


def test_stockfish_plays_and_grades_moves() -> None:
    try:
        find_stockfish()
    except UserError:
        pytest.skip("stockfish is not installed")
    sf = StockfishPlayer(skill=20, think_s=0.05)
    try:
        env = make_env("chess", moves=["f2f3", "e7e5", "g2g4"])
        assert sf.choose(env, 0) == "d8h4"  # mate in one is found at any strength
        losses = sf.centipawn_losses(["e2e4", "e7e5", "f1c4", "b8c6", "d1h5", "g8f6"], [1, 5], depth=8)
        assert len(losses) == 2 and losses[0] < 100 and losses[1] > 5000  # Nf6?? allows Qxf7 mate
    finally:
        sf.close()


def test_random_player_is_seeded_and_legal() -> None:
    env = make_env("chess")
    a, b = RandomPlayer().choose(env, 5), RandomPlayer().choose(env, 5)
    assert a == b and a in env.legal_moves()


def test_make_opponent_names() -> None:
    assert make_opponent("mcts-25", "connect4").name == "mcts-25"
    assert make_opponent("stockfish-3", "chess").name == "stockfish-3"
    with pytest.raises(UserError, match="no opponent 'bitbully' for chess"):
        make_opponent("bitbully", "chess")
    with pytest.raises(UserError, match="0-20"):
        make_opponent("stockfish-21", "chess")


def test_elo_matches_hand_computed_values() -> None:
    # one sweep over a single game that A won: both start at 1000, expected 0.5 each
    one = compute_elo([PairRecord("A", "B", wins_a=1)], iterations=1)
    assert one == {"A": 1016.0, "B": 984.0}
    # the second sweep uses the updated ratings
    two = compute_elo([PairRecord("A", "B", wins_a=1)], iterations=2)
    e = expected(1016.0, 984.0)
    assert two["A"] == pytest.approx(1016.0 + 32 * (1 - e))
    assert two["B"] == pytest.approx(984.0 + 32 * (0 - (1 - e)))
    # a pair's whole score counts at once: 3 wins, 1 loss, 2 draws over 6 games
    rec = PairRecord("A", "B", wins_a=3, wins_b=1, draws=2)
    first = compute_elo([rec], iterations=1)
    assert first["A"] == pytest.approx(1000 + 32 * (4.0 - 3.0)) and first["B"] == pytest.approx(1000 + 32 * (2.0 - 3.0))


def test_elo_converges_and_orders_players() -> None:
    pairs = tally([("A", "B", 1.0), ("B", "A", 0.5), ("A", "B", 0.0), ("A", "C", 1.0), ("C", "B", 0.0),
                   ("C", "A", 0.5), ("B", "C", 1.0), ("A", "B", 1.0)])
    assert [(p.a, p.b, p.wins_a, p.wins_b, p.draws) for p in pairs] == [("A", "B", 2, 1, 1), ("A", "C", 1, 0, 1),
                                                                         ("C", "B", 0, 2, 0)]
    ratings = compute_elo(pairs, tol=1e-9)
    assert ratings["A"] > ratings["B"] > ratings["C"]
    assert sum(ratings.values()) == pytest.approx(3000.0)  # every update is zero-sum
    assert compute_elo(pairs, iterations=5000, tol=1e-9) == pytest.approx(ratings)
    with pytest.raises(ValueError, match="score"):
        tally([("A", "B", 0.7)])


def test_elo_does_not_depend_on_which_game_finished_first() -> None:
    import random

    from rolegraph.evals import EvalRecord
    from rolegraph.evals.spin import elo_pairs
    from rolegraph.evals.spin.elo import canonical

    rng = random.Random(7)
    players = ["llm:a", "llm:b", "minimax", "random"]
    records = []
    for i in range(80):
        a, b = rng.sample(players, 2)
        ra = rng.choice([1.0, 0.0, -1.0])
        records.append(EvalRecord(case_id=f"g{i}", repeat=0, status="ok",
                                  output={"game": "tictactoe", "seats": [a, b], "returns": [ra, -ra]}))
    baseline = compute_elo(elo_pairs(records))
    for seed in range(5):
        shuffled = records[:]
        random.Random(seed).shuffle(shuffled)
        assert compute_elo(elo_pairs(shuffled)) == baseline  # identical, not just close
    # the table itself: oriented by name, sorted, totals kept
    table = canonical([PairRecord("B", "A", wins_a=2, wins_b=1, draws=1), PairRecord("A", "B", wins_a=1)])
    assert [(p.a, p.b, p.wins_a, p.wins_b, p.draws) for p in table] == [("A", "B", 2, 2, 1)]
    # in completion order the same games can rate differently: that is what canonical order removes
    first_seen = [compute_elo(tally([(r.output["seats"][0], r.output["seats"][1],
                                      {1.0: 1.0, 0.0: 0.5, -1.0: 0.0}[r.output["returns"][0]]) for r in order]))
                  for order in (records, records[::-1])]
    assert first_seen[0] != first_seen[1]
