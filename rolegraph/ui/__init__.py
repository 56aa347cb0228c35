"""`rolegraph ui`: one local web app for every recorded run and evaluation — browse and filter the
runs, open a trace, compare two runs or two evaluations side by side, and fork a run from a step."""

from typing import TYPE_CHECKING

from rolegraph.ui._compare import (
    CallPair,
    DiffLine,
    EvalComparison,
    FlippedCase,
    RunComparison,
    StepPair,
    compare_evals,
    compare_runs,
    diff_lines,
)
from rolegraph.ui._forks import ForkJob, ForkJobs
from rolegraph.ui._paths import NotFound

if TYPE_CHECKING:
    from rolegraph.ui._app import create_app


def __getattr__(name: str) -> object:
    # FastAPI comes with the `ui` extra: without it the rest of this package (and the CLI) still imports
    if name == "create_app":
        from rolegraph.ui._app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "CallPair",
    "DiffLine",
    "EvalComparison",
    "FlippedCase",
    "ForkJob",
    "ForkJobs",
    "NotFound",
    "RunComparison",
    "StepPair",
    "compare_evals",
    "compare_runs",
    "create_app",
    "diff_lines",
]
