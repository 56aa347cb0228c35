"""The HTTP client under httpx2.MockTransport: what is retried, what is not, what a user reads."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx2
import pytest

from rolegraph import ModelHTTPError, ModelUnreachable
from rolegraph.models import (
    ChatRequest,
    ChatResponse,
    Endpoint,
    Message,
    OpenAICompatModel,
    RetryPolicy,
    ToolSpec,
)
from rolegraph.models.servers.embedded import free_port

URL = "http://127.0.0.1:9/v1"
REQ = ChatRequest(messages=(Message(role="user", content="hi"),))


def completion(text: str = "hello", **message: object) -> dict:
    return {
        "id": "c1", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text, **message}}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }


class Server:
    """A scripted HTTP server: each request gets the next response (or raises the next error)."""

    def __init__(self, *responses: httpx2.Response | Exception | Callable[[httpx2.Request], httpx2.Response]):
        self.responses = list(responses)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        item = self.responses.pop(0)
        if isinstance(item, Exception):
            raise item
        return item(request) if callable(item) else item


def model_for(server: Server, sleeps: list[float], dialect: str = "openai", **kw: object) -> OpenAICompatModel:
    async def sleep(s: float) -> None:
        sleeps.append(s)

    endpoint = Endpoint(URL, dialect=dialect,  # type: ignore[arg-type]
                        http_client_factory=lambda: httpx2.AsyncClient(transport=httpx2.MockTransport(server)),
                        sleep=sleep, retry=RetryPolicy(attempts=4, initial_wait_s=0.5))
    return OpenAICompatModel(endpoint=endpoint, model="m", **kw)  # type: ignore[arg-type]


def ok(text: str = "hello", **message: object) -> httpx2.Response:
    return httpx2.Response(200, json=completion(text, **message))


async def test_connection_refused_then_ok_is_retried() -> None:
    server = Server(httpx2.ConnectError("Connection refused"), ok())
    sleeps: list[float] = []
    response = await model_for(server, sleeps).chat(REQ)
    assert response.text == "hello" and len(server.requests) == 2 and len(sleeps) == 1


async def test_500_is_retried() -> None:
    server = Server(httpx2.Response(500, text="boom"), httpx2.Response(503, text="busy"), ok())
    sleeps: list[float] = []
    assert (await model_for(server, sleeps).chat(REQ)).text == "hello"
    assert len(server.requests) == 3


async def test_429_honours_retry_after() -> None:
    server = Server(httpx2.Response(429, headers={"retry-after": "7"}, text="slow down"), ok())
    sleeps: list[float] = []
    await model_for(server, sleeps).chat(REQ)
    assert sleeps == [7.0]


async def test_400_is_not_retried() -> None:
    server = Server(httpx2.Response(400, text="bad request: unknown field"), ok())
    sleeps: list[float] = []
    with pytest.raises(ModelHTTPError, match=r"HTTP 400.*unknown field") as info:
        await model_for(server, sleeps).chat(REQ)
    assert info.value.status == 400 and len(server.requests) == 1 and sleeps == []


async def test_retries_run_out_on_persistent_500() -> None:
    server = Server(*[httpx2.Response(500, text="down")] * 4)
    with pytest.raises(ModelHTTPError, match="HTTP 500"):
        await model_for(server, []).chat(REQ)
    assert len(server.requests) == 4


async def test_programmer_errors_are_not_retried() -> None:
    server = Server(TypeError("bug"), ok())
    with pytest.raises(TypeError):
        await model_for(server, []).chat(REQ)
    assert len(server.requests) == 1


async def test_unreachable_server_gives_one_actionable_line() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    sleeps: list[float] = []

    async def sleep(s: float) -> None:
        sleeps.append(s)

    model = OpenAICompatModel(url, "m", dialect="openai", sleep=sleep, retry=RetryPolicy(attempts=2))
    with pytest.raises(ModelUnreachable) as info:
        await model.chat(REQ)
    message = str(info.value)
    assert url in message and "connection refused" in message and "rolegraph serve embedded" in message
    assert "\n" not in message and len(sleeps) == 1
    await model.aclose()


async def test_usage_latency_and_body() -> None:
    server = Server(ok())
    model = model_for(server, [], temperature=0.3, max_tokens=50)
    response = await model.chat(ChatRequest(messages=REQ.messages, seed=4, max_tokens=20, top_logprobs=2))
    assert response.usage.prompt_tokens == 7 and response.usage.completion_tokens == 3
    assert response.latency_s > 0
    body = json.loads(server.requests[0].content)
    assert body["temperature"] == 0.3 and body["max_tokens"] == 20 and body["seed"] == 4
    assert body["logprobs"] is True and body["top_logprobs"] == 2


@pytest.mark.parametrize(
    ("dialect", "expected_type"), [("llama_cpp", "json_object"), ("vllm", "json_schema")]
)
async def test_structured_output_follows_the_dialect(dialect: str, expected_type: str) -> None:
    server = Server(ok('{"a": 1}'))
    schema = {"type": "object", "properties": {"a": {"type": "integer", "minimum": 0, "maximum": 3},
                                               "s": {"type": "string"}}}
    await model_for(server, [], dialect=dialect).chat(ChatRequest(messages=REQ.messages, response_schema=schema))
    fmt = json.loads(server.requests[0].content)["response_format"]
    assert fmt["type"] == expected_type
    sent = fmt["schema"] if dialect == "llama_cpp" else fmt["json_schema"]["schema"]
    if dialect == "llama_cpp":  # bounded ints become enums, strings get a bound
        assert sent["properties"]["a"]["enum"] == [0, 1, 2, 3]
        assert sent["properties"]["s"]["maxLength"] == 600
    else:
        assert sent == schema


async def test_dialect_is_detected_from_the_models_listing() -> None:
    models = [{"id": "m", "object": "model", "owned_by": "vllm", "created": 0}]
    listing = httpx2.Response(200, json={"object": "list", "data": models})
    server = Server(listing, ok("{}"))
    model = model_for(server, [], dialect="auto")
    await model.chat(ChatRequest(messages=REQ.messages, response_schema={"type": "object"}))
    assert server.requests[0].url.path.endswith("/models")
    assert json.loads(server.requests[1].content)["response_format"]["type"] == "json_schema"


async def test_tool_call_round_trip() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
    server = Server(ok("", tool_calls=[call]))
    tool = ToolSpec(name="weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}})
    request = ChatRequest(messages=REQ.messages, tools=(tool,), tool_choice="weather")
    response = await model_for(server, []).chat(request)
    assert response.tool_calls[0].name == "weather"
    assert response.tool_calls[0].parsed_arguments() == {"city": "Oslo"}
    body = json.loads(server.requests[0].content)
    assert body["tool_choice"] == {"type": "function", "function": {"name": "weather"}}
    assert body["tools"][0]["function"]["name"] == "weather"


class _Events:
    """A stand-in for a run's trace writer: keeps the events."""

    def __init__(self) -> None:
        self.events: list[object] = []

    def write(self, event: object) -> None:
        self.events.append(event)


