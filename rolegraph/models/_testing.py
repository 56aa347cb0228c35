"""Strict test doubles: ScriptedModel plays a fixed script, FunctionModel calls a function.

Both sit where an HTTP model would, so tests still go through prompt rendering and the agent's
output parsing and retries.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from pydantic import BaseModel

from rolegraph.errors import ScriptError
from rolegraph.models._types import ChatRequest, ChatResponse, TokenSink, Usage

Step = str | dict[str, Any] | BaseModel | ChatResponse | BaseException | Callable[[ChatRequest], Any]
"""A scripted answer: text; a dict or pydantic model (sent as JSON); a full ChatResponse;
an exception to raise; or a function of the request returning any of those."""


def _as_response(value: Any, request: ChatRequest) -> ChatResponse:
    if isinstance(value, ChatResponse):
        return value
    if isinstance(value, BaseException):
        raise value
    if isinstance(value, BaseModel):
        text = value.model_dump_json()
    elif isinstance(value, (dict, list)):
        text = json.dumps(value)
    elif isinstance(value, str):
        text = value
    else:
        raise ScriptError(f"a scripted step must give text, JSON or a ChatResponse, not {type(value).__name__}")
    prompt_chars = sum(len(m.content or "") for m in request.messages)
    return ChatResponse(text=text, finish_reason="stop", model="scripted",
                        usage=Usage(prompt_tokens=max(1, prompt_chars // 4),
                                    completion_tokens=max(1, len(text) // 4)))


_PIECE = re.compile(r"\s*\S+|\s+")


def pieces(text: str) -> list[str]:
    """`text` in the pieces the test doubles stream it in: each word with the space before it."""
    return _PIECE.findall(text)


async def _stream(response: ChatResponse, on_token: TokenSink) -> ChatResponse:
    for piece in pieces(response.text):
        await on_token(piece)
    return response


class ScriptedModel:
    """Answers each call with the next step of its script, and nothing else.

    An extra call raises ScriptError; so does `verify()` (called by `Runtime.aclose()`) while
    steps remain. Every request is kept in `requests` for assertions.
    """

    def __init__(self, steps: Iterable[Step], *, name: str = "scripted") -> None:
        self.name = name
        self._steps = list(steps)
        self._next = 0
        self.requests: list[ChatRequest] = []

    @property
    def remaining(self) -> int:
        return len(self._steps) - self._next

    async def chat(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        if self._next >= len(self._steps):
            last = (request.messages[-1].content or "")[:200] if request.messages else ""
            raise ScriptError(
                f"{self.name}: unexpected call #{len(self.requests)} (script has {len(self._steps)} "
                f"steps); last message: {last!r}"
            )
        step = self._steps[self._next]
        self._next += 1
        if callable(step) and not isinstance(step, (BaseModel, BaseException)):
            step = step(request)
            if inspect.isawaitable(step):
                step = await step
        return _as_response(step, request)

    async def chat_stream(self, request: ChatRequest, on_token: TokenSink) -> ChatResponse:
        """`chat`, its answer's text passed to `on_token` word by word (`pieces`)."""
        return await _stream(await self.chat(request), on_token)

    def verify(self) -> None:
        if self.remaining:
            raise ScriptError(f"{self.name}: {self.remaining} scripted step(s) were never used")

    async def aclose(self) -> None:
        self.verify()


class FunctionModel:
    """Answers every call with `fn(request)` (sync or async), returning any Step value."""

    def __init__(self, fn: Callable[[ChatRequest], Any | Awaitable[Any]], *, name: str = "function") -> None:
        self.fn = fn
        self.name = name
        self.requests: list[ChatRequest] = []

    async def chat(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        value = self.fn(request)
        if inspect.isawaitable(value):
            value = await value
        return _as_response(value, request)

    async def chat_stream(self, request: ChatRequest, on_token: TokenSink) -> ChatResponse:
        """`chat`, its answer's text passed to `on_token` word by word (`pieces`)."""
        return await _stream(await self.chat(request), on_token)

    async def aclose(self) -> None:
        return None
