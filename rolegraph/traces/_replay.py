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
from rolegraph.models import ChatModel, ChatRequest, ChatResponse, TokenSink, chat_streamed
from rolegraph.traces._events import ForkOrigin, ModelCall, PendingInterrupt, ToolInvocation
from rolegraph.traces._recorder import current_call
from rolegraph.traces._trace import Trace

ANY_QUESTION = "*"
"""`Replay.human` key for a bare answer: it answers the first questions the live part asks."""


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

    A question a node asks with LangGraph's `interrupt()` is answered the same way (`human_answer`):
    from the trace where the run is replayed, from `human` where it runs live (a resume's answers,
    a fork's changed answer); a question nobody answers stops the run there, `interrupted`.
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
    human: Mapping[str, Any] = field(default_factory=dict)
    """Human answers for the part that runs live, by interrupt id, node execution key or node name;
    under `ANY_QUESTION`, the answer to each question of the first stop in the live part."""

    def answers(self, step: int | None, call: int | None = None) -> bool:
        """Whether what happens in node step `step` is answered from the trace: model call `call`
        of it, or (`call=None`) the step's tools, memory reads and prompts. Everything is in a
        replay; in a fork, what comes before the fork point (outside any node step too)."""
        point = self.live_from
        if point is None or step is None:
            return True
        return step < point.step or (call is not None and step == point.step and call < point.call)

    def human_answer(self, question: PendingInterrupt, *, first_stop: bool = False) -> tuple[bool, Any]:
        """`(True, answer)` for a question a node asked: in the replayed part, the answer the trace
        recorded for it (the n-th answer its node execution was given); in the live part (a fork's, a
        resume), one of `human` (by id, node key or node name; `ANY_QUESTION` at the live part's
        `first_stop`). `(False, None)` when nothing answers it: the run stops there."""
        if self.fill_gaps or not self.answers(question.step):
            for key in (question.id, question.node_key, question.node):
                if key and key in self.human:
                    return True, self.human[key]
            if first_stop and ANY_QUESTION in self.human:
                return True, self.human[ANY_QUESTION]
        if self.answers(question.step):
            recorded = self.trace.human_answer(question.node_key, question.index)
            if recorded is not None:
                return True, recorded.answer
        return False, None

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
                   **{f"prompt:{r}": p for r, p in self.prompt_files.items()},
                   **{f"answer:{k}": json.dumps(a, default=str) for k, a in self.human.items()}}
        point = self.live_from
        return ForkOrigin(run_id=self.trace.run_id, live_from=point.step if point else None,
                          live_from_call=point.call if point else 0, changes=changes)


def request_lines(request: ChatRequest) -> list[str]:
    """A request as lines a person can diff: settings first, then each message. Tool-call ids are
    shown as `#n` (see `ChatRequest.comparable`): which call a tool message answers, not the
    random value."""
    request = request.comparable()
    settings = request.model_dump(mode="json", exclude={"messages"}, exclude_none=True)
    schema = settings.pop("response_schema", None)
    lines = [f"{k}: {json.dumps(v, sort_keys=True)}" for k, v in sorted(settings.items()) if v not in ((), [], "")]
    if schema is not None:
        lines.append(f"response_schema: {json.dumps(schema, sort_keys=True)}")
    for i, m in enumerate(request.messages):
        answers = f", answers {m.tool_call_id}" if m.tool_call_id is not None else ""
        lines.append(f"--- message {i} ({m.role}{answers})")
        lines.extend((m.content or "").splitlines() or [""])
        for call in m.tool_calls:
            lines.append(f"tool_call {call.id} {call.name}({call.arguments})")
    return lines


def request_diff(recorded: ChatRequest, now: ChatRequest) -> str:
    """The two requests' differing lines; where the lines shown are the same (the difference is in
    a part `request_lines` leaves out, such as images or a message's name), their JSON."""
    diff = list(difflib.unified_diff(request_lines(recorded), request_lines(now), "recorded", "now", lineterm="", n=2))
    if not diff:
        for a, b in ((recorded.comparable(), now.comparable()), (recorded, now)):
            diff = list(difflib.unified_diff(_json_lines(a.model_dump(mode="json")), _json_lines(b.model_dump(mode="json")),
                                             "recorded", "now", lineterm="", n=2))
            if diff:
                break
    return "\n".join(diff)


