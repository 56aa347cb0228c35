"""SPIN-Bench's benchmarks on the evals runner (games, PDDL planning, Diplomacy), their commands,
and Elo ratings; the games, solvers and planners themselves live in `rolegraph.envs.spin`."""

from rolegraph.evals.spin._bench import (
    diplomacy_benchmark,
    elo_pairs,
    game_benchmark,
    game_cases,
    outcome_counts,
    pddl_benchmark,
)

__all__ = ["diplomacy_benchmark", "elo_pairs", "game_benchmark", "game_cases", "outcome_counts", "pddl_benchmark"]
