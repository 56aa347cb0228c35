"""Replay, fork and resume as one value: `Replay` says what is answered from a recorded trace and
what runs live; the replay model and tools answer by (node execution, call index), checking that
the request is the one recorded."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import to_jsonable_python

from rolegraph.errors import ModelError, ReplayMismatch, RolegraphError
from rolegraph.models import ChatModel, ChatRequest, ChatResponse
from rolegraph.traces._events import ForkOrigin, ModelCall, ToolInvocation
from rolegraph.traces._recorder import current_call
from rolegraph.traces._trace import Trace


@dataclass(frozen=True)
class Point:
    """A place in a recorded run: node step `step`, and model call `call` within it."""

    step: int
    call: int = 0


@dataclass(frozen=True)
class Replay:
    """What a replay, a fork or a resume answers from a recorded trace and what it runs live.

    One immutable value, given to a `Runtime` when it is made; its models, tools, memories and
    prompts all ask it the same question, `answers(step, call)`:

    - a replay (`live_from=None`): everything is answered from the trace;
    - a fork (`live_from=Point(step, call)`): what comes before that point is answered, the rest
      runs live, with `models` (role -> model name) and `prompts` (template name -> template)
      changed in the live part;
    - a resume (`fill_gaps=True`): what the trace has is answered, what it lacks runs live, and
      memories are read live (they persisted across the interruption).
    """

    trace: Trace
    live_from: Point | None = None
    """The fork point: model calls from here on (and tools and memory reads from its step on) run live."""
    fill_gaps: bool = False
    """Resume: a call the trace has is answered from it, one it lacks (or that failed) runs live."""
    models: Mapping[str, str] = field(default_factory=dict)
    """Role -> the model name that plays it in the live part (another LoRA adapter, say)."""
    prompts: Mapping[str, Any] = field(default_factory=dict)
    """Template name -> the PromptTemplate rendered in its place in the live part."""
    prompt_files: Mapping[str, str] = field(default_factory=dict)
    """Role -> the file its changed prompt came from, as the new run's origin records it."""

    def answers(self, step: int | None, call: int | None = None) -> bool:
        """Whether what happens in node step `step` is answered from the trace: model call `call`
        of it, or (`call=None`) the step's tools, memory reads and prompts. Everything is in a
        replay; in a fork, what comes before the fork point (outside any node step too)."""
        point = self.live_from
        if point is None or step is None:
            return True
        return step < point.step or (call is not None and step == point.step and call < point.call)

    @property
    def reads_memory(self) -> bool:
        """Whether memory reads (of the steps `answers`) come from the trace: not in a resume."""
        return not self.fill_gaps

    @property
    def origin(self) -> ForkOrigin | None:
        """The new run's parent as its trace records it (None for a resume, which continues the run)."""
        if self.fill_gaps:
            return None
        changes = {**{f"model:{r}": m for r, m in self.models.items()},
                   **{f"prompt:{r}": p for r, p in self.prompt_files.items()}}
        point = self.live_from
        return ForkOrigin(run_id=self.trace.run_id, live_from=point.step if point else None,
                          live_from_call=point.call if point else 0, changes=changes)


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
    """A ChatModel that answers from a trace, as `replay` says: calls it does not answer (a fork's
    live part, a resume's gaps) go to `live`."""

    def __init__(self, replay: Replay | Trace, *, live: ChatModel | None = None) -> None:
        self.replay = replay if isinstance(replay, Replay) else Replay(replay)
        self.live = live
        self.answered = 0
        self.live_calls = 0

    async def chat(self, request: ChatRequest) -> ChatResponse:
        call = current_call()
        if call is None:
            raise RolegraphError("ReplayModel answers only inside a recorded run (use it through a Runtime)")
        if not self.replay.answers(call.step, call.index):
            if self.live is None:
                raise RolegraphError("a fork needs a live model for the steps after --live-from")
            self.live_calls += 1
            return await self.live.chat(request)
        recorded = self.replay.trace.model_call(call.node_key, call.index)
        if self.replay.fill_gaps and (recorded is None or recorded.response is None) and self.live is not None:
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
    and input, as `replay` says: the steps it does not answer run the real tool."""

    def __init__(self, replay: Replay) -> None:
        self.replay, self.trace = replay, replay.trace
        self._calls = {(e.node_key, e.call_index): e for e in replay.trace.of_kind(ToolInvocation)}

    def answer(self, name: str, node_key: str | None, step: int | None, index: int, value: Any) -> tuple[bool, Any]:
        if not self.replay.answers(step):
            return False, None
        recorded = self._calls.get((node_key, index))
        if recorded is None or recorded.error is not None:
            if self.replay.fill_gaps:
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
