"""The llama_server dialect against a stand-in llama-server over real HTTP: detection from
`owned_by`, `json_schema` structured output, LoRA adapters chosen per request by model name,
tools forced on a chat template that cannot show them, and named tools on one that can."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rolegraph.models import ChatRequest, Message, OpenAICompatModel, ToolSpec
from rolegraph.models._dialects import constrain_schema, dialect_from_models_listing

WEATHER = ToolSpec(name="get_weather", description="Weather for a city",
                   parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
TIME = ToolSpec(name="get_time", description="Time in a city",
                parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
ASK = (Message(role="user", content="Weather in Paris?"),)


class FakeLlamaServer:
    """Answers like llama-server: /v1/models (owned_by llamacpp), /props, /lora-adapters, and chat
    completions whose text is `self.reply`; keeps every chat body it was sent."""

    def __init__(self, *, native_tools: bool, adapters: list[str]) -> None:
        self.native_tools, self.adapters = native_tools, adapters
        self.bodies: list[dict[str, Any]] = []
        self.reply: str | None = "ok"
        self.tool_calls: list[dict[str, Any]] | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/v1/models":
                    self._send({"object": "list", "data": [{"id": "smol", "object": "model", "owned_by": "llamacpp"}]})
                elif self.path == "/props":
                    self._send({"chat_template_caps": {"supports_tool_calls": outer.native_tools,
                                                       "supports_tools": outer.native_tools}})
                elif self.path == "/lora-adapters":
                    self._send([{"id": i, "path": f"/adapters/{name}.gguf", "scale": 0.0}
                                for i, name in enumerate(outer.adapters)])
                else:
                    self.send_error(404)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.bodies.append(body)
                message: dict[str, Any] = {"role": "assistant", "content": outer.reply}
                if outer.tool_calls:
                    message["tool_calls"] = outer.tool_calls
                self._send({"id": "x", "object": "chat.completion", "created": 0, "model": body.get("model", ""),
                            "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
                            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def plain() -> Iterator[FakeLlamaServer]:
    server = FakeLlamaServer(native_tools=False, adapters=["planner", "verifier"])
    yield server
    server.close()


@pytest.fixture
def native() -> Iterator[FakeLlamaServer]:
    server = FakeLlamaServer(native_tools=True, adapters=[])
    yield server
    server.close()


def test_llama_server_is_told_apart_from_llama_cpp_python() -> None:
    assert dialect_from_models_listing({"data": [{"owned_by": "llamacpp"}]}) == "llama_server"
    assert dialect_from_models_listing({"data": [{"owned_by": "me"}]}) == "llama_cpp"


async def test_structured_output_is_json_schema_with_small_model_bounds(plain: FakeLlamaServer) -> None:
    plain.reply = '{"n": 2}'
    model = OpenAICompatModel(plain.url, "smol")
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 3},
                                               "s": {"type": "string"}}}
    await model.chat(ChatRequest(messages=ASK, response_schema=schema, max_tokens=200))
    await model.aclose()
    fmt = plain.bodies[0]["response_format"]
    assert fmt["type"] == "json_schema"
    sent = fmt["json_schema"]["schema"]
    assert sent["properties"]["n"]["enum"] == [0, 1, 2, 3] and "maxLength" in sent["properties"]["s"]
    assert "lora" not in plain.bodies[0]


async def test_a_model_name_that_is_an_adapter_selects_it_and_only_it(plain: FakeLlamaServer) -> None:
    planner, verifier, base = (OpenAICompatModel(plain.url, name) for name in ("planner", "verifier", "smol"))
    for model in (planner, verifier, base):
        await model.chat(ChatRequest(messages=ASK))
        await model.aclose()
    assert [b.get("lora") for b in plain.bodies] == [[{"id": 0, "scale": 1.0}], [{"id": 1, "scale": 1.0}], None]


async def test_a_forced_tool_on_a_template_without_tools_comes_back_as_a_call(plain: FakeLlamaServer) -> None:
    plain.reply = '{"city": "Paris"}'
    model = OpenAICompatModel(plain.url, "smol")
    response = await model.chat(ChatRequest(messages=ASK, tools=(WEATHER, TIME), tool_choice="get_weather",
                                            max_tokens=60))
    assert [(c.name, c.parsed_arguments()) for c in response.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert response.text == "" and response.finish_reason == "tool_calls"
    body = plain.bodies[0]
    assert "tools" not in body and body["response_format"]["json_schema"]["schema"]["required"] == ["city"]

    # "required" among several: the answer names the tool
    plain.reply = '{"name": "get_time", "arguments": {"city": "Oslo"}}'
    response = await model.chat(ChatRequest(messages=(*ASK, response.as_message()), tools=(WEATHER, TIME),
                                            tool_choice="required", max_tokens=60))
    assert [(c.name, c.parsed_arguments()) for c in response.tool_calls] == [("get_time", {"city": "Oslo"})]
    names = [b["properties"]["name"]["const"] for b in plain.bodies[1]["response_format"]["json_schema"]["schema"]["anyOf"]]
    assert names == ["get_weather", "get_time"]
    earlier = plain.bodies[1]["messages"][1]  # the call made before is shown to the model as what it said
    assert json.loads(earlier["content"]) == [{"name": "get_weather", "arguments": '{"city": "Paris"}'}]

    # an answer that names no offered tool stays text, for the caller's retry
    plain.reply = '{"name": "rm -rf", "arguments": {}}'
    response = await model.chat(ChatRequest(messages=ASK, tools=(WEATHER, TIME), tool_choice="required"))
    assert response.tool_calls == [] and "rm -rf" in response.text

    # "auto" sends no tools: the template would not show them
    plain.reply = "It is sunny."
    response = await model.chat(ChatRequest(messages=ASK, tools=(WEATHER,), tool_choice="auto"))
    assert response.text == "It is sunny." and "tools" not in plain.bodies[-1] and "response_format" not in plain.bodies[-1]
    await model.aclose()


async def test_a_named_tool_on_a_template_with_tools_is_offered_alone_as_required(native: FakeLlamaServer) -> None:
    native.tool_calls = [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}]
    model = OpenAICompatModel(native.url, "smol")
    response = await model.chat(ChatRequest(messages=ASK, tools=(WEATHER, TIME), tool_choice="get_weather"))
    await model.aclose()
    body = native.bodies[0]
    assert body["tool_choice"] == "required" and [t["function"]["name"] for t in body["tools"]] == ["get_weather"]
    assert response.tool_calls[0].name == "get_weather"


def test_string_bounds_leave_room_for_llama_server_layout() -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 50},
                                               "tags": {"type": "array", "maxItems": 3,
                                                        "items": {"type": "string", "maxLength": 50}}}}
    compact = constrain_schema(schema, max_tokens=160)
    laid_out = constrain_schema(schema, max_tokens=160, dialect="llama_server")
    assert compact["properties"]["name"]["maxLength"] == 50  # fits at 1.5 characters a token
    bound = laid_out["properties"]["name"]["maxLength"]
    # 2 keys x 6 + 4 strings x 3 layout tokens, one character a token: 160 - 10 - 24 = 126 for 200 wanted
    assert bound == int(50 * 126 / 200) and laid_out["properties"]["tags"]["items"]["maxLength"] == bound
