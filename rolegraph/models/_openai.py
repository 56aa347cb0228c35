"""The OpenAI-compatible HTTP client: one shared connection pool per endpoint, transport
retries with tenacity, server dialects for structured output, usage and latency on every call."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx2
import openai
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from rolegraph.errors import ModelHTTPError, ModelUnreachable
from rolegraph.models._dialects import (
    Dialect,
    DialectSetting,
    constrain_schema,
    dialect_from_models_listing,
    response_format,
)
from rolegraph.models._types import (
    ChatRequest,
    ChatResponse,
    Message,
    TokenLogprob,
    ToolCall,
    Usage,
)

BaseUrl = str | Callable[[], Awaitable[str]]
HttpClientFactory = Callable[[], httpx2.AsyncClient]


@dataclass(frozen=True)
class RetryPolicy:
    """Transport retries: connection errors, timeouts, 5xx and 429. Never other 4xx."""

    attempts: int = 5
    initial_wait_s: float = 0.5
    max_wait_s: float = 20.0
    max_retry_after_s: float = 120.0
    """A Retry-After longer than this is not waited for; the error is raised instead."""


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return False


def retry_after_s(exc: BaseException | None) -> float | None:
    """Seconds the server asked us to wait (Retry-After / retry-after-ms), if any."""
    if not isinstance(exc, openai.APIStatusError):
        return None
    headers = exc.response.headers
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class _Wait:
    """Exponential backoff with jitter, unless the server named a Retry-After."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._backoff = wait_exponential_jitter(multiplier=policy.initial_wait_s, max=policy.max_wait_s)

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        told = retry_after_s(exc)
        return told if told is not None else float(self._backoff(state))


