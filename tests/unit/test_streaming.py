"""Streaming a run: LangGraph's updates, values, custom and messages (model tokens) modes from a
recorded run, each equal to what its trace holds and streamed again by its replay; a reader that
stops early or lingers; the OpenAI-compatible client's streamed answers (server-sent events, against
a stub server on a socket) recorded as the whole answer is; `rolegraph run --stream`; the UI's run
page while its run goes on."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

import rolegraph as rg
from rolegraph import Agent, ModelStreamError, Runtime, UserError
from rolegraph.config import EndpointConfig, RoleConfig, RuntimeConfig
from rolegraph.graphs import replay_run, replay_stream
from rolegraph.graphs._run import BUFFER, STOPPED
from rolegraph.langchain import RoleChatModel, app
from rolegraph.models import (
    ChatRequest,
    ChatResponse,
    Endpoint,
    FunctionModel,
    Message,
    OpenAICompatModel,
    RetryPolicy,
    StreamReader,
    ToolSpec,
)
from rolegraph.prompts import PromptLibrary
from rolegraph.traces import (
    ErrorEvent,
    ModelCall,
    NodeFinished,
    NodeStarted,
    TraceStore,
    comparable,
    current_node,
    current_run,
)
from rolegraph.ui import create_app
from tests.conftest import serve_app

ROOT = Path(__file__).resolve().parents[2]
QUESTION = {"question": "why is the sky blue?"}

# -- a writer-critic graph whose agents stream ------------------------------------------------------


class Question(BaseModel):
    question: str


class Review(BaseModel):
    ok: bool
    note: str = ""


class State(BaseModel):
    question: str
    draft: str = ""
    ok: bool = False
    rounds: int = 0


writer = Agent(name="writer", prompt="stream/write", output=str)
critic = Agent(name="critic", prompt="stream/critique", output=Review)


async def write(state: State, runtime: Runtime) -> dict[str, Any]:
    get_stream_writer()({"node": "write", "round": state.rounds})
    return {"draft": await writer.run(runtime, question=state.question, rounds=state.rounds)}


async def critique(state: State, runtime: Runtime) -> dict[str, Any]:
    review = await critic.run(runtime, draft=state.draft)
    return {"ok": review.ok, "rounds": state.rounds + 1}


def route(state: State) -> str:
    return rg.END if state.ok or state.rounds >= 3 else "write"


@rg.graph(input=Question, state=State, agents=[writer, critic], name="streamed_writer")
def streamed(g: rg.StateGraph) -> None:
    g.add_node(write)
    g.add_node(critique)
    g.add_edge(rg.START, "write")
    g.add_edge("write", "critique")
    g.add_conditional_edges("critique", route, ["write", rg.END])


def answer(request: ChatRequest) -> Any:
    """The writer's first draft is sent back once; its second is approved."""
    text = request.messages[-1].content or ""
    if text.startswith("Review"):
        ok = "second" in text
        return {"ok": ok, "note": "" if ok else "say more"}
    return "a second draft: light scatters off the air" if "round 1" in text else "a first draft about the sky"


@pytest.fixture
def prompts(tmp_path: Path) -> PromptLibrary:
    folder = tmp_path / "prompts" / "stream"
    folder.mkdir(parents=True)
    (folder / "write.j2").write_text("Answer in a sentence (round {{ rounds }}): {{ question }}")
    (folder / "critique.j2").write_text("Review this answer: {{ draft }}")
    return PromptLibrary(tmp_path / "prompts")


def runtime(tmp_path: Path, prompts: PromptLibrary, model: Any = None) -> Runtime:
    return Runtime.from_models({"default": model or FunctionModel(answer)}, prompts=prompts,
                               traces=TraceStore(tmp_path / "runs"))


async def read(stream: Any) -> list[Any]:
    return [chunk async for chunk in stream]


# -- each mode holds what the trace holds -------------------------------------------------------------


