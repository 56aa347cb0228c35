"""Reading a streamed chat completion (server-sent events, as OpenAI, vLLM and llama-server send
them): the answer's text piece by piece as it comes, then the same ChatResponse a whole answer
gives (tool calls, logprobs, finish reason, usage at the end). Whatever bytes arrive end in that
response or in one ModelStreamError."""

from __future__ import annotations

import codecs
import json
import math
import re
from typing import Any

from pydantic import ValidationError

from rolegraph.errors import ModelStreamError
from rolegraph.models._decode import clean_text
from rolegraph.models._types import ChatResponse, TokenLogprob, ToolCall, Usage

DONE = "[DONE]"
_LINE_END = re.compile(r"(\r\n|\r|\n)")
"""Server-sent events end lines with any of these (and only these: a JSON string may hold U+2028)."""
MAX_EVENT_CHARS = 16 * 1024 * 1024
"""The longest event a stream may send (a line that never ends is a broken stream, not an answer)."""


class StreamReader:
    """Feed it the body of a streamed answer as it arrives (`feed`), then `end()` and `response()`.

    `feed` and `end` return the text pieces to pass on, in order: they join to exactly the
    response's text (a UTF-16 surrogate pair split across two events is held back until it is whole)."""

    def __init__(self) -> None:
        self._decode = codecs.getincrementaldecoder("utf-8")("replace")
        self._buffer = ""
        self._data: list[str] = []
        self._size = 0
        self._done = False
        self._pending = ""
        self._text: list[str] = []
        self._calls: dict[int, dict[str, str]] = {}
        self._logprobs: list[TokenLogprob] | None = None
        self._finish: str | None = None
        self._model = ""
        self._usage: Usage | None = None

    # -- bytes to events -------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[str]:
        """Read the next bytes of the body; the text pieces they complete."""
        return self._lines(self._decode.decode(data))

    def end(self) -> list[str]:
        """The body has ended: the text pieces still held back."""
        pieces = self._lines(self._decode.decode(b"", final=True) + "\n", final=True)
        if self._data:  # an event without its closing blank line, at the end of the body
            pieces += self._dispatch()
        if self._pending:
            pieces.append(self._take(clean_text(self._pending)))
            self._pending = ""
        return pieces

    def _lines(self, text: str, *, final: bool = False) -> list[str]:
        parts = _LINE_END.split(self._buffer + text)
        # parts alternate: line, its ending, line, ...; the last part has no ending yet
        self._buffer = parts.pop()
        if not self._buffer and parts and parts[-1] == "\r" and not final:  # a "\n" may follow in the next bytes
            self._buffer = parts.pop(-2) + parts.pop() + self._buffer
        if len(self._buffer) > MAX_EVENT_CHARS:
            raise ModelStreamError(f"the model server sent a stream line over {MAX_EVENT_CHARS} characters")
        pieces: list[str] = []
        for line in parts[::2]:
            if not line:
                pieces += self._dispatch()
            elif not line.startswith(":"):  # ":" starts a comment (a keep-alive)
                name, _, value = line.partition(":")
                if name == "data":
                    self._data.append(value[1:] if value.startswith(" ") else value)
                    self._size += len(value)
                    if self._size > MAX_EVENT_CHARS:
                        raise ModelStreamError(f"the model server sent a stream event over {MAX_EVENT_CHARS} characters")
        return pieces

    def _dispatch(self) -> list[str]:
        data, self._data, self._size = "\n".join(self._data), [], 0
        if self._done or not data.strip():
            return []
        if data.strip() == DONE:
            self._done = True
            return []
        try:
            chunk = json.loads(data)
        except (ValueError, RecursionError):
            raise ModelStreamError(f"the model server sent a stream event that is not JSON: {data[:200]!r}") from None
        return self._chunk(chunk)

    # -- events to the answer --------------------------------------------------------------------

    def _chunk(self, chunk: Any) -> list[str]:
        if not isinstance(chunk, dict):
            raise _malformed("an event", chunk)
        if chunk.get("error") is not None:
            error = chunk["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise ModelStreamError(f"the model server stopped its stream with an error: {str(message)[:500]}")
        if isinstance(chunk.get("model"), str) and chunk["model"]:
            self._model = clean_text(chunk["model"])
        if chunk.get("usage") is not None:
            self._usage = _usage(chunk["usage"])
        choices = chunk.get("choices") or []
        if not isinstance(choices, list):
            raise _malformed("choices", choices)
        pieces: list[str] = []
        for choice in choices:
            if not isinstance(choice, dict):
                raise _malformed("a choice", choice)
            if choice.get("index", 0) != 0:
                continue  # one answer is asked for; another choice is not part of it
            pieces += self._choice(choice)
        return pieces

    def _choice(self, choice: dict[str, Any]) -> list[str]:
        delta = choice.get("delta") or {}
        if not isinstance(delta, dict):
            raise _malformed("a delta", delta)
        finish = choice.get("finish_reason")
        if finish is not None:
            if not isinstance(finish, str):
                raise _malformed("finish_reason", finish)
            self._finish = finish
        if choice.get("logprobs") is not None:
            self._add_logprobs(choice["logprobs"])
        for i, call in enumerate(_list(delta.get("tool_calls"), "tool_calls")):
            self._add_call(i, call)
        content = delta.get("content")
        if content is None:
            return []
        if not isinstance(content, str):
            raise _malformed("content", content)
        text = self._pending + content
        # a high surrogate at the end may be the first half of a pair the next event completes
        self._pending = text[-1] if text and "\ud800" <= text[-1] <= "\udbff" else ""
        if self._pending:
            text = text[:-1]
        piece = clean_text(text)
        return [self._take(piece)] if piece else []

    def _take(self, piece: str) -> str:
        self._text.append(piece)
        return piece

    def _add_call(self, position: int, call: Any) -> None:
        if not isinstance(call, dict):
            raise _malformed("a tool call", call)
        index = call.get("index", position)
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 1024:
            raise _malformed("a tool call's index", index)
        function = call.get("function") or {}
        if not isinstance(function, dict):
            raise _malformed("a tool call's function", function)
        slot = self._calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
        for key, value in (("id", call.get("id")), ("name", function.get("name")),
                           ("arguments", function.get("arguments"))):
            if value is None:
                continue
            if not isinstance(value, str):
                raise _malformed(f"a tool call's {key}", value)
            # the id and name come whole in one delta (some servers repeat them); arguments in pieces
            slot[key] = slot[key] + value if key == "arguments" else value

    def _add_logprobs(self, logprobs: Any) -> None:
        if not isinstance(logprobs, dict):
            raise _malformed("logprobs", logprobs)
        for entry in _list(logprobs.get("content"), "logprobs.content"):
            if not isinstance(entry, dict):
                raise _malformed("a token's logprob", entry)
            top = [(_str(t.get("token") if isinstance(t, dict) else None, "a top token"),
                    _number(t.get("logprob") if isinstance(t, dict) else None))
                   for t in _list(entry.get("top_logprobs"), "top_logprobs")]
            token = TokenLogprob(token=clean_text(_str(entry.get("token"), "a token")),
                                 logprob=_number(entry.get("logprob")),
                                 top=[(clean_text(t), lp) for t, lp in top])
            self._logprobs = [*(self._logprobs or []), token]

    def response(self, latency_s: float = 0.0) -> ChatResponse:
        """The whole answer, once the body has ended (`end`); a ModelStreamError when the stream
        stopped before the answer was complete (`cut`) or a tool call came without a name."""
        if not self._done and self._finish is None:
            raise ModelStreamError("the model server's stream ended before the answer was complete", cut=True)
        calls = []
        for i, (_, call) in enumerate(sorted(self._calls.items())):
            if not call["name"]:
                raise ModelStreamError(f"the model server streamed tool call #{i} without a name")
            calls.append(ToolCall(id=clean_text(call["id"]) or f"call_{i}", name=clean_text(call["name"]),
                                  arguments=call["arguments"] or "{}"))
        try:
            return ChatResponse(text="".join(self._text), tool_calls=calls, finish_reason=self._finish,
                                model=self._model, usage=self._usage or Usage(), latency_s=latency_s,
                                logprobs=self._logprobs)
        except ValidationError as exc:  # pragma: no cover - every field was checked as it came
            raise ModelStreamError(f"the model server's streamed answer is not valid: {exc}") from None


def _malformed(what: str, value: Any) -> ModelStreamError:
    return ModelStreamError(f"the model server streamed {what} of the wrong shape: {str(value)[:200]!r}")


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _malformed(what, value)
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _malformed(what, value)
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _malformed("a logprob", value)
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        raise _malformed("a logprob", value) from None
    return number if not math.isnan(number) else -math.inf


def _usage(value: Any) -> Usage:
    if not isinstance(value, dict):
        raise _malformed("usage", value)
    counts = []
    for key in ("prompt_tokens", "completion_tokens"):
        n = value.get(key) or 0
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise _malformed(f"usage.{key}", n)
        counts.append(n)
    return Usage(prompt_tokens=counts[0], completion_tokens=counts[1])
