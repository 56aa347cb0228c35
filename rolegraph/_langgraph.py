"""Every LangGraph internal rolegraph relies on, behind one door: its private runnable helpers, the
metadata keys it puts in a node's config, the builder attributes an app is copied through, and the
function inside a node's runnable. Nothing else in rolegraph reaches past LangGraph's public API
(an import-linter contract and tests/unit/test_layers.py hold the line).

It sits at the top of the package, below every layer, so traces, graphs and langchain may all use
it. tests/unit/test_langgraph_internals.py checks each internal against the installed LangGraph:
an upgrade that moves one fails there, by name, and is mended here alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

# langgraph is pinned (pyproject). These decide how LangGraph calls a function (which of config and
# runtime it passes, on the event loop or in a thread), so a route run inline is called the same way.
from langgraph._internal._runnable import RunnableCallable, is_async_callable, is_async_generator

__all__ = [
    "CHECKPOINT_NS",
    "NS_END",
    "NS_SEP",
    "PATH",
    "PUSH",
    "STEP",
    "RunnableCallable",
    "TaskPosition",
    "builder_of",
    "copy_graph",
    "is_async_callable",
    "is_async_generator",
    "node_functions",
    "node_specs",
    "state_schema",
    "task_position",
]

# -- where a node execution runs: the metadata LangGraph puts in a node's config --------------

CHECKPOINT_NS = "langgraph_checkpoint_ns"
"""Metadata key: the execution's checkpoint namespace, `node:task_id`, joined by `|` inside subgraphs."""
STEP = "langgraph_step"
"""Metadata key: the step (superstep) the execution runs in."""
PATH = "langgraph_path"
"""Metadata key: the task's path; `(PUSH, index, ...)` for an execution that a `Send` started."""
PUSH = "__pregel_push"
"""The first element of `PATH` for a task that a `Send` started."""
NS_SEP = "|"
"""Separates the levels of a checkpoint namespace."""
NS_END = ":"
"""Separates a level's node name from its task id."""


class TaskPosition(NamedTuple):
    """Where LangGraph runs one node execution, as the metadata in the node's config says."""

    namespace: list[str]
    """The node names of its checkpoint namespace: the subgraph nodes it runs inside, then its own
    (empty when LangGraph did not call it)."""
    step: Any
    """LangGraph's step number ("?" when the config has none)."""
    send: Any
    """The index of the `Send` that started it (None when no `Send` did)."""


def task_position(config: Any) -> TaskPosition:
    """Where the node execution that `config` (LangGraph's RunnableConfig) was given for runs."""
    meta = (config or {}).get("metadata", {}) if isinstance(config, dict) else {}
    ns = str(meta.get(CHECKPOINT_NS, "") or "")
    path = meta.get(PATH, ())
    send = path[1] if isinstance(path, (tuple, list)) and len(path) > 1 and path[0] == PUSH else None
    return TaskPosition([part.split(NS_END, 1)[0] for part in ns.split(NS_SEP) if part], meta.get(STEP, "?"), send)


# -- a StateGraph's parts: what `rolegraph.langchain.app` copies and a replay calls ----------------

def builder_of(compiled: Any) -> Any | None:
    """The StateGraph that `compiled` was compiled from (None when it is no compiled StateGraph)."""
    builder = getattr(compiled, "builder", None)
    return builder if builder is not None and hasattr(builder, "nodes") else None


def node_specs(builder: Any) -> dict[str, Any]:
    """A StateGraph's nodes by name, each LangGraph's `StateNodeSpec` (its runnable and options)."""
    return dict(builder.nodes)


def state_schema(builder: Any) -> Any:
    """A StateGraph's state type."""
    return builder.state_schema


def copy_graph(source: Any, target: Any) -> None:
    """Add StateGraph `source`'s nodes (with their options), edges, joins and conditional branches to
    `target`, through `target.add_node` and `add_edge` (so a rolegraph StateGraph traces each node)."""
    for node, spec in source.nodes.items():
        target.add_node(node, spec.runnable, metadata=spec.metadata, input_schema=spec.input_schema,
                        retry_policy=spec.retry_policy, cache_policy=spec.cache_policy, destinations=spec.ends,
                        defer=spec.defer)
    for start, end in source.edges:
        target.add_edge(start, end)
    for starts, end in source.waiting_edges:  # a join: `end` waits for every one of `starts`
        target.add_edge(list(starts), end)
    for node, branches in source.branches.items():
        target.branches[node].update(branches)


def node_functions(builder: Any) -> dict[str, Callable[..., Any] | None]:
    """The function LangGraph calls for each node of StateGraph `builder`: its runnable's async
    function when it has one, else its sync one (None for a node that is another runnable)."""
    return {name: getattr(spec.runnable, "afunc", None) or getattr(spec.runnable, "func", None)
            for name, spec in builder.nodes.items()}