async def test_updates_are_the_recorded_steps_in_order(tmp_path: Path, prompts: PromptLibrary) -> None:
    rt = runtime(tmp_path, prompts)
    stream = streamed.astream(QUESTION, runtime=rt, stream_mode="updates")
    updates = await read(stream)
    trace = rt.traces.load(stream.result.run_id)  # type: ignore[union-attr]
    recorded = [{e.node: e.delta} for e in trace.of_kind(NodeFinished)]
    assert [next(iter(u)) for u in updates] == ["write", "critique", "write", "critique"]
    assert to_jsonable_python(updates) == recorded
    assert stream.result.state["ok"] is True and trace.status == "ok"


async def test_values_are_each_steps_input_then_the_recorded_output(tmp_path: Path, prompts: PromptLibrary) -> None:
    rt = runtime(tmp_path, prompts)
    stream = streamed.astream(QUESTION, runtime=rt, stream_mode="values")
    values = to_jsonable_python(await read(stream))
    trace = rt.traces.load(stream.result.run_id)  # type: ignore[union-attr]
    assert values[:-1] == [e.state for e in trace.of_kind(NodeStarted)]
    assert trace.finished is not None and values[-1] == trace.finished.output["state"] == stream.result.state


async def test_messages_are_each_calls_tokens_adding_up_to_the_recorded_answer(tmp_path: Path,
                                                                               prompts: PromptLibrary) -> None:
    rt = runtime(tmp_path, prompts)
    stream = streamed.astream(QUESTION, runtime=rt, stream_mode="messages")
    chunks = await read(stream)
    calls = rt.traces.load(stream.result.run_id).of_kind(ModelCall)  # type: ignore[union-attr]
    by_id: dict[str, list[Any]] = {}
    for message, meta in chunks:
        by_id.setdefault(message.id, []).append((message, meta))
    assert list(by_id) == [f"rg-{c.node_key}-{c.call_index}" for c in calls]
    for call, pieces in zip(calls, by_id.values(), strict=True):
        texts = [m.content for m, _ in pieces if m.content]
        assert len(texts) > 1, "an answer of several words comes in several pieces"
        assert "".join(texts) == call.response.text
        whole = pieces[0][0]
        for m, _ in pieces[1:]:
            whole = whole + m
        assert whole.usage_metadata["output_tokens"] == call.usage.completion_tokens
        node, role = pieces[0][1]["langgraph_node"], pieces[0][1]["rolegraph_role"]
        assert (node, role) == (call.node_key.split("@")[0], call.role)


async def test_an_answer_the_agent_sends_back_streams_and_so_does_its_retry(tmp_path: Path,
                                                                           prompts: PromptLibrary) -> None:
    """The critic's first answer is not JSON: both attempts stream, each as the call the trace records."""
    bad = iter(["that looks fine to me"])

    def first_critique_invalid(request: ChatRequest) -> Any:
        asked = next(m for m in request.messages if m.role == "user")  # the retry's feedback comes after it
        if not (asked.content or "").startswith("Review"):
            return answer(request)
        return next(bad, None) or answer(ChatRequest(messages=(asked,)))

    rt = runtime(tmp_path, prompts, FunctionModel(first_critique_invalid))
    stream = streamed.astream(QUESTION, runtime=rt, stream_mode="messages")
    chunks = await read(stream)
    calls = rt.traces.load(stream.result.run_id).of_kind(ModelCall)  # type: ignore[union-attr]
    rejected = next(c for c in calls if c.error)
    assert (rejected.role, rejected.call_index, rejected.response.text) == ("critic", 0, "that looks fine to me")
    texts: dict[str, str] = {}
    for message, _ in chunks:
        texts[message.id] = texts.get(message.id, "") + message.content
    assert texts == {f"rg-{c.node_key}-{c.call_index}": c.response.text for c in calls}
    assert f"rg-{rejected.node_key}-1" in texts, "the retry streams under the next call's id"


async def test_custom_chunks_come_from_the_nodes_and_a_replay_streams_them_again(tmp_path: Path,
                                                                                  prompts: PromptLibrary) -> None:
    rt = runtime(tmp_path, prompts)
    stream = streamed.astream(QUESTION, runtime=rt, stream_mode="custom")
    live = await read(stream)
    assert live == [{"node": "write", "round": 0}, {"node": "write", "round": 1}]
    trace = rt.traces.load(stream.result.run_id)  # type: ignore[union-attr]
    replayed = replay_stream(trace, library=prompts, stream_mode="custom")
    assert await read(replayed) == live


