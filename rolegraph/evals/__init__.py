"""Benchmarks: typed cases, solvers and scorers; a resumable concurrent runner; metrics with
confidence intervals; reports; the MicroVQA-style MCQ benchmark and robustness transforms."""

from rolegraph.envs.mcq import MCQ, load_mcqs
from rolegraph.evals._core import Benchmark, Case, EvalRecord, Match, Score, Scorer, Solver, SolverOutput
from rolegraph.evals._ray import RayExecutor
from rolegraph.evals._report import MAX_CASE_ROWS, render_report, summarize, write_report
from rolegraph.evals._runner import AsyncioExecutor, EvalSummary, Executor, run_eval, run_one
from rolegraph.evals._scoring import FunctionScorer, load_scorer
from rolegraph.evals._store import EvalStore

__all__ = [
    "MAX_CASE_ROWS",
    "MCQ",
    "AsyncioExecutor",
    "Benchmark",
    "Case",
    "EvalRecord",
    "EvalStore",
    "EvalSummary",
    "Executor",
    "FunctionScorer",
    "Match",
    "RayExecutor",
    "Score",
    "Scorer",
    "Solver",
    "SolverOutput",
    "load_mcqs",
    "load_scorer",
    "render_report",
    "run_eval",
    "run_one",
    "summarize",
    "write_report",
]
