"""The data that crosses the model boundary: requests, responses, and the ChatModel protocol.

Everything here is a plain pydantic model so it can be recorded in a trace and compared.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from functools import cached_property
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rolegraph.models._decode import clean_text


class ToolCall(BaseModel):
    """A function call the model asked for."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    arguments: str
    """The raw JSON text of the arguments, as the model wrote it (lone surrogates replaced)."""

    @field_validator("arguments")
    @classmethod
    def _clean(cls, arguments: str) -> str:
        return clean_text(arguments)

    def parsed_arguments(self) -> Any:
        return json.loads(self.arguments)


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    images: tuple[str, ...] = Field(default=(), exclude_if=lambda v: not v)
    """Images sent with the text, as URLs (usually `data:image/jpeg;base64,...`). Left out of the
    serialised message when empty, so text-only requests keep their recorded fingerprints."""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None

    @field_validator("content")
    @classmethod
    def _clean(cls, content: str | None) -> str | None:
        # a prompt rendered from a lone surrogate (a JSON input's escape) could not be sent or hashed
        return None if content is None else clean_text(content)


class ToolSpec(BaseModel):
    """A function the model may call; `parameters` is a JSON schema."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class ChatRequest(BaseModel):
    """What an agent asks a model. Unset sampling fields take the role's configured defaults."""

    model_config = ConfigDict(frozen=True)

    messages: tuple[Message, ...]
    model: str | None = None
    """Overrides the role's model name (for example a LoRA adapter on the same server)."""
    response_schema: dict[str, Any] | None = None
    """Constrain the output to JSON matching this schema."""
    schema_name: str = "output"
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str | None = None
    """'auto', 'none', 'required', or the name of one tool to force."""
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    top_logprobs: int | None = None
    """Ask for log-probabilities with this many alternatives per token."""

    @cached_property
    def fingerprint(self) -> str:
        """A stable hash of what the request asks, used to match recorded calls: the content of
        `comparable()`, so tool-call ids and the order of the tools offered do not count."""
        return hashlib.sha256(self.comparable().model_dump_json().encode()).hexdigest()[:16]

    @cached_property
    def exact_fingerprint(self) -> str:
        """A hash of the request exactly as sent, ids and tool order included (the fingerprint that
        traces written before `comparable()` recorded)."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]

    def comparable(self) -> ChatRequest:
        """This request with what is random by construction taken out: each tool-call id (drawn by
        the model, an app or a library such as a handoff tool) becomes `#n`, n counting the ids in
        the order they first appear, so which tool message answers which call still counts; the
        tools offered are sorted by name (a library may build them from a set, whose order changes
        with PYTHONHASHSEED). A request with neither is returned as it is."""
        ids: dict[str, str] = {}

        def placeholder(ident: str | None) -> str | None:
            return None if ident is None else ids.setdefault(ident, f"#{len(ids)}")

        messages = tuple(
            m.model_copy(update={"tool_calls": tuple(c.model_copy(update={"id": placeholder(c.id)})
                                                     for c in m.tool_calls),
                                 "tool_call_id": placeholder(m.tool_call_id)})
            if m.tool_calls or m.tool_call_id is not None else m
            for m in self.messages)
        tools = tuple(sorted(self.tools, key=lambda t: t.name))
        if not ids and tools == self.tools:
            return self
        # a new instance, not model_copy: that would carry this one's cached fingerprints along
        fields = {name: getattr(self, name) for name in type(self).model_fields}
        return type(self).model_construct(**{**fields, "messages": messages, "tools": tools})


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(prompt_tokens=self.prompt_tokens + other.prompt_tokens,
                     completion_tokens=self.completion_tokens + other.completion_tokens)


class TokenLogprob(BaseModel):
    token: str
    logprob: float
    top: list[tuple[str, float]] = Field(default_factory=list)


class TransportRetry(BaseModel):
    """One failed attempt of a model call that the client retried (connection error, 5xx, 429)."""

    model_config = ConfigDict(frozen=True)

    attempt: int
    """Which attempt failed: 1 is the first request."""
    error: str
    """What went wrong, in a few words ("HTTP 503", "connection refused")."""
    status: int | None = None
    """The HTTP status, when the server answered."""
    wait_s: float
    """Seconds waited before the next attempt (the server's Retry-After, or backoff)."""


class ChatResponse(BaseModel):
    """What came back: text or tool calls, with usage and latency always filled."""

    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: str | None = None
    model: str = ""
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = 0.0
    logprobs: list[TokenLogprob] | None = None
    retries: list[TransportRetry] = Field(default_factory=list, exclude=True)
    """Transport retries it took to get this answer. The trace keeps them on ModelCall.retries
    (so they are not stored twice, and a replayed answer shows none)."""

    @field_validator("text")
    @classmethod
    def _clean(cls, text: str) -> str:
        # a server may send "\ud83d" escapes: no trace, checkpoint or results file could hold it
        return clean_text(text)

    def json_value(self) -> Any:
        """The text decoded as JSON (raises json.JSONDecodeError)."""
        return json.loads(self.text)

    def as_message(self) -> Message:
        return Message(role="assistant", content=self.text, tool_calls=tuple(self.tool_calls))


@runtime_checkable
class ChatModel(Protocol):
    """Anything that answers chat requests: an HTTP client, a test double, a replayer."""

    async def chat(self, request: ChatRequest) -> ChatResponse: ...

    async def aclose(self) -> None: ...


TokenSink = Callable[[str], Awaitable[None]]
"""Receives an answer's text piece by piece as the model writes it; the pieces join to the text."""


async def chat_streamed(model: ChatModel, request: ChatRequest, on_token: TokenSink) -> ChatResponse:
    """`model`'s answer to `request`, its text passed to `on_token` as it comes: through the model's
    own `chat_stream(request, on_token)` when it has one (the OpenAI-compatible client, the test
    doubles, a replay), else all at once when the whole answer is there."""
    stream = getattr(model, "chat_stream", None)
    if stream is not None:
        response: ChatResponse = await stream(request, on_token)
        return response
    response = await model.chat(request)
    if response.text:
        await on_token(response.text)
    return response