async def test_a_streamed_run_replays_offline_identically_and_streams_again(tmp_path: Path,
                                                                             prompts: PromptLibrary) -> None:
    model = FunctionModel(answer)
    rt = runtime(tmp_path, prompts, model)
    modes = ["updates", "messages"]
    stream = streamed.astream(QUESTION, runtime=rt, stream_mode=modes)
    live = await read(stream)
    trace = rt.traces.load(stream.result.run_id)  # type: ignore[union-attr]
    asked = len(model.requests)

    replayed = await replay_run(trace, store=rt.traces, library=prompts)
    assert comparable(replayed.state) == comparable(stream.result.state) and len(model.requests) == asked

    again = replay_stream(trace, library=prompts, stream_mode=modes, store=rt.traces)
    chunks = await read(again)
    assert len(model.requests) == asked, "a replay calls no model"
    assert [c for m, c in chunks if m == "updates"] == [c for m, c in live if m == "updates"]
    # a recorded answer comes back in one piece, under the id the live run streamed it with
    texts = [(c[0].id, c[0].content) for m, c in chunks if m == "messages" and c[0].content]
    assert texts == [(f"rg-{c.node_key}-{c.call_index}", c.response.text) for c in trace.of_kind(ModelCall)]
    assert {c[0].id for m, c in live if m == "messages"} == {i for i, _ in texts}


async def test_a_plain_run_and_an_unheard_stream_send_no_stream_request(tmp_path: Path, prompts: PromptLibrary) -> None:
    """Only a `messages` reader makes the model stream: the other modes run the calls as a plain run does."""
    model = FunctionModel(answer)
    streamed_calls: list[ChatRequest] = []

    async def chat_stream(request: ChatRequest, on_token: Any) -> ChatResponse:
        streamed_calls.append(request)
        return await FunctionModel.chat_stream(model, request, on_token)

    model.chat_stream = chat_stream  # type: ignore[method-assign]
    rt = runtime(tmp_path, prompts, model)
    await streamed.run(QUESTION, runtime=rt)
    await read(streamed.astream(QUESTION, runtime=rt, stream_mode=["updates", "values", "custom"]))
    assert streamed_calls == [] and len(model.requests) == 8
    await read(streamed.astream(QUESTION, runtime=rt, stream_mode="messages"))
    assert len(streamed_calls) == 4


# -- the reader's side: context, early stops, backpressure -----------------------------------------


async def test_the_runs_context_never_reaches_the_readers_loop_body(tmp_path: Path, prompts: PromptLibrary) -> None:
    rt = runtime(tmp_path, prompts)
    seen = []
    async for _ in streamed.astream(QUESTION, runtime=rt, stream_mode=["updates", "messages", "custom"]):
        seen.append((current_run(), current_node(), Runtime.current()))
    assert len(seen) > 10 and set(seen) == {(None, None, None)}
    assert (current_run(), Runtime.current()) == (None, None)


async def stopped(store: TraceStore, run_id: str, timeout: float = 10.0) -> Any:
    """The run's trace once it has ended."""
    deadline = time.monotonic() + timeout
    while True:
        trace = store.load(run_id)
        if trace.finished is not None or time.monotonic() > deadline:
            return trace
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("how", ["break then aclose", "break", "raise", "async with"])
async def test_a_reader_that_stops_early_stops_the_run_and_its_trace_says_so(tmp_path: Path, prompts: PromptLibrary,
                                                                             how: str) -> None:
    model = FunctionModel(answer)
    rt = runtime(tmp_path, prompts, model)
    stream = streamed.astream(QUESTION, runtime=rt, stream_mode="updates")
    if how == "async with":
        async with stream:
            async for _ in stream:
                break
    elif how == "raise":
        with pytest.raises(KeyError):
            async for _ in stream:
                raise KeyError("the reader's own error")
    else:
        async for _ in stream:
            break
        if how == "break then aclose":
            await stream.aclose()
    assert stream.run_id is not None
    trace = await stopped(rt.traces, stream.run_id)  # type: ignore[arg-type]
    assert trace.status == "error" and trace.of_kind(ErrorEvent)[-1].message == STOPPED
    # stopped at once when the reader says so; a dropped loop is stopped when Python finalizes it, a step later
    done = [e.node for e in trace.of_kind(NodeFinished)]
    assert done == ["write"] if how in ("break then aclose", "async with") else len(done) < 4
    assert len(model.requests) < 4
    with pytest.raises(UserError, match="closed before the run ended"):
        _ = stream.result
    with pytest.raises(UserError, match="read once"):
        await read(stream)


