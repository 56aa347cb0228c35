"""Replay, fork and resume: run a recorded graph again with its model and tool calls answered
from the trace (all of them, those before a step, or those a killed run finished)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic_core import to_jsonable_python

from rolegraph.errors import RolegraphError, UserError
from rolegraph.graphs._api import Graph
from rolegraph.graphs._find import find_graph
from rolegraph.graphs._run import CHECKPOINTS, run_graph
from rolegraph.models import ChatModel
from rolegraph.prompts import PromptLibrary, load_template_file
from rolegraph.runtime import Runtime
from rolegraph.traces import (
    ForkOrigin,
    ForkPrompts,
    NodeFinished,
    NodeStarted,
    ReplayModel,
    ReplayTools,
    RunContext,
    Trace,
    TraceStore,
    as_node,
    role_prompts,
    takes_runtime,
)


@dataclass
class StepReplay:
    step: int
    node: str
    delta: Any
    """What the node returned now (JSON)."""
    recorded_delta: Any
    calls_answered: int


async def replay_step(trace: Trace, step: int, *, graph: Graph[Any] | None = None,
                      library: PromptLibrary | None = None) -> StepReplay:
    """Run one node again on its recorded input state, its model and tool calls answered from
    the trace, and return its update beside the recorded one."""
    started = next((e for e in trace.of_kind(NodeStarted) if e.step == step), None)
    finished = next((e for e in trace.of_kind(NodeFinished) if e.step == step), None)
    if started is None or finished is None:
        raise RolegraphError(f"run {trace.run_id} has no finished step {step}")
    if len(started.path) > 1:
        raise RolegraphError(f"step {step} runs inside subgraph {'/'.join(started.path[:-1])}; replay its parent step")
    manifest = trace.started.manifest
    graph = graph or find_graph(manifest)
    replayers: dict[str, ReplayModel] = {}

    def replayer(role: str) -> ChatModel:
        replayers[role] = ReplayModel(trace)
        return replayers[role]

    runtime = Runtime.from_models({}, prompts=library or PromptLibrary(), fallback=replayer)
    runtime = runtime.with_prompt_dirs(graph.prompt_dirs)
    runtime.tool_source = ReplayTools(trace)
    runtime.memory_source = trace
    compiled = graph.compile(manifest.options)
    wrapper = compiled.builder.nodes[started.node].runnable
    fn = getattr(getattr(wrapper, "afunc", None) or getattr(wrapper, "func", None), "rolegraph_inner", None)
    if fn is None:
        raise RolegraphError(f"node '{started.node}' of graph '{graph.name}' is not traced")
    schema = compiled.builder.state_schema
    state = schema.model_validate(started.state) if hasattr(schema, "model_validate") else started.state
    async with as_node(RunContext(trace.run_id, None), started.node, started.key, step):
        update = await (fn(state, runtime) if takes_runtime(fn) else fn(state))
    return StepReplay(step, started.node, to_jsonable_python(update, fallback=str), finished.delta,
                      sum(m.answered for m in replayers.values()))


async def resume_run(trace: Trace, *, store: TraceStore, live: Runtime, graph: Graph[Any] | None = None) -> Any:
    """Continue an interrupted run from its last checkpoint. Nodes that finished are not run
    again; in the node that was cut off, calls the trace recorded are answered from it. Any role
    the live runtime plays (its default included) may answer the rest. A resume that fails
    leaves the run resumable."""
    if trace.complete:
        raise UserError(f"run {trace.run_id} already finished ({trace.status}); nothing to resume")
    if not (trace.dir / CHECKPOINTS).exists():
        raise UserError(f"run {trace.run_id} has no checkpoints to resume from")
    manifest = trace.started.manifest
    graph = graph or find_graph(manifest)

    def resumer(role: str) -> ChatModel:
        return ReplayModel(trace, live=live.unrecorded_model(role), fill_gaps=True)

    runtime = Runtime.from_models({}, prompts=live.prompts, traces=store, fallback=resumer)
    runtime.require_roles(trace.roles)  # a role nobody can play fails here, before the run is touched
    runtime.tool_source = ReplayTools(trace, fill_gaps=True)
    try:
        return await run_graph(graph, manifest, runtime, resume=trace)
    finally:
        await runtime.aclose()


async def replay_run(trace: Trace, *, store: TraceStore | None = None, live: Runtime | None = None,
                     live_from: int | None = None, models: dict[str, str] | None = None,
                     prompts: dict[str, str] | None = None, graph: Graph[Any] | None = None,
                     library: PromptLibrary | None = None, live_from_call: int = 0) -> Any:
    """Run the recorded graph again, answering model calls from `trace`.

    With `live_from`, node steps from that one on call `live` (a Runtime) instead; `models`
    (role -> model name) and `prompts` (role -> template file) change roles in that live part.
    `graph` defaults to the one the manifest names (found again in this process); `library` is
    the prompt library the run used (default: the package's, below the graph's own).
    `live_from_call` forks inside step `live_from`: its model calls before that index are still
    answered from the trace (the step's tools run live).
    Returns the graph's result; the new run is recorded in `store` with its parent.
    """
    models, prompts = models or {}, prompts or {}
    if (models or prompts) and live_from is None:
        raise UserError("--model and --prompt change the live part of a fork: give --live-from STEP too")
    if live_from is not None and live is None:
        raise UserError("a fork needs a live runtime")
    manifest = trace.started.manifest
    graph = graph or find_graph(manifest)

    def replayer(role: str) -> ChatModel:
        live_model: ChatModel | None = None
        if live is not None and live_from is not None:
            live_model = live.model_named(role, models[role]) if role in models else live.unrecorded_model(role)
        return ReplayModel(trace, live=live_model, live_from=live_from, live_from_call=live_from_call)

    base: Any = (library or PromptLibrary()).below(*graph.prompt_dirs)
    if prompts:
        used = role_prompts(trace)
        overrides = {}
        for role, path in prompts.items():
            if role not in used:
                raise UserError(f"role '{role}' made no recorded call with a prompt; roles: {', '.join(sorted(used))}")
            overrides[used[role]] = load_template_file(used[role], path)
        base = ForkPrompts(base, overrides, live_from)
    changes = {**{f"model:{r}": m for r, m in models.items()}, **{f"prompt:{r}": p for r, p in prompts.items()}}
    runtime = Runtime.from_models({}, prompts=base, traces=store, fallback=replayer,
                                  trace_parent=ForkOrigin(run_id=trace.run_id, live_from=live_from,
                                                         live_from_call=live_from_call, changes=changes))
    for role in models:
        if role not in trace.roles:
            raise UserError(f"--model {role}=...: the run has no role '{role}'; roles: {', '.join(trace.roles)}")
    runtime.tool_source = ReplayTools(trace, live_from=live_from)
    runtime.memory_source = trace  # memory reads answered as recorded (in a fork, before live_from)
    runtime.memory_live_from = live_from
    runtime.counter_source = live
    try:
        return await run_graph(graph, manifest, runtime, checkpoint=live_from is not None)
    finally:
        await runtime.aclose()
