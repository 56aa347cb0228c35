"""Replay and fork: answer model calls from a recorded trace by (node execution, call index),
checking that the request is the one recorded; optionally go live from a node step on."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

from pydantic_core import to_jsonable_python

from rolegraph.errors import ModelError, RolegraphError
from rolegraph.models import ChatModel, ChatRequest, ChatResponse
from rolegraph.traces._events import ForkOrigin, ModelCall, NodeFinished, NodeStarted, ToolCall
from rolegraph.traces._recorder import current_call, current_node
from rolegraph.traces._store import Trace


class ReplayMismatch(RolegraphError):
    """The graph asked something the trace did not record: code, a prompt or an input changed."""

    def __init__(self, message: str, diff: str = "") -> None:
        super().__init__(message + (f"\n{diff}" if diff else ""))
        self.diff = diff


def request_lines(request: ChatRequest) -> list[str]:
    """A request as lines a person can diff: settings first, then each message."""
    settings = request.model_dump(mode="json", exclude={"messages"}, exclude_none=True)
    schema = settings.pop("response_schema", None)
    lines = [f"{k}: {json.dumps(v, sort_keys=True)}" for k, v in sorted(settings.items()) if v not in ((), [], "")]
    if schema is not None:
        lines.append(f"response_schema: {json.dumps(schema, sort_keys=True)}")
    for i, m in enumerate(request.messages):
        lines.append(f"--- message {i} ({m.role})")
        lines.extend((m.content or "").splitlines() or [""])
        for call in m.tool_calls:
            lines.append(f"tool_call {call.name}({call.arguments})")
    return lines


def request_diff(recorded: ChatRequest, now: ChatRequest) -> str:
    return "\n".join(difflib.unified_diff(request_lines(recorded), request_lines(now), "recorded", "now", lineterm="", n=2))


class ReplayModel:
    """A ChatModel that answers from a trace. With `live` and `live_from`, calls made in node
    steps >= live_from go to the live model instead (a fork)."""

    def __init__(self, trace: Trace, *, live: ChatModel | None = None, live_from: int | None = None,
                 fill_gaps: bool = False) -> None:
        self.trace = trace
        self.live = live
        self.live_from = live_from
        self.fill_gaps = fill_gaps
        """Resume mode: calls the trace has are answered from it, the rest go to `live`."""
        self.answered = 0
        self.live_calls = 0

    async def chat(self, request: ChatRequest) -> ChatResponse:
        call = current_call()
        if call is None:
            raise RolegraphError("ReplayModel answers only inside a recorded run (use it through a Runtime)")
        if self.live_from is not None and call.step is not None and call.step >= self.live_from:
            if self.live is None:
                raise RolegraphError("a fork needs a live model for the steps after --live-from")
            self.live_calls += 1
            return await self.live.chat(request)
        recorded = self.trace.model_call(call.node_key, call.index)
        if self.fill_gaps and (recorded is None or recorded.response is None) and self.live is not None:
            self.live_calls += 1
            return await self.live.chat(request)
        if recorded is None:
            raise ReplayMismatch(
                f"replay: the trace has no model call #{call.index} in node execution {call.node_key} "
                f"(role {call.role}); the graph took a path the recorded run did not")
        if recorded.role != call.role:
            raise ReplayMismatch(f"replay: call #{call.index} in {call.node_key} was made by role "
                                 f"'{recorded.role}' when recorded, by '{call.role}' now")
        if recorded.fingerprint != request.fingerprint:
            raise ReplayMismatch(
                f"replay: the request of role '{call.role}' (call #{call.index} in {call.node_key}, step "
                f"{call.step}) differs from the recorded one:", request_diff(recorded.request, request))
        if recorded.response is None:
            raise ModelError(f"replayed failure: {recorded.error}")
        call.replayed = True
        self.answered += 1
        return recorded.response

    async def aclose(self) -> None:
        if self.live is not None:
            await self.live.aclose()


class ReplayTools:
    """Answers tool calls from a trace by (node execution, tool call index), checking the name
    and input; steps >= live_from run the real tool."""

    def __init__(self, trace: Trace, *, live_from: int | None = None, fill_gaps: bool = False) -> None:
        self.trace, self.live_from, self.fill_gaps = trace, live_from, fill_gaps
        self._calls = {(e.node_key, e.call_index): e for e in trace.of_kind(ToolCall)}

    def answer(self, name: str, node_key: str | None, step: int | None, index: int, value: Any) -> tuple[bool, Any]:
        if self.live_from is not None and step is not None and step >= self.live_from:
            return False, None
        recorded = self._calls.get((node_key, index))
        if recorded is None or recorded.error is not None:
            if self.fill_gaps:
                return False, None
            raise ReplayMismatch(f"replay: the trace has no tool call #{index} in {node_key} (tool {name})")
        if recorded.name != name:
            raise ReplayMismatch(f"replay: tool call #{index} in {node_key} was '{recorded.name}', now '{name}'")
        recorded_input = self._value(recorded.input)
        now = to_jsonable_python(value, fallback=str)
        if recorded_input != now:
            diff = "\n".join(difflib.unified_diff(_json_lines(recorded_input), _json_lines(now), "recorded", "now",
                                                  lineterm="", n=2))
            raise ReplayMismatch(f"replay: the input of tool '{name}' (call #{index} in {node_key}) changed:", diff)
        return True, self._value(recorded.output)

    def _value(self, payload: Any) -> Any:
        if isinstance(payload, dict) and set(payload) == {"blob", "size"}:
            return self.trace.blob(payload)
        return payload


def _json_lines(value: Any) -> list[str]:
    return json.dumps(value, indent=2, sort_keys=True, default=str).splitlines()


def role_prompts(trace: Trace) -> dict[str, str]:
    """Role -> the prompt template its agent used, from the recorded calls."""
    out: dict[str, str] = {}
    for e in trace.of_kind(ModelCall):
        if e.prompt and e.role not in out:
            out[e.role] = e.prompt
    return out


class ForkPrompts:
    """A PromptLibrary whose overrides apply only in node steps >= live_from (the live part),
    so the replayed part still renders the recorded prompts."""

    def __init__(self, base: Any, overrides: dict[str, Any], live_from: int | None) -> None:
        self.base, self.overrides, self.live_from = base, overrides, live_from

    def _live(self) -> bool:
        node = current_node()
        return self.live_from is None or (node is not None and node.step >= self.live_from)

    def get(self, name: str) -> Any:
        if name in self.overrides and self._live():
            return self.overrides[name]
        return self.base.get(name)

    def render(self, name: str, **variables: Any) -> Any:
        return self.get(name).render(**variables)


@dataclass
class StepReplay:
    step: int
    node: str
    delta: Any
    """What the node returned now (JSON)."""
    recorded_delta: Any
    calls_answered: int


async def replay_step(trace: Trace, step: int, *, spec: Any = None, library: Any = None) -> StepReplay:
    """Run one node again on its recorded input state, its model and tool calls answered from
    the trace, and return its update beside the recorded one."""
    from rolegraph import graphs
    from rolegraph.prompts import PromptLibrary
    from rolegraph.runtime import Runtime
    from rolegraph.traces._recorder import RunContext, as_node, takes_runtime

    started = next((e for e in trace.of_kind(NodeStarted) if e.step == step), None)
    finished = next((e for e in trace.of_kind(NodeFinished) if e.step == step), None)
    if started is None or finished is None:
        raise RolegraphError(f"run {trace.run_id} has no finished step {step}")
    if len(started.path) > 1:
        raise RolegraphError(f"step {step} runs inside subgraph {'/'.join(started.path[:-1])}; replay its parent step")
    manifest = trace.started.manifest
    spec = spec or graphs.get(manifest.graph).SPEC
    roles = sorted(set(manifest.roles) | {e.role for e in trace.of_kind(ModelCall)})
    replayers = {r: ReplayModel(trace) for r in roles}
    runtime = Runtime.from_models(replayers, prompts=library or PromptLibrary())
    runtime.tool_source = ReplayTools(trace)
    runtime.memory_source = trace
    graph = spec.prepare(manifest, runtime, None).graph
    wrapper = graph.builder.nodes[started.node].runnable
    fn = getattr(getattr(wrapper, "afunc", None) or getattr(wrapper, "func", None), "rolegraph_inner", None)
    if fn is None:
        raise RolegraphError(f"node '{started.node}' is not a traced node; wrap it with traced_node()")
    schema = graph.builder.state_schema
    state = schema.model_validate(started.state) if hasattr(schema, "model_validate") else started.state
    async with as_node(RunContext(trace.run_id, None), started.node, started.key, step):
        update = await (fn(state, runtime) if takes_runtime(fn) else fn(state))
    return StepReplay(step, started.node, to_jsonable_python(update, fallback=str), finished.delta,
                      sum(m.answered for m in replayers.values()))


async def resume_run(trace: Trace, *, store: Any, live: Any, spec: Any = None) -> Any:
    """Continue an interrupted run from its last checkpoint. Nodes that finished are not run
    again; in the node that was cut off, calls the trace recorded are answered from it."""
    from rolegraph import graphs
    from rolegraph.graphs._run import CHECKPOINTS, run_graph
    from rolegraph.runtime import Runtime

    if trace.complete:
        raise RolegraphError(f"run {trace.run_id} already finished ({trace.status}); nothing to resume")
    if not (trace.dir / CHECKPOINTS).exists():
        raise RolegraphError(f"run {trace.run_id} has no checkpoints to resume from")
    manifest = trace.started.manifest
    module = graphs.get(manifest.graph) if spec is None else None
    roles = sorted(set(manifest.roles) | {e.role for e in trace.of_kind(ModelCall)})
    models = {r: ReplayModel(trace, live=live.unrecorded_model(r), fill_gaps=True) for r in roles}
    runtime = Runtime.from_models(models, prompts=live.prompts, traces=store)
    runtime.tool_source = ReplayTools(trace, fill_gaps=True)
    try:
        return await run_graph(spec or module.SPEC, manifest, runtime, resume=trace)  # type: ignore[union-attr]
    finally:
        await runtime.aclose()


async def replay_run(trace: Trace, *, store: Any = None, live: Any = None, live_from: int | None = None,
                     models: dict[str, str] | None = None, prompts: dict[str, str] | None = None,
                     spec: Any = None, library: Any = None) -> Any:
    """Run the recorded graph again, answering model calls from `trace`.

    With `live_from`, node steps from that one on call `live` (a Runtime) instead; `models`
    (role -> model name) and `prompts` (role -> template file) change roles in that live part.
    `library` is the prompt library the graph was run with (default: the package's).
    Returns the graph's result; the new run is recorded in `store` with its parent.
    """
    from rolegraph import graphs
    from rolegraph.graphs._run import run_graph
    from rolegraph.prompts import PromptLibrary, load_template_file
    from rolegraph.runtime import Runtime

    models, prompts = models or {}, prompts or {}
    if (models or prompts) and live_from is None:
        raise RolegraphError("--model and --prompt change the live part of a fork: give --live-from STEP too")
    manifest = trace.started.manifest
    spec = spec or graphs.get(manifest.graph).SPEC
    roles = sorted(set(manifest.roles) | {e.role for e in trace.of_kind(ModelCall)})
    live_models: dict[str, ChatModel] = {}
    if live_from is not None:
        if live is None:
            raise RolegraphError("a fork needs a live runtime")
        for role in roles:
            live_models[role] = (live.model_named(role, models[role]) if role in models
                                 else live.unrecorded_model(role))
    replayers = {role: ReplayModel(trace, live=live_models.get(role), live_from=live_from) for role in roles}
    library = library or PromptLibrary()
    if prompts:
        used = role_prompts(trace)
        overrides = {}
        for role, path in prompts.items():
            if role not in used:
                raise RolegraphError(f"role '{role}' made no recorded call with a prompt; roles: {', '.join(sorted(used))}")
            overrides[used[role]] = load_template_file(used[role], path)
        library = ForkPrompts(library, overrides, live_from)
    changes = {**{f"model:{r}": m for r, m in models.items()}, **{f"prompt:{r}": p for r, p in prompts.items()}}
    runtime = Runtime.from_models(replayers, prompts=library, traces=store,
                                  trace_parent=ForkOrigin(run_id=trace.run_id, live_from=live_from, changes=changes))
    runtime.tool_source = ReplayTools(trace, live_from=live_from)
    if live_from is None:
        runtime.memory_source = trace  # every memory read answered as recorded
    try:
        result = await run_graph(spec, manifest, runtime, checkpoint=live_from is not None)
    finally:
        await runtime.aclose()
    return result
