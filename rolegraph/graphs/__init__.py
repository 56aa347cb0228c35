"""Graphs: the public graph API (`@graph`, a traced `StateGraph`, `RunResult`), finding a graph
again from its trace, replay, fork and resume; and the reference systems, one module each
(refinebot, mcq, spin, spin_pddl, spin_diplomacy, being0, videomind, lvas), built on that API.
Each has `async run(...)` and `run_sync(...)`."""

from langgraph.graph import END, START

from rolegraph.graphs._api import MAX_INPUT_BYTES, Graph, RunPlan, RunResult, StateGraph, StateResult, graph
from rolegraph.graphs._find import find_graph, installed_graphs, load_graph
from rolegraph.graphs._replay import PartialReplay, StepReplay, replay_run, replay_step, resume_run
from rolegraph.graphs._result import RunFailure
from rolegraph.graphs._run import RunStream, run_graph
from rolegraph.graphs._solver import EVAL_PAIR, GraphSolver
from rolegraph.traces import run_totals

__all__ = [
    "END",
    "EVAL_PAIR",
    "MAX_INPUT_BYTES",
    "START",
    "Graph",
    "GraphSolver",
    "PartialReplay",
    "RunFailure",
    "RunPlan",
    "RunResult",
    "RunStream",
    "StateGraph",
    "StateResult",
    "StepReplay",
    "find_graph",
    "graph",
    "installed_graphs",
    "load_graph",
    "replay_run",
    "replay_step",
    "resume_run",
    "run_graph",
    "run_totals",
]