async def _recorded_call(model: OpenAICompatModel) -> tuple[object, list[object]]:
    from rolegraph.traces._recorder import _RUN, RecordingModel, RunContext

    sink = _Events()
    token = _RUN.set(RunContext(run_id="r", writer=sink))  # type: ignore[arg-type]
    try:
        try:
            result: object = await RecordingModel("default", model).chat(REQ)
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            result = exc
    finally:
        _RUN.reset(token)
    return result, sink.events


async def test_transport_retries_are_recorded_on_the_call() -> None:
    from rolegraph.models import TransportRetry
    from rolegraph.traces import ModelCall, parse_event

    server = Server(httpx2.Response(503, text="busy"), httpx2.Response(429, headers={"retry-after": "7"}),
                    httpx2.ConnectError("Connection refused"), ok())
    sleeps: list[float] = []
    response, events = await _recorded_call(model_for(server, sleeps))
    assert isinstance(response, ChatResponse) and response.text == "hello"
    (call,) = events
    assert isinstance(call, ModelCall)
    assert [(r.attempt, r.error, r.status) for r in call.retries] == [
        (1, "HTTP 503", 503), (2, "HTTP 429", 429), (3, "connection refused", None)]
    assert [r.wait_s for r in call.retries] == sleeps and sleeps[1] == 7.0
    loaded = parse_event(call.model_dump_json())  # written and loaded back
    assert isinstance(loaded, ModelCall) and loaded.retries == call.retries
    assert "retries" not in json.loads(call.model_dump_json())["response"]  # stored once, on the call
    assert isinstance(call.retries[0], TransportRetry)


async def test_retries_before_giving_up_are_recorded_on_the_failed_call() -> None:
    from rolegraph.traces import ModelCall

    server = Server(*[httpx2.Response(500, text="down")] * 4)
    error, events = await _recorded_call(model_for(server, []))
    assert isinstance(error, ModelHTTPError) and len(error.retries) == 3
    (call,) = events
    assert isinstance(call, ModelCall) and call.response is None and "HTTP 500" in (call.error or "")
    assert [r.attempt for r in call.retries] == [1, 2, 3]


def test_old_model_calls_without_retries_still_load() -> None:
    from rolegraph.traces import ModelCall, parse_event

    old = {"kind": "model_call", "format_version": 1, "role": "r", "node_key": None, "step": None, "call_index": 0,
           "fingerprint": "f", "request": {"messages": [{"role": "user", "content": "hi"}]},
           "response": {"text": "yo"}}
    event = parse_event(json.dumps(old))
    assert isinstance(event, ModelCall) and event.retries == []
