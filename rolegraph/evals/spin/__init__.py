"""SPIN-Bench (strategic planning and social reasoning): its games over real engines and
solvers, PDDL planning with a real planner and validator, Diplomacy, and their metrics."""

from rolegraph.evals.spin._games import GAMES, Chess, ConnectFour, GameEnv, Hanabi, IllegalMove, TicTacToe, make_env
from rolegraph.evals.spin._solvers import (
    BitBullySolver,
    HanabiBot,
    MCTSPlayer,
    Minimax,
    Opponent,
    RandomPlayer,
    StockfishPlayer,
    make_opponent,
)

__all__ = [
    "GAMES",
    "BitBullySolver",
    "Chess",
    "ConnectFour",
    "GameEnv",
    "Hanabi",
    "HanabiBot",
    "IllegalMove",
    "MCTSPlayer",
    "Minimax",
    "Opponent",
    "RandomPlayer",
    "StockfishPlayer",
    "TicTacToe",
    "make_env",
    "make_opponent",
]
