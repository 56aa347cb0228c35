"""Benchmarks: typed cases, solvers and scorers; a resumable concurrent runner; metrics with
confidence intervals; reports; the MicroVQA-style MCQ benchmark and robustness transforms."""

from rolegraph.envs.mcq import MCQ, load_mcqs
from rolegraph.evals._core import Benchmark, Case, EvalRecord, Match, Score, Scorer, Solver, SolverOutput
from rolegraph.evals._report import MAX_CASE_ROWS, render_report, summarize, write_report
from rolegraph.evals._runner import EvalSummary, run_eval
from rolegraph.evals._store import EvalStore

__all__ = [
    "MAX_CASE_ROWS",
    "MCQ",
    "Benchmark",
    "Case",
    "EvalRecord",
    "EvalStore",
    "EvalSummary",
    "Match",
    "Score",
    "Scorer",
    "Solver",
    "SolverOutput",
    "load_mcqs",
    "render_report",
    "run_eval",
    "summarize",
    "write_report",
]
