"""Replay and fork: answer model calls from a recorded trace by (node execution, call index),
checking that the request is the one recorded; optionally go live from a node step on."""

from __future__ import annotations

import difflib
import json
from typing import Any

from pydantic_core import to_jsonable_python

from rolegraph.errors import ModelError, RolegraphError
from rolegraph.models import ChatModel, ChatRequest, ChatResponse
from rolegraph.traces._events import ModelCall, ToolCall
from rolegraph.traces._recorder import current_call, current_node
from rolegraph.traces._trace import Trace


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
                 fill_gaps: bool = False, live_from_call: int = 0) -> None:
        self.trace = trace
        self.live = live
        self.live_from = live_from
        self.live_from_call = live_from_call
        """Within step `live_from`, the calls before this index are still answered from the trace."""
        self.fill_gaps = fill_gaps
        """Resume mode: calls the trace has are answered from it, the rest go to `live`."""
        self.answered = 0
        self.live_calls = 0

    async def chat(self, request: ChatRequest) -> ChatResponse:
        call = current_call()
        if call is None:
            raise RolegraphError("ReplayModel answers only inside a recorded run (use it through a Runtime)")
        if self.live_from is not None and call.step is not None and (
                call.step > self.live_from or (call.step == self.live_from and call.index >= self.live_from_call)):
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

    def below(self, *dirs: Any) -> ForkPrompts:
        return ForkPrompts(self.base.below(*dirs), self.overrides, self.live_from)
