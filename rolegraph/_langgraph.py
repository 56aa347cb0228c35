"""Every LangGraph internal rolegraph relies on, behind one door: its private runnable helpers, the
metadata keys it puts in a node's config, the builder attributes an app is copied through, the
function inside a node's runnable, and how a functional-API workflow's entrypoint and task calls
are reached. Nothing else in rolegraph reaches past LangGraph's public API
(an import-linter contract and tests/unit/test_layers.py hold the line).

It sits at the top of the package, below every layer, so traces, graphs and langchain may all use
it. tests/unit/test_langgraph_internals.py checks each internal against the installed LangGraph:
an upgrade that moves one fails there, by name, and is mended here alone."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

# Checked against the LangGraph versions tests/unit/test_langgraph_internals.py names. These decide
# how LangGraph calls a function (which of config and runtime it passes, on the event loop or in a
# thread), so a route run inline is called the same way.
from langgraph._internal._runnable import RunnableCallable, is_async_callable, is_async_generator

__all__ = [
    "CHECKPOINT_NS",
    "INTERRUPT",
    "NODE",
    "NS_END",
    "NS_SEP",
    "PATH",
    "PUSH",
    "ROOT_CHANNEL",
    "STEP",
    "Entrypoint",
    "Handoff",
    "RunnableCallable",
    "TaskPosition",
    "TaskRoute",
    "as_subgraph_of",
    "builder_of",
    "copy_graph",
    "current_config",
    "entrypoint_of",
    "final_values",
    "handoff_of",
    "is_async_callable",
    "is_async_generator",
    "listens_for_tokens",
    "node_functions",
    "node_specs",
    "raised_interrupts",
    "route_task_calls",
    "standalone_config",
    "state_keys",
    "state_schema",
    "task_function",
    "task_position",
    "using_config",
]

# -- where a node execution runs: the metadata LangGraph puts in a node's config --------------

CHECKPOINT_NS = "langgraph_checkpoint_ns"
"""Metadata key: the execution's checkpoint namespace, `node:task_id`, joined by `|` inside subgraphs."""
STEP = "langgraph_step"
"""Metadata key: the step (superstep) the execution runs in."""
NODE = "langgraph_node"
"""Metadata key: the name of the node the execution runs (a `messages` stream chunk's metadata has it too)."""
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


ROOT_CHANNEL = "__root__"
"""The one channel of a StateGraph whose state is a single value (not a set of keys)."""


def state_keys(builder: Any) -> frozenset[str] | None:
    """The keys a node's update may write in StateGraph `builder`: its channels (the state's keys, and
    those of its input, output and nodes' input schemas) and managed values. LangGraph drops any
    other key of an update without a word. None for a state that is one value (no keys)."""
    keys = frozenset(builder.channels) | frozenset(builder.managed)
    return None if ROOT_CHANNEL in keys else keys


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


# -- control flow that LangGraph raises through a node ------------------------------------------

class Handoff(NamedTuple):
    """A node execution that ended by handing control on: `Command(goto=..., graph=Command.PARENT)`
    (a supervisor's or swarm's handoff tool returns one), which LangGraph raises as `ParentCommand`
    up through the nodes that run the subgraph, to the graph that applies it."""

    goto: list[str]
    """The destinations, in order (a `Send` by its node's name)."""
    update: Any
    """The command's state update."""


def handoff_of(exc: BaseException) -> Handoff | None:
    """The handoff that `exc` carries up to a parent graph, or None for any other exception."""
    from langgraph.errors import ParentCommand
    from langgraph.types import Send

    if not isinstance(exc, ParentCommand) or not exc.args:
        return None
    command = exc.args[0]  # ParentCommand(command): the Command, its `graph` set to the parent's namespace
    goto = command.goto
    items = list(goto) if isinstance(goto, (list, tuple)) else [goto] if goto else []
    return Handoff([g.node if isinstance(g, Send) else str(g) for g in items], command.update)


# -- human input: how LangGraph surfaces `interrupt(value)` ---------------------------------------

INTERRUPT = "__interrupt__"
"""The key under which a run's stream gives the interrupts it stopped at: an "updates" chunk
`{INTERRUPT: (Interrupt, ...)}` (what LangGraph's own `ainvoke` collects), and the last "values"
chunk's copy of them beside the state."""


def raised_interrupts(exc: BaseException) -> list[Any] | None:
    """The `Interrupt`s (each with `.id` and `.value`) that `exc` carries when it is LangGraph's
    GraphInterrupt, raised through a node by `interrupt()`; None for any other exception."""
    from langgraph.errors import GraphInterrupt

    if not isinstance(exc, GraphInterrupt):
        return None
    return list(exc.args[0]) if exc.args and isinstance(exc.args[0], (list, tuple)) else []


def final_values(chunk: Any) -> Any:
    """A "values" chunk as the run's state: without the copy of the interrupts LangGraph puts in the
    last one of a run that stopped at `interrupt()`."""
    if isinstance(chunk, dict) and INTERRUPT in chunk:
        return {k: v for k, v in chunk.items() if k != INTERRUPT}
    return chunk


# -- who listens for a chat model's tokens ------------------------------------------------------

