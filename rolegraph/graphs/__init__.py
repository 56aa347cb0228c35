"""Graphs: the public graph API (`@graph`, a traced `StateGraph`, `RunResult`), finding a graph
again from its trace, replay, fork and resume; and the reference systems, one module each
(refinebot, mcq, spin, spin_pddl, spin_diplomacy, being0, videomind, lvas), built on that API.
Each has `async run(...)` and `run_sync(...)`."""

from langgraph.graph import END, START

from rolegraph.graphs._api import MAX_INPUT_BYTES, Graph, RunPlan, RunResult, StateGraph, StateResult, graph
from rolegraph.graphs._find import find_graph, installed_graphs, load_graph
from rolegraph.graphs._functional import FunctionalGraph, WorkflowResult, functional_graph, workflow_tasks
from rolegraph.graphs._human import AnswerBook
from rolegraph.graphs._replay import PartialReplay, replay_run, replay_stream, resume_run
from rolegraph.graphs._replay_imported import ImportedReplay, replay_imported
from rolegraph.graphs._result import RunFailure
from rolegraph.graphs._run import CHECKPOINTS, DURABILITY, SQLITE_PRAGMAS, RedactingSerde, RunStream, run_graph, state_types
from rolegraph.graphs._saver import DeltaSqliteSaver
from rolegraph.graphs._solver import GraphSolver
from rolegraph.graphs._steps import StepReplay, replay_step
from rolegraph.traces import run_totals

__all__ = [
    "CHECKPOINTS",
    "DURABILITY",
    "END",
    "MAX_INPUT_BYTES",
    "SQLITE_PRAGMAS",
    "START",
    "AnswerBook",
    "DeltaSqliteSaver",
    "FunctionalGraph",
    "Graph",
    "GraphSolver",
    "ImportedReplay",
    "PartialReplay",
    "RedactingSerde",
    "RunFailure",
    "RunPlan",
    "RunResult",
    "RunStream",
    "StateGraph",
    "StateResult",
    "StepReplay",
    "WorkflowResult",
    "find_graph",
    "functional_graph",
    "graph",
    "installed_graphs",
    "load_graph",
    "replay_imported",
    "replay_run",
    "replay_step",
    "replay_stream",
    "resume_run",
    "run_graph",
    "run_totals",
    "state_types",
    "workflow_tasks",
]