def test_a_stream_mode_langgraph_does_not_have_is_refused_naming_them(tmp_path: Path, prompts: PromptLibrary) -> None:
    with pytest.raises(UserError, match=r"stream_mode 'tokens' is not one of LangGraph's: values, updates"):
        streamed.astream(QUESTION, runtime=runtime(tmp_path, prompts), stream_mode=["updates", "tokens"])


class Count(BaseModel):
    n: int = 0


async def step(state: Count) -> dict[str, Any]:
    return {"n": state.n + 1}


@rg.graph(input=Count, state=Count, recursion_limit=1000, name="stream_counter")
def counter(g: rg.StateGraph) -> None:
    g.add_node(step)
    g.add_edge(rg.START, "step")
    g.add_conditional_edges("step", lambda s: rg.END if s.n >= 300 else "step", ["step", rg.END])


async def test_a_slow_reader_holds_the_run_back(tmp_path: Path) -> None:
    rt = Runtime.from_models({}, traces=TraceStore(tmp_path / "runs"))
    stream = counter.astream({}, runtime=rt, stream_mode="updates")
    async for first in stream:
        assert first == {"step": {"n": 1}}
        await asyncio.sleep(0.5)  # the run goes on only as far as the queue holds
        steps = len(rt.traces.load(stream.run_id or "").of_kind(NodeFinished))
        assert BUFFER <= steps <= BUFFER + 3
        break
    await stream.aclose()


# -- a wrapped LangGraph app and RoleChatModel ----------------------------------------------------------

chat = RoleChatModel(role="assistant")


async def bot(state: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [await chat.ainvoke(state["messages"])]}


class Chat(TypedDict):
    messages: Annotated[list[Any], add_messages]


def _bot_app() -> Any:
    builder = StateGraph(Chat)
    builder.add_node("bot", bot)
    builder.add_edge(START, "bot")
    builder.add_edge("bot", END)
    return app(builder.compile(), name="stream_bot")


bot_app = _bot_app()


async def test_a_wrapped_apps_chat_model_streams_tokens_that_add_up_to_the_recording(tmp_path: Path) -> None:
    rt = Runtime.from_models({"assistant": FunctionModel(lambda r: "hello there, how can I help?")},
                             traces=TraceStore(tmp_path / "runs"))
    stream = bot_app.astream({"messages": [{"role": "user", "content": "hi"}]}, runtime=rt, stream_mode="messages")
    chunks = [message for message, _ in await read(stream)]
    call = rt.traces.load(stream.result.run_id).of_kind(ModelCall)[0]  # type: ignore[union-attr]
    assert {m.id for m in chunks} == {"rg-bot@1-0"}, "one message, under the id its place in the run gives it"
    assert len([m for m in chunks if m.content]) == 6 and "".join(m.content for m in chunks) == call.response.text
    assert stream.result.state["messages"][-1].content == call.response.text


async def test_role_chat_models_astream_yields_tokens_as_they_come() -> None:
    got: list[tuple[float, str]] = []

    async def slow(request: ChatRequest) -> str:
        return "one two three"

    model = FunctionModel(slow)

    async def chat_stream(request: ChatRequest, on_token: Any) -> ChatResponse:
        for piece in ("one", " two", " three"):
            await on_token(piece)
            await asyncio.sleep(0.1)
        return await model.chat(request)

    model.chat_stream = chat_stream  # type: ignore[method-assign]
    rt = Runtime.from_models({"assistant": model})
    started = time.perf_counter()
    with rt.activate():
        async for chunk in chat.astream("hi"):
            got.append((time.perf_counter() - started, str(chunk.content)))
    assert [t for _, t in got if t] == ["one", " two", " three"]
    assert got[0][0] < 0.08, "the first token comes before the answer ends"


# -- the OpenAI-compatible client's streams, against a stub server ------------------------------------