class Endpoint:
    """One OpenAI-compatible server. Roles on the same server share its client and pool.

    The client is created lazily, once per event loop (an aiohttp session belongs to the loop
    that made it), and closed by `aclose()`.
    """

    def __init__(
        self,
        base_url: BaseUrl,
        *,
        name: str = "endpoint",
        api_key: str | None = None,
        dialect: DialectSetting = "auto",
        constrain_schemas: bool | None = None,
        timeout_s: float = 120.0,
        retry: RetryPolicy = RetryPolicy(),
        http_client_factory: HttpClientFactory | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.name = name
        self._base_url = base_url
        self._api_key = api_key
        self._dialect_setting = dialect
        self._dialect: Dialect | None = None if dialect == "auto" else dialect
        self._constrain = constrain_schemas
        self.timeout_s = timeout_s
        self.retry = retry
        self._http_client_factory = http_client_factory
        self.sleep = sleep
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, openai.AsyncOpenAI] = (
            weakref.WeakKeyDictionary()
        )
        self._last: tuple[asyncio.AbstractEventLoop, openai.AsyncOpenAI] | None = None
        self._resolved_url: str | None = base_url if isinstance(base_url, str) else None
        self._url_lock: asyncio.Lock | None = None

    def __repr__(self) -> str:  # never shows the key
        return f"Endpoint(name={self.name!r}, base_url={self._resolved_url or '<lazy>'!r})"

    async def url(self) -> str:
        if self._resolved_url is None:
            assert not isinstance(self._base_url, str)
            self._resolved_url = await self._base_url()
        return self._resolved_url

    @property
    def display_url(self) -> str:
        return self._resolved_url or "<not started>"

    async def client(self) -> openai.AsyncOpenAI:
        loop = asyncio.get_running_loop()
        last = self._last
        if last is not None and last[0] is loop:  # the hot path: a weak-dict lookup costs ~50 us
            return last[1]
        client = self._clients.get(loop)
        if client is None:
            url = await self.url()
            client = self._clients.get(loop)  # another task may have made it meanwhile
            if client is None:
                http = self._http_client_factory() if self._http_client_factory else openai.DefaultAioHttpClient()
                client = openai.AsyncOpenAI(
                    base_url=url,
                    api_key=self._api_key or "not-needed",
                    timeout=self.timeout_s,
                    max_retries=0,  # retries are ours (tenacity), so they are visible and bounded
                    http_client=http,
                )
                self._clients[loop] = client
        self._last = (loop, client)
        return client

    async def dialect(self) -> Dialect:
        if self._dialect is None:
            self._dialect = await self._detect_dialect()
        return self._dialect

    async def _detect_dialect(self) -> Dialect:
        client = await self.client()
        try:
            listing = await self.call(client.models.list)
        except ModelHTTPError:
            return "openai"
        payload = {"data": [m.model_dump() for m in listing.data]}
        return dialect_from_models_listing(payload)

    def constrains_schemas(self, dialect: Dialect) -> bool:
        return self._constrain if self._constrain is not None else dialect == "llama_cpp"

    async def call(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        """Run one API call with transport retries, mapping failures to rolegraph errors."""
        try:  # the common case, without building a retry loop
            return await fn()
        except Exception as exc:
            if not is_retryable(exc) or self.retry.attempts <= 1:
                self._raise(exc)
                raise
            first: Exception = exc
        return await self._call_retrying(fn, first)

    def _raise(self, exc: BaseException) -> None:
        url = self.display_url
        if isinstance(exc, openai.APIConnectionError):
            raise ModelUnreachable(url, _cause(exc)) from exc
        if isinstance(exc, openai.APIStatusError):
            raise ModelHTTPError(url, exc.status_code, _body(exc)) from exc

    async def _call_retrying(self, fn: Callable[[], Awaitable[Any]], first: Exception) -> Any:
        """After a first retryable failure: the remaining attempts, waiting as tenacity says."""
        url = self.display_url
        state = {"first": first}

        async def attempt_fn() -> Any:
            pending = state.pop("first", None)
            if pending is not None:
                raise pending
            return await fn()

        retrying = AsyncRetrying(
            retry=retry_if_exception(is_retryable),
            stop=stop_after_attempt(self.retry.attempts),
            wait=_Wait(self.retry),
            sleep=self.sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    try:
                        return await attempt_fn()
                    except openai.APIStatusError as exc:
                        told = retry_after_s(exc)
                        if told is not None and told > self.retry.max_retry_after_s:
                            raise ModelHTTPError(url, exc.status_code, _body(exc)) from exc
                        raise
        except openai.APIConnectionError as exc:
            raise ModelUnreachable(url, _cause(exc)) from exc
        except openai.APIStatusError as exc:
            raise ModelHTTPError(url, exc.status_code, _body(exc)) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        """Close the client of the running loop (and forget clients of finished loops)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        client = self._clients.pop(loop, None) if loop is not None else None
        if self._last is not None and self._last[0] is loop:
            self._last = None
        if client is not None:
            await client.close()

    def probe(self, timeout_s: float = 2.0) -> bool:
        """Synchronously check that GET /models answers (for health checks and the CLI)."""
        if self._resolved_url is None:
            return False
        try:
            with urllib.request.urlopen(self._resolved_url.rstrip("/") + "/models", timeout=timeout_s) as r:
                return bool(r.status == 200)
        except OSError:
            return False


def _cause(exc: BaseException) -> str:
    """What went wrong underneath, in a few words. The aiohttp transport reports a refused
    connection as a timeout, so the chain of causes is read rather than the outer type."""
    chain: list[BaseException] = []
    node: BaseException | None = exc
    while node is not None and node not in chain:
        chain.append(node)
        node = node.__cause__ or node.__context__
    for e in chain:
        if isinstance(e, ConnectionRefusedError) or "refused" in str(e).lower():
            return "connection refused"
    for e in chain:
        if isinstance(e, ConnectionResetError) or "disconnected" in str(e).lower():
            return "the server closed the connection"
    if any(isinstance(e, (TimeoutError, openai.APITimeoutError)) for e in chain):
        return "timed out"
    text = str(chain[-1]) or type(chain[-1]).__name__
    return text.splitlines()[0][:200]


def _body(exc: openai.APIStatusError) -> str:
    try:
        return exc.response.text
    except httpx2.ResponseNotRead:
        return exc.message


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
        client = await self.endpoint.client()
        body = await self._body(request)
        started = time.perf_counter()
        completion = await self.endpoint.call(lambda: client.chat.completions.create(**body))
        latency = time.perf_counter() - started
        return _to_response(completion, latency)

    async def _body(self, request: ChatRequest) -> dict[str, Any]:
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
        if request.response_schema is not None:
            dialect = await self.endpoint.dialect()
            schema = request.response_schema
            if self.endpoint.constrains_schemas(dialect):
                schema = constrain_schema(schema, max_tokens=body.get("max_tokens"))
            body["response_format"] = response_format(dialect, schema, request.schema_name)
        if request.tools:
            body["tools"] = [
                {"type": "function",
                 "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
                for t in request.tools
            ]
            if request.tool_choice in ("auto", "none", "required"):
                body["tool_choice"] = request.tool_choice
            elif request.tool_choice:
                body["tool_choice"] = {"type": "function", "function": {"name": request.tool_choice}}
        if request.top_logprobs is not None:
            # llama-cpp-python returns logprobs only when top_logprobs is sent with logprobs=True
            body["logprobs"] = True
            body["top_logprobs"] = request.top_logprobs
        return body

    async def aclose(self) -> None:
        if self._owns_endpoint:
            await self.endpoint.aclose()


def _message_dict(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
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


def decode_json(text: str) -> Any:
    """Decode a model's JSON answer, tolerating a Markdown code fence around it and raw control
    characters inside strings (llama.cpp's JSON grammar lets a newline into a string)."""
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        stripped = stripped.rsplit("```", 1)[0]
    return json.loads(stripped, strict=False)
