"""An OpenAI-compatible endpoint: one shared client per event loop, transport retries with
tenacity (connection errors, 5xx, 429 with Retry-After; never other 4xx), dialect detection."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import PurePath
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

from rolegraph.errors import ModelError, ModelHTTPError, ModelUnreachable
from rolegraph.models._dialects import LLAMA_DIALECTS, Dialect, DialectSetting, dialect_from_models_listing
from rolegraph.models._types import TransportRetry

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
        lora_ids: dict[str, int] | None = None,
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
        self._lora_ids: dict[str, int] | None = dict(lora_ids) if lora_ids is not None else None
        self._native_tools: bool | None = None

    @property
    def api_key(self) -> str | None:
        """The key sent as `Authorization: Bearer ...` (for redactors; never shown by repr)."""
        return self._api_key

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
        return self._constrain if self._constrain is not None else dialect in LLAMA_DIALECTS

    async def native_tools(self) -> bool:
        """Whether the server's chat template describes tools to the model (llama-server's
        GET /props says; other servers are taken to)."""
        if self._native_tools is None:
            props = await asyncio.to_thread(_read_json, await self.url(), "/props", self._api_key, self.timeout_s)
            caps = props.get("chat_template_caps") if isinstance(props, dict) else None
            self._native_tools = bool(caps.get("supports_tool_calls", True)) if isinstance(caps, dict) else True
        return self._native_tools

    async def lora_ids(self) -> dict[str, int]:
        """On llama-server: LoRA adapter name (its GGUF file's stem) -> id, read once from
        GET /lora-adapters; a model name found here is served as the base with that adapter."""
        if self._lora_ids is None:
            self._lora_ids = await asyncio.to_thread(read_lora_adapters, await self.url(), api_key=self._api_key,
                                                    timeout_s=self.timeout_s)
        return self._lora_ids

    async def call(self, fn: Callable[[], Awaitable[Any]], *, retries: list[TransportRetry] | None = None) -> Any:
        """Run one API call with transport retries, mapping failures to rolegraph errors. Each
        retry is appended to `retries` (and, if the call fails for good, set on the error)."""
        try:  # the common case, without building a retry loop
            return await fn()
        except Exception as exc:
            if not is_retryable(exc) or self.retry.attempts <= 1:
                self._raise(exc)
                raise
            first: Exception = exc
        made = retries if retries is not None else []
        try:
            return await self._call_retrying(fn, first, made)
        except ModelError as exc:
            exc.retries = tuple(made)
            raise
        except asyncio.CancelledError as exc:  # cut off (a case's timeout): the trace keeps the retries all the same
            exc.retries = tuple(made)  # type: ignore[attr-defined]  # read by the recorder's ModelCall
            raise

    def _raise(self, exc: BaseException) -> None:
        url = self.display_url
        if isinstance(exc, openai.APIConnectionError):
            raise ModelUnreachable(url, _cause(exc)) from exc
        if isinstance(exc, openai.APIStatusError):
            raise ModelHTTPError(url, exc.status_code, _body(exc)) from exc

    async def _call_retrying(self, fn: Callable[[], Awaitable[Any]], first: Exception,
                             made: list[TransportRetry]) -> Any:
        """After a first retryable failure: the remaining attempts, waiting as tenacity says."""
        url = self.display_url
        state = {"first": first}

        def note(retry_state: RetryCallState) -> None:  # tenacity's before_sleep: one failed attempt
            exc = retry_state.outcome.exception() if retry_state.outcome else None
            status = exc.status_code if isinstance(exc, openai.APIStatusError) else None
            error = f"HTTP {status}" if status is not None else (_cause(exc) if exc else "unknown")
            wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
            made.append(TransportRetry(attempt=retry_state.attempt_number, error=error, status=status,
                                       wait_s=float(wait)))

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
            before_sleep=note,
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


def _read_json(url: str, path: str, api_key: str | None, timeout_s: float) -> Any:
    """GET `path` beside the /v1 root, as JSON; None where it fails."""
    request = urllib.request.Request(url.rstrip("/").removesuffix("/v1") + path)
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as r:
            return json.loads(r.read())
    except (OSError, ValueError):
        return None


def read_lora_adapters(url: str, *, api_key: str | None = None, timeout_s: float = 30.0) -> dict[str, int]:
    """llama-server's LoRA adapters (GET /lora-adapters beside /v1): name (the GGUF file's stem)
    -> id; empty where the server has none or no such route."""
    listing = _read_json(url, "/lora-adapters", api_key, timeout_s)
    found: dict[str, int] = {}
    for entry in listing if isinstance(listing, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("id"), int) and isinstance(entry.get("path"), str):
            found.setdefault(PurePath(entry["path"]).stem, entry["id"])
    return found


def lora_field(ids: dict[str, int], model: str) -> list[dict[str, Any]] | None:
    """llama-server's per-request `lora` field for `model` when it names one of the adapters in
    `ids`: that adapter at full scale (those not named stay at 0); None for the base model."""
    return [{"id": ids[model], "scale": 1.0}] if model in ids else None


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