@dataclass
class Plan:
    """How the stub answers one request: its text in `pieces`, or an HTTP error, or a stream that stops."""

    text: str = "light scatters off the air"
    status: int = 200
    delay_s: float = 0.0
    cut_after: int | None = None
    """Stop the stream after this many pieces, without its end."""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    logprobs: bool = False


class Stub:
    """An OpenAI-compatible server on a socket: each request gets the next plan (then the default one),
    a whole answer or, when the request streams, server-sent events with the usage at the end."""

    def __init__(self, *plans: Plan, answer: Callable[[dict[str, Any]], str] | None = None) -> None:
        self.plans, self.answer = list(plans), answer
        self.bodies: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"]),
                                     Route("/v1/models", self.models)])

    async def models(self, request: Request) -> Response:
        return JSONResponse({"data": [{"id": "m", "owned_by": "vllm"}]})

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        self.bodies.append(body)
        plan = self.plans.pop(0) if self.plans else Plan(text=self.answer(body) if self.answer else Plan.text)
        if plan.status != 200:
            return JSONResponse({"error": {"message": "busy"}}, status_code=plan.status)
        words = plan.text.split(" ")
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        usage = {"prompt_tokens": 7, "completion_tokens": len(pieces), "total_tokens": 7 + len(pieces)}
        calls = [{"index": i, "id": f"call_{i}", "type": "function",
                  "function": {"name": c["name"], "arguments": json.dumps(c["args"])}} for i, c in enumerate(plan.tool_calls)]
        if not body.get("stream"):
            message = {"role": "assistant", "content": plan.text, **({"tool_calls": calls} if calls else {})}
            return JSONResponse({"id": "c", "object": "chat.completion", "created": 0, "model": "m", "usage": usage,
                                 "choices": [{"index": 0, "message": message,
                                              "finish_reason": "tool_calls" if calls else "stop"}]})

        async def events() -> AsyncIterator[bytes]:
            def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
                chunk = {"id": "c", "object": "chat.completion.chunk", "model": "m",
                         "choices": [{"index": 0, "delta": delta, "finish_reason": finish, **extra}]}
                return f"data: {json.dumps(chunk)}\n\n".encode()

            yield event({"role": "assistant", "content": ""})
            for i, piece in enumerate(pieces):
                if plan.cut_after is not None and i >= plan.cut_after:
                    return  # the stream stops here: no finish, no [DONE]
                await asyncio.sleep(plan.delay_s)
                logprobs = {"logprobs": {"content": [{"token": piece, "logprob": -0.5, "top_logprobs": []}]}}
                yield event({"content": piece}, **(logprobs if plan.logprobs else {}))
            for call in calls:  # a tool call in two pieces: name and id first, then the arguments
                args = call["function"]["arguments"]
                yield event({"tool_calls": [{**call, "function": {"name": call["function"]["name"], "arguments": args[:3]}}]})
                yield event({"tool_calls": [{"index": call["index"], "function": {"arguments": args[3:]}}]})
            yield event({}, "tool_calls" if calls else "stop")
            if (body.get("stream_options") or {}).get("include_usage"):
                yield f"data: {json.dumps({'id': 'c', 'choices': [], 'usage': usage})}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")


@pytest.fixture
def stub() -> Iterator[Callable[..., tuple[Stub, str]]]:
    servers: list[Any] = []

    def start(*plans: Plan, answer: Callable[[dict[str, Any]], str] | None = None) -> tuple[Stub, str]:
        server = Stub(*plans, answer=answer)
        context = serve_app(server.app)
        port = context.__enter__()
        servers.append(context)
        return server, f"http://127.0.0.1:{port}/v1"

    yield start
    for context in servers:
        context.__exit__(None, None, None)


def client(url: str, dialect: str = "vllm") -> OpenAICompatModel:
    async def no_wait(s: float) -> None:
        return None

    return OpenAICompatModel(endpoint=Endpoint(url, dialect=dialect, sleep=no_wait,  # type: ignore[arg-type]
                                               retry=RetryPolicy(attempts=4)), model="m")


REQUEST = ChatRequest(messages=(Message(role="user", content="why is the sky blue?"),), max_tokens=40)


