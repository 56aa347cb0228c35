"""SPIN-Bench's benchmarks on the evals runner (games, PDDL planning, Diplomacy), their commands,
and Elo ratings; the games, solvers and planners themselves live in `rolegraph.envs.spin`."""