def changed_fields(recorded: ChatRequest, now: ChatRequest, limit: int = 6) -> list[str]:
    """The fields in which two requests differ, compared as `ChatRequest.comparable` does:
    `tools`, `messages[3].content`, `messages (5 recorded, 6 now)`."""
    a = recorded.comparable().model_dump(mode="json")
    b = now.comparable().model_dump(mode="json")
    out = [k for k in a if k != "messages" and a[k] != b.get(k)]
    ma, mb = a["messages"], b["messages"]
    if len(ma) != len(mb):
        out.append(f"messages ({len(ma)} recorded, {len(mb)} now)")
    for i, (x, y) in enumerate(zip(ma, mb, strict=False)):
        out += [f"messages[{i}].{k}" for k in x if x[k] != y.get(k)]
    if not out:  # the same request by every field: the ids alone, or a fingerprint that is not its request's
        out.append("tool-call ids" if recorded.exact_fingerprint != now.exact_fingerprint else
                   "the fingerprint recorded with it (the trace's request is the same)")
    return out[:limit] + ([f"{len(out) - limit} more"] if len(out) > limit else [])


def same_request(a: ModelCall, b: ModelCall) -> bool:
    """Whether two recorded calls made the same request, as the fingerprint compares them (random
    ids and the tools' order aside), for traces written before that comparison too."""
    return a.fingerprint == b.fingerprint or a.request.fingerprint == b.request.fingerprint


def matches_recorded(recorded: ModelCall, request: ChatRequest) -> bool:
    """Whether `request` is the one `recorded` made: its fingerprint, or, for a trace written before
    fingerprints left random ids out, the exact request's."""
    return recorded.fingerprint == request.fingerprint or recorded.fingerprint == request.exact_fingerprint


class ReplayModel:
    """A ChatModel that answers from a trace, as `replay` says: calls it does not answer (a fork's
    live part, a resume's gaps) go to `live`."""

    def __init__(self, replay: Replay | Trace, *, live: ChatModel | None = None) -> None:
        self.replay = replay if isinstance(replay, Replay) else Replay(replay)
        self.live = live
        self.answered = 0
        self.live_calls = 0

    async def chat(self, request: ChatRequest) -> ChatResponse:
        return await self._answer(request, None)

    async def chat_stream(self, request: ChatRequest, on_token: TokenSink) -> ChatResponse:
        """`chat`, streamed: a call that runs live streams as its live model does; an answer from the
        trace is passed to `on_token` whole, in one piece (a recording keeps the text, not its pieces)."""
        return await self._answer(request, on_token)

    async def _live_answer(self, request: ChatRequest, on_token: TokenSink | None) -> ChatResponse:
        assert self.live is not None
        self.live_calls += 1
        return await (self.live.chat(request) if on_token is None else chat_streamed(self.live, request, on_token))

    async def _answer(self, request: ChatRequest, on_token: TokenSink | None) -> ChatResponse:
        call = current_call()
        if call is None:
            raise RolegraphError("ReplayModel answers only inside a recorded run (use it through a Runtime)")
        if not self.replay.answers(call.step, call.index):
            if self.live is None:
                raise RolegraphError("a fork needs a live model for the steps after --live-from")
            return await self._live_answer(request, on_token)
        recorded = self.replay.trace.model_call(call.node_key, call.index)
        if self.replay.fill_gaps and (recorded is None or recorded.response is None) and self.live is not None:
            return await self._live_answer(request, on_token)
        if recorded is None:
            raise ReplayMismatch(
                f"replay: the trace has no model call #{call.index} in node execution {call.node_key} "
                f"(role {call.role}); the graph took a path the recorded run did not")
        if recorded.role != call.role:
            raise ReplayMismatch(f"replay: call #{call.index} in {call.node_key} was made by role "
                                 f"'{recorded.role}' when recorded, by '{call.role}' now")
        if not matches_recorded(recorded, request):
            fields = ", ".join(changed_fields(recorded.request, request)) or "its content"
            raise ReplayMismatch(
                f"replay: the request of role '{call.role}' (call #{call.index} in {call.node_key}, step "
                f"{call.step}) differs from the recorded one in {fields}:", request_diff(recorded.request, request))
        if recorded.response is None:
            raise ModelError(f"replayed failure: {recorded.error}")
        call.replayed = True
        self.answered += 1
        if on_token is not None and recorded.response.text:
            await on_token(recorded.response.text)
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