async def collect(model: OpenAICompatModel, request: ChatRequest = REQUEST) -> tuple[ChatResponse, list[tuple[float, str]]]:
    pieces: list[tuple[float, str]] = []
    started = time.perf_counter()

    async def on_token(piece: str) -> None:
        pieces.append((time.perf_counter() - started, piece))

    try:
        return await model.chat_stream(request, on_token), pieces
    finally:
        await model.aclose()


async def test_the_client_streams_pieces_as_they_come_and_answers_as_a_whole_answer_would(stub: Any) -> None:
    server, url = stub(Plan(delay_s=0.15), Plan())
    streamed_answer, pieces = await collect(client(url))
    whole = await client(url).chat(REQUEST)
    assert [p for _, p in pieces] == ["light", " scatters", " off", " the", " air"]
    assert pieces[0][0] < pieces[-1][0] - 0.4, "the first piece arrives while the rest is still being written"
    assert streamed_answer.model_dump(exclude={"latency_s"}) == whole.model_dump(exclude={"latency_s"})
    assert streamed_answer.usage.completion_tokens == 5
    streamed_body, plain_body = server.bodies
    assert streamed_body.pop("stream") is True and streamed_body.pop("stream_options") == {"include_usage": True}
    assert streamed_body == plain_body, "the same request, with the stream fields added"


async def test_streamed_tool_calls_and_logprobs_read_as_the_whole_answers(stub: Any) -> None:
    call = [{"name": "lookup", "args": {"topic": "sky", "n": 3}}]
    _, url = stub(Plan(text="let me look", tool_calls=call, logprobs=True), Plan(text="let me look", tool_calls=call))
    request = REQUEST.model_copy(update={"tools": (ToolSpec(name="lookup"),), "tool_choice": "auto"})
    streamed_answer, pieces = await collect(client(url), request)
    whole = await client(url).chat(request)
    assert streamed_answer.tool_calls == whole.tool_calls
    assert streamed_answer.tool_calls[0].parsed_arguments() == call[0]["args"]
    assert (streamed_answer.text, streamed_answer.finish_reason) == (whole.text, whole.finish_reason)
    assert (whole.text, whole.finish_reason) == ("let me look", "tool_calls")
    assert [t.token for t in streamed_answer.logprobs or []] == [p for _, p in pieces]


async def test_a_stream_that_fails_before_its_first_piece_is_retried_and_one_cut_after_is_a_typed_error(
        stub: Any) -> None:
    server, url = stub(Plan(status=503), Plan(cut_after=0), Plan(), Plan(cut_after=2))
    answered, pieces = await collect(client(url))
    assert [r.error for r in answered.retries] == ["HTTP 503", answered.retries[1].error] and len(server.bodies) == 3
    assert "".join(p for _, p in pieces) == answered.text == "light scatters off the air"
    with pytest.raises(ModelStreamError, match=r"after 2 piece\(s\)"):
        await collect(client(url))


async def test_a_server_that_streams_no_usage_is_asked_for_the_whole_answer(stub: Any) -> None:
    server, url = stub(Plan())
    answered, pieces = await collect(client(url, dialect="llama_cpp"))
    assert "stream" not in server.bodies[0] and [p for _, p in pieces] == [answered.text]
    assert answered.usage.prompt_tokens == 7


def stub_runtime(url: str, store: TraceStore, prompts: PromptLibrary) -> Runtime:
    config = RuntimeConfig(endpoints={"stub": EndpointConfig(base_url=url, dialect="vllm")},
                           roles={"default": RoleConfig(endpoint="stub", model="m")})
    return Runtime(config, prompts=prompts, traces=store)


def stub_answer(body: dict[str, Any]) -> str:
    value = answer(ChatRequest(messages=(Message(role="user", content=body["messages"][-1]["content"]),)))
    return value if isinstance(value, str) else json.dumps(value)