def listens_for_tokens(callbacks: Any) -> bool:
    """Whether a node's callbacks (its config's "callbacks": a callback manager or a list of handlers)
    include one that streams a chat model's tokens: LangGraph's `messages` stream mode, LangChain's
    `astream_events`. LangChain marks those with its private `_StreamingCallbackHandler` (the same
    check its chat models make before they stream)."""
    from langchain_core.tracers._streaming import _StreamingCallbackHandler

    handlers = getattr(callbacks, "handlers", callbacks)
    return isinstance(handlers, list) and any(isinstance(h, _StreamingCallbackHandler) for h in handlers)


# -- the functional API: an `@entrypoint` workflow and the `@task` calls it makes -----------------

class Entrypoint(NamedTuple):
    """What `@entrypoint()` made of a function: LangGraph runs it as the one node of a Pregel."""

    name: str
    """The node's name (the function's)."""
    function: Callable[..., Any]
    """The decorated function, as its author wrote it."""
    runnable: Any
    """What LangGraph calls for it: it passes the function the `config`, `runtime`, `previous`, `store`
    and `writer` its signature asks for, and runs a sync function in a worker thread."""


def entrypoint_of(app: Any) -> Entrypoint | None:
    """The entrypoint of a functional-API workflow (`@entrypoint()` over a function), or None for
    anything else (a compiled StateGraph among them)."""
    from langgraph._internal._constants import PREVIOUS
    from langgraph.pregel import Pregel

    if not isinstance(app, Pregel) or builder_of(app) is not None or PREVIOUS not in app.channels or len(app.nodes) != 1:
        return None
    ((name, node),) = app.nodes.items()
    runnable = node.bound
    function = getattr(runnable, "func", None) or getattr(runnable, "afunc", None)  # sync: func; async: afunc
    return Entrypoint(name, function, runnable) if callable(function) else None


def task_function(obj: Any) -> Callable[..., Any] | None:
    """The function a functional-API `@task` runs (None when `obj` is no task)."""
    from langgraph.func import _TaskFunction

    return obj.func if isinstance(obj, _TaskFunction) else None


TaskRoute = Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any], Callable[[Callable[..., Any]], Any] | None], Any]
"""`route(func, args, kwargs, schedule)`: where a task call goes (see `route_task_calls`)."""


def route_task_calls(config: Any, route: TaskRoute) -> dict[str, Any]:
    """`config` (a node's or a task's RunnableConfig; None outside a LangGraph run) with each
    functional-API task call made under it sent to `route(func, args, kwargs, schedule)`, which
    returns the call's future. `schedule(f)` hands `f` to LangGraph to run as that task (`f` keeps
    `func`'s name: LangGraph tells tasks, and a resumed run the results it saved, apart by it);
    outside a LangGraph run `schedule` is None and `route` runs the call itself."""
    from langgraph._internal._constants import CONF, CONFIG_KEY_CALL

    base = dict(config or {})
    conf = dict(base.get(CONF) or {})
    found = conf.get(CONFIG_KEY_CALL)
    langgraph_call = getattr(found, "langgraph_call", found)  # a config routed before: LangGraph's own beneath it

    def call(func: Callable[..., Any], input: tuple[tuple[Any, ...], dict[str, Any]], **options: Any) -> Any:
        args, kwargs = input
        schedule = None if langgraph_call is None else (lambda f: langgraph_call(f, input, **options))
        return route(func, tuple(args), dict(kwargs), schedule)

    call.langgraph_call = langgraph_call  # type: ignore[attr-defined]
    conf[CONFIG_KEY_CALL] = call
    base[CONF] = conf
    return base


def standalone_config(context: Any) -> dict[str, Any]:
    """A config for calling a node's runnable or an entrypoint outside a LangGraph run: LangGraph's
    `runtime` (what a function asking for `runtime` gets) carrying `context`."""
    from langgraph._internal._constants import CONF, CONFIG_KEY_RUNTIME
    from langgraph.runtime import Runtime

    # a task call reads the caller's "callbacks"
    return {"callbacks": None, CONF: {CONFIG_KEY_RUNTIME: Runtime(context=context)}}


def as_subgraph_of(config: dict[str, Any], node: str) -> dict[str, Any]:
    """`config` for running a compiled graph by itself as the subgraph inside node `node`: its nodes
    get the namespace they got when the parent graph ran it (`node`, then their own names)."""
    from langgraph._internal._constants import CONF, CONFIG_KEY_CHECKPOINT_NS, CONFIG_KEY_TASK_ID

    # a task id marks the run as nested, and only a nested run keeps the namespace it is given
    conf = {**config.get(CONF, {}), CONFIG_KEY_CHECKPOINT_NS: f"{node}{NS_END}replayed", CONFIG_KEY_TASK_ID: "replayed"}
    return {**config, CONF: conf}


def current_config() -> Any:
    """The RunnableConfig LangGraph gave the node or task running in this context (what its
    `get_config()` returns), or None outside one."""
    from langchain_core.runnables.config import var_child_runnable_config

    return var_child_runnable_config.get()


@contextlib.contextmanager
def using_config(config: Any) -> Iterator[None]:
    """Make `config` what LangGraph's `get_config()` (and so a task call) sees while the block runs."""
    from langchain_core.runnables.config import var_child_runnable_config

    token = var_child_runnable_config.set(config)
    try:
        yield
    finally:
        var_child_runnable_config.reset(token)
