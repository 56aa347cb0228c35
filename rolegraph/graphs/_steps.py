"""One recorded step run again by itself (`replay_step`, what a `rolegraph trace to-test` test
calls): its model and tool calls answered from the trace, what it returns now set beside what it
returned then. `rolegraph.traces.reach_step` says how each step is reached, or why it cannot be."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, cast

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from rolegraph._langgraph import as_subgraph_of, builder_of, node_functions, standalone_config, using_config
from rolegraph.errors import RolegraphError
from rolegraph.graphs._api import Graph
from rolegraph.graphs._find import find_graph
from rolegraph.graphs._functional import FunctionalGraph
from rolegraph.graphs._revive import first_parameter_type, messages_revived, revived
from rolegraph.prompts import PromptLibrary
from rolegraph.runtime import Runtime
from rolegraph.traces import NodeFinished, NodeStarted, Replay, RunContext, Trace, as_node, reach_step, takes_runtime


@dataclass
class StepReplay:
    step: int
    node: str
    delta: Any
    """What the step returned now (JSON)."""
    recorded_delta: Any
    calls_answered: int
    via: int | None = None
    """The step called to reach this one (the node running its subgraph or workflow), when not itself."""


class _Kept:
    """Where the steps inside a replayed step write their events: kept in memory, for their returns."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def write(self, event: Any) -> Any:
        self.events.append(event)
        return event

    def payload(self, value: Any) -> Any:
        return to_jsonable_python(value, fallback=str)


async def replay_step(trace: Trace, step: int, *, graph: Graph[Any] | None = None,
                      library: PromptLibrary | None = None) -> StepReplay:
    """Run step `step` of `trace` again by itself, its model and tool calls answered from the trace,
    and return what it returns beside what it returned then. A graph node is called with its
    recorded state, a `Send` target with its payload, a functional-API task with its arguments; a
    step inside a subgraph is reached by calling the node that ran the subgraph with its input (and
    a task whose function cannot be found, by calling its workflow). A step that cannot be replayed
    alone raises UserError saying why."""
    route = reach_step(trace, step)
    target = route.target
    graph = graph or find_graph(trace.started.manifest)
    runtime = Runtime.from_models({}, prompts=library or PromptLibrary(), replay=Replay(trace))
    runtime = runtime.with_prompt_dirs(graph.prompt_dirs)
    direct_task = route.shape == "task" and isinstance(graph, FunctionalGraph) and target.node in graph.tasks
    entry = target if direct_task or route.shape in ("node", "send") else route.outer
    kept = _Kept()
    with runtime.activate():
        # the recorded manifest: its calls are seeded (or not) as the run's were, so their requests match
        run = RunContext(trace.run_id, cast(Any, kept), manifest=trace.started.manifest)
        async with as_node(run, entry.node, entry.key, entry.step) as node:
            node.path = list(entry.path)
            if direct_task:
                value = await cast(FunctionalGraph, graph).replay_task(target.node, target.state)
            else:
                value = await _call_node(graph, entry, runtime, options=trace.started.manifest.options,
                                         send=route.shape == "send")
    if entry is target:
        delta = to_jsonable_python(value, fallback=str)
    else:
        ends = [e for e in kept.events if isinstance(e, NodeFinished) and e.key == target.key and e.error is None]
        if not ends:
            raise RolegraphError(f"step {entry.step} ({entry.node}), run again, did not reach step {step} "
                                 f"({target.node}, {target.key}): it took another path than the recorded run")
        delta = ends[-1].delta
    return StepReplay(step, target.node, delta, route.recorded.delta, runtime.calls_answered,
                      via=None if entry is target else entry.step)


async def _call_node(graph: Graph[Any], started: NodeStarted, runtime: Runtime, *, options: Any, send: bool) -> Any:
    """Call the function (or runnable) of graph node `started.node` on the input it was given, as
    LangGraph gave it: validated into the type its function declares (a `Send` payload as it was
    sent; another node's, else, as the graph's state), inside a config that makes a subgraph it
    runs name its nodes as they were named in the run."""
    fn = getattr(node_functions(builder_of(graph.compile(options))).get(started.node), "rolegraph_inner", None)
    if fn is None:
        raise RolegraphError(f"node '{started.node}' of graph '{graph.name}' is not traced")
    config = as_subgraph_of(standalone_config(runtime), started.node)
    with using_config(config):
        if hasattr(fn, "ainvoke"):  # a compiled subgraph, a ToolNode: a runnable validates its own input
            return await fn.ainvoke(messages_revived(started.state), config)
        annotation = first_parameter_type(fn)
        state_type = graph.state_type
        if annotation is None and not send and isinstance(state_type, type) and issubclass(state_type, BaseModel):
            annotation = state_type
        state = revived(annotation, started.state)
        value = fn(state, runtime) if takes_runtime(fn) else fn(state)
        return await value if inspect.isawaitable(value) else value