async def test_a_run_streamed_over_http_records_what_a_plain_run_records(tmp_path: Path, stub: Any,
                                                                          prompts: PromptLibrary) -> None:
    """The structured critic and the free-text writer, streamed from the stub: same fingerprints,
    answers and usage in the trace as a plain run of the same graph, and every token heard."""
    server, url = stub(answer=stub_answer)
    store = TraceStore(tmp_path / "runs")
    rt = stub_runtime(url, store, prompts)
    try:
        plain = await streamed.run(QUESTION, runtime=rt)
        stream = streamed.astream(QUESTION, runtime=rt, stream_mode="messages")
        chunks = await read(stream)
    finally:
        await rt.aclose()
    assert not any(b.get("stream") for b in server.bodies[:4]) and all(b.get("stream") for b in server.bodies[4:])
    assert "response_format" in server.bodies[5], "the critic's schema goes with its streamed request"

    def calls(run_id: str) -> list[tuple[Any, ...]]:
        return [(c.fingerprint, c.response.text, c.usage, c.parsed, c.error) for c in store.load(run_id).of_kind(ModelCall)]

    assert calls(stream.result.run_id) == calls(plain.run_id) and stream.result.state == plain.state
    assert "".join(m.content for m, _ in chunks) == "".join(text for _, text, *_ in calls(plain.run_id))


# -- the stream reader: any bytes end in an answer or one typed error --------------------------------


def read_all(data: bytes, cuts: list[int]) -> tuple[list[str], ChatResponse]:
    reader = StreamReader()
    pieces: list[str] = []
    start = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        pieces += reader.feed(data[start:cut])
        start = cut
    pieces += reader.feed(data[start:])
    pieces += reader.end()
    return pieces, reader.response()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=400),
                 st.lists(st.sampled_from([b"data: ", b"data:", b"\n", b"\r\n", b"\r", b"[DONE]", b": ping", b"{",
                                           b"}", b'"choices"', b":", b"[", b"]", b'{"delta":', b'{"content":"a"}',
                                           b'"finish_reason":"stop"', b'"usage":{"prompt_tokens":1}', b",",
                                           b'"tool_calls":[{"index":0}]', b'"error":"x"', b"null", b"1e999",
                                           b'"\\ud83d"', b"\xff", b"\xe2\x82"]), max_size=60).map(b"".join)),
       st.lists(st.integers(min_value=0, max_value=10_000), max_size=6))
def test_any_bytes_end_in_an_answer_or_one_typed_error(data: bytes, cuts: list[int]) -> None:
    try:
        pieces, response = read_all(data, cuts)
    except ModelStreamError:
        return
    assert "".join(pieces) == response.text
    json.dumps(response.model_dump(mode="json"))  # and it can be written to a trace


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=12), min_size=1, max_size=8), st.lists(st.integers(min_value=0, max_value=4000), max_size=8),
       st.sampled_from(["\n", "\r\n", "\r"]))
def test_a_valid_stream_reads_the_same_however_its_bytes_are_split(words: list[str], cuts: list[int], end: str) -> None:
    text = "".join(words)
    # the text's UTF-16 units cut at random, as a server escaping non-ASCII (\\ud83d\\ude00) may send a pair
    units = text.encode("utf-16-le", "surrogatepass")
    bounds = sorted({0, len(units), *(c - c % 2 for c in cuts if c < len(units))})
    parts = [units[a:b].decode("utf-16-le", "surrogatepass") for a, b in itertools.pairwise(bounds)]
    events = [json.dumps({"choices": [{"index": 0, "delta": {"content": p}}]}) for p in parts]
    events.append(json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                              "usage": {"prompt_tokens": 3, "completion_tokens": len(parts)}}))
    data = "".join(f"data: {e}{end}{end}" for e in events).encode() + f"data: [DONE]{end}{end}".encode()
    pieces, response = read_all(data, cuts)
    assert response.text == "".join(pieces) == text
    assert (response.finish_reason, response.usage.completion_tokens) == ("stop", len(parts))


# -- `rolegraph run --stream` ------------------------------------------------------------------------

GRAPH_FILE = '''
from typing import Any
from pydantic import BaseModel
import rolegraph as rg


class Question(BaseModel):
    question: str


class State(BaseModel):
    question: str
    draft: str = ""


writer = rg.Agent(name="writer", prompt="write", output=str)


async def write(state: State, runtime: rg.Runtime) -> dict[str, Any]:
    return {"draft": await writer.run(runtime, question=state.question)}


@rg.graph(input=Question, state=State, prompts="prompts/", agents=[writer])
def cli_writer(g: rg.StateGraph) -> None:
    g.add_node(write)
    g.add_edge(rg.START, "write")
'''


