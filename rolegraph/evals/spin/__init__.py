"""SPIN-Bench's benchmarks on the evals runner (games, PDDL planning, Diplomacy), their commands,
Elo ratings and top-k move fractions; the games, solvers and planners themselves live in `rolegraph.envs.spin`."""

from rolegraph.evals.spin._bench import (
    MoveQuality,
    MoveQualityChoice,
    diplomacy_benchmark,
    elo_pairs,
    game_benchmark,
    game_cases,
    outcome_counts,
    pddl_benchmark,
)
from rolegraph.evals.spin._topk import TOPK_SCORE, GameTopMoves, MoveRank, TopMoves, inspected_seat, topk_summary

__all__ = [
    "TOPK_SCORE",
    "GameTopMoves",
    "MoveQuality",
    "MoveQualityChoice",
    "MoveRank",
    "TopMoves",
    "diplomacy_benchmark",
    "elo_pairs",
    "game_benchmark",
    "game_cases",
    "inspected_seat",
    "outcome_counts",
    "pddl_benchmark",
    "topk_summary",
]
