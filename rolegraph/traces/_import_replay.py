"""Answering a run's model and tool calls from an imported trace, in order: an app replayed against
a trace recorded elsewhere (whose steps are not this app's) is answered call by call.

The rule: the n-th model call the app makes is answered by the n-th model call of the imported run
(in the order the spans started). It must ask what was recorded, compared as closely as the source
allows: the messages (role, text, the tool calls an assistant message made: name and arguments as
JSON values; tool-call ids aside), the model name when both name one, and the tools offered (by name)
when the source recorded them. The n-th call of tool T is answered by the n-th imported call of T
(a rolegraph tool `langchain.T` is T), its input compared as a JSON value."""

from __future__ import annotations

import json
from typing import Any

from rolegraph.errors import ReplayMismatch, UserError
from rolegraph.models import ChatRequest, ChatResponse, Message, TokenSink
from rolegraph.traces._events import ModelCall, ToolInvocation
from rolegraph.traces._import import IMPORTED
from rolegraph.traces._import_genai import loads
from rolegraph.traces._recorder import current_call
from rolegraph.traces._replay import request_diff
from rolegraph.traces._trace import Trace

CAPTURE_HELP = ("turn message capture on where the trace is recorded and record it again: for the openai client's "
                "OpenTelemetry instrumentation (opentelemetry-instrumentation-openai-v2), "
                "OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental and "
                "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_ONLY; for OpenInference, leave "
                "OPENINFERENCE_HIDE_INPUTS, OPENINFERENCE_HIDE_OUTPUTS and OPENINFERENCE_HIDE_INPUT_MESSAGES/"
                "OUTPUT_MESSAGES unset")


def _args(text: str) -> Any:
    try:
        return json.loads(text) if text.strip() else {}
    except ValueError:
        return text


def _comparable(request: ChatRequest, *, tools: bool) -> ChatRequest:
    """What of a request the imported spans can be compared on (see the module's rule)."""
    messages = tuple(Message(role=m.role, content=(m.content or "").strip(),
                             tool_calls=tuple(c.model_copy(update={"id": "-", "arguments": json.dumps(
                                 _args(c.arguments), sort_keys=True)}) for c in m.tool_calls))
                     for m in request.messages)
    return ChatRequest(messages=messages, tools=tuple(sorted(request.tools, key=lambda t: t.name)) if tools else ())


def same_as_imported(recorded: ChatRequest, now: ChatRequest) -> bool:
    """Whether `now` asks what the imported call `recorded` asked, by the module's rule (the model name
    aside: a replayed request names none until a model plays it)."""
    tools = bool(recorded.tools and now.tools)
    return _comparable(recorded, tools=tools) == _comparable(now, tools=tools)


class ImportedAnswers:
    """A ChatModel and a tool source that answer from an imported run, in order (the module's rule):
    nothing is ever sent anywhere."""

    def __init__(self, trace: Trace) -> None:
        tags = trace.started.manifest.tags
        if IMPORTED not in tags:
            raise UserError(f"run {trace.run_id} was recorded by rolegraph, not imported: replay it by itself "
                            f"(`rolegraph replay {trace.run_id}`)")
        self.trace = trace
        self.calls: list[ModelCall] = trace.of_kind(ModelCall)
        self.tools: list[ToolInvocation] = trace.of_kind(ToolInvocation)
        blind = [c for c in self.calls if not c.request.messages or (c.response is not None and not c.response.text
                                                                     and not c.response.tool_calls)]
        if blind or tags.get("content") == "no":
            raise UserError(f"run {trace.run_id} cannot be replayed: its {len(blind) or 'model'} model call spans carry no "
                            f"message content (recorded with content capture off), so there is nothing to answer "
                            f"the app's calls with. To replay such a run, {CAPTURE_HELP}")
        self.answered = 0
        self.tools_answered = 0
        self._used: dict[str, int] = {}

    # -- the model --------------------------------------------------------------------------------

    async def chat(self, request: ChatRequest) -> ChatResponse:
        n = self.answered
        if n >= len(self.calls):
            raise ReplayMismatch(f"replay of imported run {self.trace.run_id}: the app makes model call #{n + 1}, "
                                 f"but the trace recorded {len(self.calls)}; the app now takes a path the recorded "
                                 "run did not")
        recorded = self.calls[n]
        now_model, then_model = request.model, recorded.request.model
        if now_model and then_model and now_model != then_model:
            raise ReplayMismatch(f"replay of imported run {self.trace.run_id}: model call #{n + 1} asks model "
                                 f"'{now_model}', the trace's asked '{then_model}'")
        tools = bool(recorded.request.tools)
        a, b = _comparable(recorded.request, tools=tools), _comparable(request, tools=tools)
        if a != b:
            raise ReplayMismatch(
                f"replay of imported run {self.trace.run_id}: model call #{n + 1} (step {recorded.step}, "
                f"{recorded.node_key} in the trace) asks something else than the recorded call (compared: messages' "
                f"roles, text and tool calls{', tools offered' if tools else ''}):", request_diff(a, b))
        if recorded.response is None:
            raise ReplayMismatch(f"replay of imported run {self.trace.run_id}: model call #{n + 1} failed when "
                                 f"recorded ({recorded.error}); it has no answer to give")
        self.answered += 1
        call = current_call()
        if call is not None:
            call.replayed = True
        return recorded.response

    async def chat_stream(self, request: ChatRequest, on_token: TokenSink) -> ChatResponse:
        response = await self.chat(request)
        if response.text:
            await on_token(response.text)
        return response

    async def aclose(self) -> None:
        return None

    # -- the tools --------------------------------------------------------------------------------

    def answer(self, name: str, node_key: str | None, step: int | None, index: int, value: Any) -> tuple[bool, Any]:
        mine = [t for t in self.tools if t.name == name or name.endswith("." + t.name)]
        n = self._used.get(name, 0)
        if n >= len(mine):
            raise ReplayMismatch(f"replay of imported run {self.trace.run_id}: the app calls tool '{name}' for the "
                                 f"{n + 1}. time; the trace recorded {len(mine)} such calls")
        recorded = mine[n]
        then = loads(recorded.input) if isinstance(recorded.input, str) else recorded.input
        now = json.loads(json.dumps(value, default=str))
        if isinstance(then, dict) and then != now:
            raise ReplayMismatch(f"replay of imported run {self.trace.run_id}: call {n + 1} of tool '{name}' is given "
                                 f"{json.dumps(now, sort_keys=True)}, the trace's was {json.dumps(then, sort_keys=True)}")
        if recorded.error is not None:
            raise ReplayMismatch(f"replay of imported run {self.trace.run_id}: call {n + 1} of tool '{name}' failed "
                                 f"when recorded ({recorded.error})")
        self._used[name] = n + 1
        self.tools_answered += 1
        return True, recorded.output

    def unused(self) -> list[str]:
        """What the trace recorded that the replay did not ask for."""
        out = []
        if self.answered < len(self.calls):
            out.append(f"{len(self.calls) - self.answered} model calls")
        left = len(self.tools) - self.tools_answered
        if left:
            out.append(f"{left} tool calls")
        return out