def test_rolegraph_run_stream_shows_tokens_as_they_come_and_each_update(tmp_path: Path, stub: Any) -> None:
    server, url = stub(Plan(text="light scatters off the air", delay_s=0.3))
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "write.j2").write_text("Answer: {{ question }}")
    (tmp_path / "cli_writer.py").write_text(GRAPH_FILE)
    (tmp_path / "q.jsonl").write_text(json.dumps(QUESTION) + "\n")
    (tmp_path / "rolegraph.toml").write_text(f'[endpoints.stub]\nbase_url = "{url}"\ndialect = "vllm"\n\n'
                                             '[roles.default]\nendpoint = "stub"\nmodel = "m"\n')
    process = subprocess.Popen([sys.executable, "-m", "rolegraph", "run", "cli_writer.py:cli_writer", "--input", "q.jsonl",
                                "--stream"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"})
    seen: list[tuple[float, str]] = []
    out: list[bytes] = []
    started = time.monotonic()

    def watch() -> None:  # what stderr shows, and when
        assert process.stderr is not None
        while chunk := process.stderr.read1(4096):  # type: ignore[attr-defined]
            seen.append((time.monotonic() - started, chunk.decode()))

    readers = [threading.Thread(target=watch), threading.Thread(target=lambda: out.append(process.stdout.read()))]  # type: ignore[union-attr]
    for r in readers:
        r.start()
    process.wait(timeout=120)
    for r in readers:
        r.join(10)
    err, stdout = "".join(text for _, text in seen), b"".join(out)
    assert process.returncode == 0, err
    assert "write (writer) light scatters off the air\n" in err and "✓ write" in err and '"draft"' in err
    first = next(t for t, text in seen if "light" in text)
    last = next(t for t, text in seen if "air" in text)
    assert last - first > 0.6, "the tokens were shown as they came, not all at the end"
    assert "status" in stdout.decode() and json.loads((tmp_path / "cli_writer-results.jsonl").read_text())["status"] == "ok"
    assert server.bodies[0]["stream"] is True


# -- the UI follows a run in progress -------------------------------------------------------------------


async def test_the_run_page_follows_a_run_in_progress_and_agrees_with_the_list(tmp_path: Path,
                                                                               prompts: PromptLibrary) -> None:
    gate, reached = asyncio.Event(), asyncio.Event()

    async def held(request: ChatRequest) -> Any:
        if "Review" in (request.messages[-1].content or ""):
            reached.set()
            await gate.wait()
        return answer(request)

    rt = runtime(tmp_path, prompts, FunctionModel(held))
    ui = TestClient(create_app(runs=tmp_path / "runs", evals=tmp_path / "evals"),
                    headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"})
    task = asyncio.create_task(streamed.run(QUESTION, runtime=rt))
    store = rt.traces
    assert store is not None
    # held inside the second step's model call: its NodeStarted is written, its NodeFinished cannot be
    await asyncio.wait_for(reached.wait(), 60)
    assert store.list() and store.load(store.list()[0].run_id).of_kind(NodeFinished)
    run_id = store.list()[0].run_id

    page = await asyncio.to_thread(ui.get, f"/runs/{run_id}")
    listed = await asyncio.to_thread(ui.get, "/runs")
    live = (await asyncio.to_thread(ui.get, f"/runs/{run_id}/live.json")).json()
    assert '<span class="status running">running</span>' in page.text and f"/runs/{run_id}/live.json" in page.text
    assert "running…" in page.text, "the step in progress says so (not 0 ms)"
    assert "running" in listed.text.split(run_id, 1)[1].split("</tr>", 1)[0]
    assert live["status"] == "running" and live["size"] > 0

    gate.set()
    await task
    page = await asyncio.to_thread(ui.get, f"/runs/{run_id}")
    after = (await asyncio.to_thread(ui.get, f"/runs/{run_id}/live.json")).json()
    assert after["status"] == "ok" and after["size"] > live["size"]
    assert '<span class="status ok">ok</span>' in page.text and "live.json" not in page.text
