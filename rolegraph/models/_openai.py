"""OpenAICompatModel: a ChatModel for one model name on an OpenAI-compatible endpoint, with
structured output per server dialect, tool calls, logprobs, and usage and latency on every answer."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx2
import openai
from openai.types.chat import ChatCompletion

from rolegraph.errors import ModelStreamError
from rolegraph.models._dialects import STREAMING_DIALECTS, constrain_schema, response_format
from rolegraph.models._endpoint import BaseUrl, Endpoint, lora_field
from rolegraph.models._stream import StreamReader
from rolegraph.models._types import (
    ChatRequest,
    ChatResponse,
    Message,
    TokenLogprob,
    TokenSink,
    ToolCall,
    TransportRetry,
    Usage,
)


class OpenAICompatModel:
    """A ChatModel that talks to one model name on an OpenAI-compatible endpoint.

    `OpenAICompatModel("http://127.0.0.1:8000/v1", "planner")` makes its own endpoint;
    pass `endpoint=` to share one between several models (several LoRA adapters, say).
    """

    def __init__(
        self,
        base_url: BaseUrl | None = None,
        model: str = "default",
        *,
        endpoint: Endpoint | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        **endpoint_options: Any,
    ) -> None:
        if endpoint is None:
            if base_url is None:
                raise TypeError("OpenAICompatModel needs base_url or endpoint")
            endpoint = Endpoint(base_url, **endpoint_options)
            self._owns_endpoint = True
        else:
            self._owns_endpoint = False
        self.endpoint = endpoint
        self.model = model
        self.defaults: dict[str, Any] = {"temperature": temperature, "top_p": top_p, "max_tokens": max_tokens, "seed": seed}

    def __repr__(self) -> str:
        return f"OpenAICompatModel(model={self.model!r}, endpoint={self.endpoint!r})"

    async def chat(self, request: ChatRequest) -> ChatResponse:
        body, forced = await self._body(request)
        return await self._complete(body, forced)

    async def _complete(self, body: dict[str, Any], forced: list[str] | None) -> ChatResponse:
        """The whole answer to `body` in one response."""
        client = await self.endpoint.client()
        started = time.perf_counter()
        retries: list[TransportRetry] = []
        # the JSON body as is, through the SDK's client (auth, timeouts, response parsing): the request
        # is already plain JSON, and `chat.completions.create` would walk it against the SDK's
        # TypedDicts first, which cost more CPU than the rest of the call (`client.post` is the
        # SDK's documented way to send a body of one's own)
        payload = {**body, **body.pop("extra_body", {})}
        completion = await self.endpoint.call(
            lambda: client.post("/chat/completions", body=payload, cast_to=ChatCompletion), retries=retries)
        latency = time.perf_counter() - started
        response = _to_response(completion, latency)
        if forced is not None:
            response = _as_tool_call(response, forced)
        response.retries = retries
        return response

    async def chat_stream(self, request: ChatRequest, on_token: TokenSink) -> ChatResponse:
        """`chat`, with the answer's text passed to `on_token` as the server writes it (`stream: true`,
        usage at the end). The request is the one `chat` sends, plus the stream fields, and the
        response the same. Transport failures before the first piece is passed on are retried as
        `chat` retries them; a stream that breaks off after it raises ModelStreamError. A forced
        tool call read back from structured output, and a server that streams no usage
        (llama-cpp-python's), are asked for whole and passed on in one piece."""
        body, forced = await self._body(request)
        if forced is not None or await self.endpoint.dialect() not in STREAMING_DIALECTS:
            whole = await self._complete(body, forced)
            if whole.text:
                await on_token(whole.text)
            return whole
        client = await self.endpoint.client()
        payload = {**body, **body.pop("extra_body", {}), "stream": True, "stream_options": {"include_usage": True}}
        started = time.perf_counter()
        retries: list[TransportRetry] = []
        passed = 0

        async def attempt() -> ChatResponse:
            nonlocal passed
            reader = StreamReader()
            raw = await client.post("/chat/completions", body=payload, cast_to=httpx2.Response, stream=True)
            try:
                try:
                    async for data in raw.aiter_bytes():
                        for piece in reader.feed(data):
                            passed += 1
                            await on_token(piece)
                except (httpx2.TransportError, httpx2.StreamError, OSError) as exc:
                    raise ModelStreamError(f"the stream broke off ({type(exc).__name__}: {exc})", cut=True) from exc
                for piece in reader.end():
                    passed += 1
                    await on_token(piece)
                return reader.response(time.perf_counter() - started)
            except ModelStreamError as exc:
                if exc.cut and not passed:  # nothing passed on yet: asked for again, like a dropped connection
                    raise openai.APIConnectionError(message=str(exc), request=raw.request) from exc
                where = f"model server at {self.endpoint.display_url}"
                after = f" after {passed} piece(s) of the answer were passed on" if passed else ""
                raise ModelStreamError(f"{where}: {exc}{after}", cut=exc.cut) from exc
            finally:
                await raw.aclose()

        response: ChatResponse = await self.endpoint.call(attempt, retries=retries)
        response.retries = retries
        return response

    async def _body(self, request: ChatRequest) -> tuple[dict[str, Any], list[str] | None]:
        """The request body, and the tools of a forced call asked for as structured output (whose
        answer is read back as that call), if any."""
        dialect = await self.endpoint.dialect()
        constrain = self.endpoint.constrains_schemas(dialect)
        body: dict[str, Any] = {
            "model": request.model or self.model,
            "messages": [_message_dict(m) for m in request.messages],
        }
        for key, default in self.defaults.items():
            value = getattr(request, key)
            value = default if value is None else value
            if value is not None:
                body[key] = value
        if request.stop:
            body["stop"] = list(request.stop)
        limit = body.get("max_tokens")
        if request.response_schema is not None:
            schema = request.response_schema
            if constrain:
                schema = constrain_schema(schema, max_tokens=limit, dialect=dialect)
            body["response_format"] = response_format(dialect, schema, request.schema_name)
        forced = None
        named = request.tool_choice if request.tool_choice not in (None, "auto", "none", "required") else None
        if request.tools and dialect == "llama_server" and not await self.endpoint.native_tools():
            forced = _emulate_tools(body, request, named, constrain)
        elif request.tools:
            tools = request.tools
            if named is not None and dialect == "llama_server":
                # llama-server reads tool_choice as a string only (an object falls back to "auto"):
                # a named tool is forced by offering it alone, as "required"
                tools = tuple(t for t in request.tools if t.name == named) or request.tools
            body["tools"] = [
                {"type": "function",
                 "function": {"name": t.name, "description": t.description,
                              # a forced call's arguments follow a grammar too
                              "parameters": constrain_schema(t.parameters, max_tokens=limit, dialect=dialect)
                              if constrain else t.parameters}}
                for t in tools
            ]
            if named is None and request.tool_choice:
                body["tool_choice"] = request.tool_choice
            elif named is not None:
                body["tool_choice"] = ("required" if dialect == "llama_server"
                                       else {"type": "function", "function": {"name": named}})
        if request.top_logprobs is not None:
            # llama-cpp-python returns logprobs only when top_logprobs is sent with logprobs=True
            body["logprobs"] = True
            body["top_logprobs"] = request.top_logprobs
        if dialect == "llama_server" and (lora := lora_field(await self.endpoint.lora_ids(), body["model"])):
            body["extra_body"] = {"lora": lora}
        return body, forced

    async def aclose(self) -> None:
        if self._owns_endpoint:
            await self.endpoint.aclose()


def _emulate_tools(body: dict[str, Any], request: ChatRequest, named: str | None, constrain: bool) -> list[str] | None:
    """Tools on a llama-server whose chat template cannot describe them (SmolLM2's): a forced call
    (a named tool, or "required") is asked for as structured output, the tool's arguments (or,
    among several, `{"name", "arguments"}`), and read back as a tool call; "auto" and "none"
    send no tools, since the template would not show them to the model. Returns the tools the
    answer may call, or None where no call is forced."""
    tools = [t for t in request.tools if t.name == named] if named else list(request.tools)
    if not (named or request.tool_choice == "required") or not tools:
        return None
    limit = body.get("max_tokens")

    def params(t: Any) -> dict[str, Any]:
        return constrain_schema(t.parameters, max_tokens=limit, dialect="llama_server") if constrain else t.parameters

    if len(tools) == 1:
        schema = params(tools[0])
    else:
        schema = {"anyOf": [{"type": "object", "properties": {"name": {"const": t.name}, "arguments": params(t)},
                             "required": ["name", "arguments"]} for t in tools]}
    body["response_format"] = response_format("llama_server", schema, "tool_call")
    # the calls already made are shown to the model as what it said
    for m in body["messages"]:
        if m.get("tool_calls") and not m.get("content"):
            m["content"] = json.dumps([{"name": c["function"]["name"], "arguments": c["function"]["arguments"]}
                                       for c in m["tool_calls"]])
    return [t.name for t in tools]


def _as_tool_call(response: ChatResponse, names: list[str]) -> ChatResponse:
    """The structured answer to an emulated forced call, as that tool call."""
    text = response.text.strip()
    if len(names) == 1:
        name, arguments = names[0], text
    else:
        try:
            parsed = json.loads(text)
        except ValueError:
            return response
        if not isinstance(parsed, dict) or parsed.get("name") not in names:
            return response
        name, arguments = parsed["name"], json.dumps(parsed.get("arguments", {}))
    response.tool_calls = [ToolCall(id="call_0", name=name, arguments=arguments or "{}")]
    response.text = ""
    if response.finish_reason == "stop":
        response.finish_reason = "tool_calls"
    return response


def _message_dict(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.images:  # OpenAI content parts: the text, then each image
        out["content"] = [{"type": "text", "text": message.content or ""},
                          *({"type": "image_url", "image_url": {"url": url}} for url in message.images)]
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        out["name"] = message.name
    return out


def _to_response(completion: Any, latency: float) -> ChatResponse:
    choice = completion.choices[0]
    msg = choice.message
    calls = [
        ToolCall(id=c.id or f"call_{i}", name=c.function.name, arguments=c.function.arguments or "{}")
        for i, c in enumerate(msg.tool_calls or [])
    ]
    usage = Usage()
    if completion.usage is not None:
        usage = Usage(prompt_tokens=completion.usage.prompt_tokens or 0,
                      completion_tokens=completion.usage.completion_tokens or 0)
    logprobs = None
    if getattr(choice, "logprobs", None) is not None and choice.logprobs.content is not None:
        logprobs = [
            TokenLogprob(token=t.token, logprob=t.logprob,
                         top=[(a.token, a.logprob) for a in (t.top_logprobs or [])])
            for t in choice.logprobs.content
        ]
    return ChatResponse(
        text=msg.content or "",
        tool_calls=calls,
        finish_reason=choice.finish_reason,
        model=completion.model or "",
        usage=usage,
        latency_s=latency,
        logprobs=logprobs,
    )
