"""Importing OpenTelemetry traces made by the instrumentation libraries people use (the openai
client's GenAI instrumentation, OpenInference's LangChain instrumentation) around a ReAct app
calling a stub OpenAI-compatible server, exported by the OTel SDK's own exporters; then show, diff,
replay offline with the network cut, and fork."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from typer.testing import CliRunner

from rolegraph import Runtime
from rolegraph.cli import app as cli
from rolegraph.config import EndpointConfig, RoleConfig, RuntimeConfig
from rolegraph.errors import ReplayMismatch, UserError
from rolegraph.graphs import replay_imported, replay_run
from rolegraph.traces import IMPORTED, ModelCall, ToolInvocation, Trace, TraceStore, import_traces
from rolegraph.traces._otlp import to_otlp
from tests.conftest import serve_app
from tests.unit import trace_import_app

QUESTION = "What is (2+3)*4?"
ANSWER = "The answer is 20."


# -- a stub model server and an OTLP/HTTP receiver, on 127.0.0.1 ------------------------------------


class Stub:
    """An OpenAI-compatible server playing a ReAct agent: add, then multiply, then the answer (by the
    number of tool results the request carries, so a fork asks it again and gets the same)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        done = sum(1 for m in body["messages"] if m["role"] == "tool")
        message: dict[str, Any] = {"role": "assistant", "content": ANSWER if done >= 2 else ""}
        if done < 2:
            name, args = ("add", {"a": 2, "b": 3}) if done == 0 else ("multiply", {"a": 5, "b": 4})
            message["tool_calls"] = [{"id": f"call_{done}", "type": "function",
                                      "function": {"name": name, "arguments": json.dumps(args)}}]
        return JSONResponse({"id": "c", "object": "chat.completion", "created": 0, "model": "stub-model",
                             "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16},
                             "choices": [{"index": 0, "message": message,
                                          "finish_reason": "tool_calls" if done < 2 else "stop"}]})


class Receiver:
    """An OTLP/HTTP trace receiver: saves each body the SDK's exporter posts (protobuf) as a file."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.count = folder, 0
        folder.mkdir(parents=True, exist_ok=True)
        self.app = Starlette(routes=[Route("/v1/traces", self.traces, methods=["POST"])])

    async def traces(self, request: Request) -> Response:
        self.count += 1
        (self.folder / f"{self.count:04d}.pb").write_bytes(await request.body())
        return Response(b"", media_type="application/x-protobuf")


@pytest.fixture
def stub() -> Iterator[tuple[Stub, str]]:
    server = Stub()
    with serve_app(server.app) as port:
        yield server, f"http://127.0.0.1:{port}/v1"


def runtime_for(url: str) -> Runtime:
    return Runtime(RuntimeConfig(endpoints={"stub": EndpointConfig(base_url=url)},
                                 roles={"default": RoleConfig(endpoint="stub", model="stub-model")}))


# -- "production": the app as people run it, traced by the instrumentation libraries ----------------


def _wire(m: BaseMessage) -> dict[str, Any]:
    if isinstance(m, SystemMessage):
        return {"role": "system", "content": m.content}
    if isinstance(m, HumanMessage):
        return {"role": "user", "content": m.content}
    if isinstance(m, ToolMessage):
        return {"role": "tool", "content": m.content, "tool_call_id": m.tool_call_id}
    out: dict[str, Any] = {"role": "assistant", "content": m.content}
    if isinstance(m, AIMessage) and m.tool_calls:
        out["tool_calls"] = [{"id": c["id"], "type": "function",
                              "function": {"name": c["name"], "arguments": json.dumps(c["args"])}} for c in m.tool_calls]
    return out


class OpenAIChat(BaseChatModel):
    """A LangChain chat model over the openai client's `chat.completions.create`, as langchain-openai's
    ChatOpenAI is (so that the openai client's instrumentation sees every call)."""

    base_url: str

    @property
    def _llm_type(self) -> str:
        return "openai-chat"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        client = openai.OpenAI(base_url=self.base_url, api_key="sk-test-not-a-secret")
        reply = client.chat.completions.create(model="stub-model", messages=[_wire(m) for m in messages],  # type: ignore[call-overload]
                                               **kwargs)
        msg = reply.choices[0].message
        calls = [{"name": c.function.name, "args": json.loads(c.function.arguments), "id": c.id, "type": "tool_call"}
                 for c in msg.tool_calls or []]
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=msg.content or "", tool_calls=calls))])


@contextmanager
def otel(exporter: Any) -> Iterator[Any]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        yield provider
    finally:
        provider.shutdown()


@contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Environment variables set (None: unset) for the block, as they were after it."""
    before = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        yield
    finally:
        for k, v in before.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def run_openai_v2(url: str, exporter: Any, *, capture: bool = True) -> list[Any]:
    """The app with ChatOpenAI-style calls, under opentelemetry-instrumentation-openai-v2 (content
    capture on: the latest GenAI conventions, messages on the span), in one root span (as an app's own
    `invoke_agent` span holds its calls). Returns the final messages."""
    from langgraph.prebuilt import create_react_agent
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    with environment(OTEL_SEMCONV_STABILITY_OPT_IN="gen_ai_latest_experimental",
                     OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="SPAN_ONLY" if capture else None), \
            otel(exporter) as provider:
        instrumentor = OpenAIInstrumentor()
        instrumentor.instrument(tracer_provider=provider)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                agent = create_react_agent(OpenAIChat(base_url=url), [trace_import_app.add, trace_import_app.multiply])
            with provider.get_tracer("calculator").start_as_current_span("invoke_agent calculator"):
                state = agent.invoke({"messages": [{"role": "user", "content": QUESTION}]})
        finally:
            instrumentor.uninstrument()
    return list(state["messages"])


def run_openinference(url: str, exporter: Any) -> list[Any]:
    """The wrapped app (rolegraph's LangChain model and tools) under openinference-instrumentation-langchain."""
    from openinference.instrumentation.langchain import LangChainInstrumentor

    with otel(exporter) as provider:
        instrumentor = LangChainInstrumentor()
        instrumentor.instrument(tracer_provider=provider)
        try:
            rt = runtime_for(url)
            with rt:
                result = rt.run_sync(trace_import_app.app.run({"messages": [{"role": "user", "content": QUESTION}]},
                                                              runtime=rt))
        finally:
            instrumentor.uninstrument()
    return list(result.state["messages"])


def collector_json(spans: Any, path: Path) -> Path:
    """Spans as the collector's file exporter writes them: one ExportTraceServiceRequest a line, hex ids."""
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    request = MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    for rs in request["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if s.get(key):
                        s[key] = base64.b64decode(s[key]).hex()
    path.write_text(json.dumps(request) + "\n")
    return path


@contextmanager
def network_cut() -> Iterator[None]:
    """No socket connects anywhere, 127.0.0.1 included."""
    real = socket.socket.connect

    def refuse(self: socket.socket, address: object) -> None:
        raise OSError(f"network cut: connect to {address}")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect = real  # type: ignore[method-assign]


def contents(messages: list[Any]) -> list[tuple[str, str]]:
    return [(m.type, str(m.content)) for m in messages]


def _replay_and_fork(store: TraceStore, run_id: str, url: str, stub: Stub, produced: list[Any]) -> None:
    """Replay the imported run offline (0 live calls, 0 tools run, the same conversation), then fork it
    from the second model call."""
    trace = store.load(run_id)
    trace_import_app.TOOLS_RUN.clear()
    asked = len(stub.requests)
    with network_cut():
        done = asyncio.run(replay_imported(trace, trace_import_app.app, store=store))
    assert (done.answered, done.tools_answered, done.live_calls, done.unused) == (3, 2, 0, [])
    assert trace_import_app.TOOLS_RUN == [] and len(stub.requests) == asked
    assert contents(done.result.state["messages"]) == contents(produced)
    replayed = store.load(done.result.run_id)
    assert replayed.started.parent is not None and replayed.started.parent.run_id == run_id
    assert replayed.finished is not None and replayed.finished.totals.replayed_calls == 3
    assert replayed.finished.totals.model_calls == 0

    # fork from the second model call: the replayed run's step 2 (agent, tools, agent ...) runs live
    second = [c for c in replayed.of_kind(ModelCall)][1]
    live = runtime_for(url)
    with live:
        fork = live.run_sync(replay_run(replayed, store=store, live=live, live_from=second.step))
    forked = store.load(fork.run_id)
    assert forked.finished is not None
    assert (forked.finished.totals.replayed_calls, forked.finished.totals.model_calls) == (1, 2)
    assert len(stub.requests) == asked + 2 and trace_import_app.TOOLS_RUN == ["multiply"]
    assert contents(fork.state["messages"]) == contents(produced)


# -- the tests ----------------------------------------------------------------------------------------


def test_openai_v2_trace_posted_as_protobuf_imports_shows_and_replays_offline(
        stub: tuple[Stub, str], tmp_path: Path) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    server, url = stub
    receiver = Receiver(tmp_path / "otlp")
    with serve_app(receiver.app) as port:
        produced = run_openai_v2(url, OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces"))
    assert receiver.count >= 4 and produced[-1].content == ANSWER
    store = TraceStore(tmp_path / "runs")
    report = import_traces(tmp_path / "otlp", store)
    assert [f[1] for f in report.files] == ["otlp-proto"] * receiver.count
    [run] = report.runs
    assert (run.spans, run.mapped, run.raw, run.calls, run.tools, run.derived_tools) == (4, 4, 0, 3, 0, 2)
    trace = store.load(run.run_id)
    assert trace.started.manifest.tags[IMPORTED] == "otlp-proto"
    calls = trace.of_kind(ModelCall)
    assert [c.response.tool_calls[0].name if c.response and c.response.tool_calls else c.response.text
            for c in calls] == ["add", "multiply", ANSWER]
    assert [(c.usage.prompt_tokens, c.usage.completion_tokens, c.request.model) for c in calls] == [(11, 5, "stub-model")] * 3
    assert [(t.name, t.input, t.output) for t in trace.of_kind(ToolInvocation)] == [
        ("add", {"a": 2, "b": 3}, "5"), ("multiply", {"a": 5, "b": 4}, "20")]
    shown = CliRunner().invoke(cli, ["trace", "show", run.run_id, "--runs", str(store.root), "--calls"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "imported from otlp-proto" in shown.output and "multiply" in shown.output
    listed = CliRunner().invoke(cli, ["trace", "list", "--runs", str(store.root)], env={"COLUMNS": "200"})
    assert f"{IMPORTED}-" in listed.output
    _replay_and_fork(store, run.run_id, url, server, produced)
    with network_cut():
        replayed = CliRunner().invoke(cli, ["replay", run.run_id, "--app", "tests.unit.trace_import_app:app",
                                            "--runs", str(store.root)], env={"COLUMNS": "200"})
    assert replayed.exit_code == 0, replayed.output
    assert "3 model calls answered from the trace, 0 live; 2 tool calls answered from the trace, 0 run" in replayed.output


def test_openinference_trace_as_collector_json_imports_diffs_and_replays_offline(
        stub: tuple[Stub, str], tmp_path: Path) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    server, url = stub
    exporter = InMemorySpanExporter()
    produced = run_openinference(url, exporter)
    export = collector_json(exporter.get_finished_spans(), tmp_path / "export.json")
    store = TraceStore(tmp_path / "runs")
    [run] = import_traces(export, store).runs
    assert run.convention == "openinference" and run.calls == 3 and run.tools == 2 and run.derived_tools == 0
    assert run.mapped + run.raw == run.spans and run.raw > 0  # the chains inside each node are kept raw
    trace = store.load(run.run_id)
    steps = [e.node for e in trace.events if e.kind == "node_started"]
    assert steps == ["agent", "tools", "agent", "tools", "agent"]
    drawing = trace.started.manifest.mermaid  # the graph as the run went through it, for its page
    assert '["agent"]' in drawing and '["tools"]' in drawing and drawing.count("-->") == 4
    raw_inner = [i for e in trace.events if getattr(e, "source", None) for i in e.source.inner]  # type: ignore[union-attr]
    assert len(raw_inner) == run.raw
    _replay_and_fork(store, run.run_id, url, server, produced)
    # the imported run against the local replay of it: the same calls, so no divergence before the end
    local = [r.run_id for r in store.list(limit=5) if r.parent == run.run_id]
    diff = CliRunner().invoke(cli, ["trace", "diff", run.run_id, local[0], "--runs", str(store.root)],
                              env={"COLUMNS": "200"})
    assert diff.exit_code == 0, diff.output
    assert "no divergence" in diff.output, diff.output


def test_a_changed_app_gets_a_mismatch_report(stub: tuple[Stub, str], tmp_path: Path) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    _, url = stub
    exporter = InMemorySpanExporter()
    run_openai_v2(url, exporter)
    store = TraceStore(tmp_path / "runs")
    [run] = import_traces(collector_json(exporter.get_finished_spans(), tmp_path / "e.json"), store).runs
    with pytest.raises(ReplayMismatch, match=r"model call #1 .* asks something else") as caught:
        asyncio.run(replay_imported(store.load(run.run_id), trace_import_app.app, store=store,
                                    input={"messages": [{"role": "user", "content": "What is 7*6?"}]}))
    assert "What is 7*6?" in str(caught.value) + str(getattr(caught.value, "args", ""))


def test_a_trace_without_content_imports_but_refuses_to_replay_saying_how(
        stub: tuple[Stub, str], tmp_path: Path) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    _, url = stub
    exporter = InMemorySpanExporter()
    run_openai_v2(url, exporter, capture=False)
    store = TraceStore(tmp_path / "runs")
    report = import_traces(collector_json(exporter.get_finished_spans(), tmp_path / "e.json"), store)
    [run] = report.runs
    assert not run.content and any("not replayable" in line for line in report.lines())
    with pytest.raises(UserError, match="OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_ONLY"):
        asyncio.run(replay_imported(store.load(run.run_id), trace_import_app.app, store=store))
    replay = CliRunner().invoke(cli, ["replay", run.run_id, "--runs", str(store.root)])
    assert isinstance(replay.exception, UserError) and "--app module:NAME" in str(replay.exception)


def test_a_malformed_line_is_one_error_naming_file_and_line(tmp_path: Path) -> None:
    good = json.dumps({"resourceSpans": []})
    export = tmp_path / "bad.json"
    export.write_text(good + "\n" + '{"resourceSpans": [' + "\n" + good + "\n")
    with pytest.raises(UserError, match=rf"{export}:2: not OTLP JSON"):
        import_traces(export, TraceStore(tmp_path / "runs"))
    logs = tmp_path / "logs.json"
    logs.write_text(json.dumps({"resourceLogs": []}) + "\n")
    with pytest.raises(UserError, match=rf"{logs}:1: not an OTLP trace export"):
        import_traces(logs, TraceStore(tmp_path / "runs"))
    proto = tmp_path / "garbage.pb"
    proto.write_bytes(b"\xff\xfe not protobuf")
    with pytest.raises(UserError, match=rf"{proto}: not an OTLP protobuf"):
        import_traces(proto, TraceStore(tmp_path / "runs"))


def test_a_partial_export_imports_what_it_can_and_says_what_it_skipped(tmp_path: Path) -> None:
    def span(span_id: str, name: str, **attrs: Any) -> dict[str, Any]:
        return {"traceId": "ab" * 16, "spanId": span_id, "name": name, "startTimeUnixNano": "1000000000",
                "endTimeUnixNano": "2000000000",
                "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()]}

    good = span("01" * 8, "chat m", **{"gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
                                        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [
                                            {"type": "text", "content": "hi"}]}]),
                                        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
                                            {"type": "text", "content": "hello"}]}]),
                                        "vendor.thing": "kept"})
    broken = {**span("zz", "broken"), "spanId": "not-an-id!"}
    export = tmp_path / "partial.json"
    line = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [good, broken]}]}]})
    export.write_text(line + "\n" + line[: len(line) // 2])  # the writer stopped mid-line
    store = TraceStore(tmp_path / "runs")
    report = import_traces(export, store)
    assert len(report.runs) == 1 and len(report.skipped) == 2
    assert any(f"{export}:1: span 1" in s for s in report.skipped)
    assert any(f"{export}:2: the last line is cut off" in s for s in report.skipped)
    [call] = store.load(report.runs[0].run_id).of_kind(ModelCall)
    assert call.response is not None and call.response.text == "hello"
    assert call.source is not None and call.source.raw == {"vendor.thing": "kept"}
    again = import_traces(export, store)
    assert again.runs == [] and any("imported before" in s for s in again.skipped)
    printed = CliRunner().invoke(cli, ["trace", "import", str(export), "--runs", str(tmp_path / "cli")],
                                 env={"COLUMNS": "300"})
    assert printed.exit_code == 0, printed.output
    assert "1 spans: 1 mapped, 0 kept raw" in printed.output and "1 attributes kept raw" in printed.output
    assert printed.output.count("skipped: ") == 2 and "imported 1 run, skipped 2" in printed.output


def test_our_own_otlp_export_round_trips(stub: tuple[Stub, str], tmp_path: Path) -> None:
    _, url = stub
    store = TraceStore(tmp_path / "runs")
    rt = Runtime(RuntimeConfig(endpoints={"stub": EndpointConfig(base_url=url)},
                               roles={"default": RoleConfig(endpoint="stub", model="stub-model")}))
    rt.traces = store
    with rt:
        result = rt.run_sync(trace_import_app.app.run({"messages": [{"role": "user", "content": QUESTION}]}, runtime=rt))
    original = store.load(result.run_id)
    export = tmp_path / "ours.json"
    export.write_text(json.dumps(to_otlp(original)))
    [run] = import_traces(export, store).runs
    assert run.convention == "rolegraph"
    imported = store.load(run.run_id)

    def calls(trace: Trace) -> list[tuple[Any, ...]]:
        return [(c.role, c.request.comparable().messages, [(t.name, json.loads(t.arguments)) for t in c.response.tool_calls]
                 if c.response else None, c.response.text if c.response else None, c.usage) for c in trace.of_kind(ModelCall)]

    assert calls(imported) == calls(original) and len(calls(original)) == 3
    assert [(t.name, t.input, t.output) for t in imported.of_kind(ToolInvocation)] == [
        (t.name, t.input, t.output) for t in original.of_kind(ToolInvocation)]
    assert [(e.node, e.step) for e in imported.events if e.kind == "node_started"] == [
        (e.node, e.step) for e in original.events if e.kind == "node_started"]


def test_older_genai_conventions_attributes_and_events_are_read(tmp_path: Path) -> None:
    """The GenAI shapes before `gen_ai.input.messages` (instrumentations that still write them): indexed
    `gen_ai.prompt.N.*`/`gen_ai.completion.N.*` attributes, and message span events."""
    def attr(k: str, v: Any) -> dict[str, Any]:
        return {"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}

    indexed = {"traceId": "cd" * 16, "spanId": "02" * 8, "name": "chat m", "kind": 3,
               "startTimeUnixNano": "1000000000", "endTimeUnixNano": "1500000000",
               "attributes": [attr("gen_ai.system", "openai"), attr("gen_ai.request.model", "m"),
                              attr("gen_ai.prompt.0.role", "user"), attr("gen_ai.prompt.0.content", "2+2?"),
                              attr("gen_ai.completion.0.role", "assistant"),
                              attr("gen_ai.completion.0.tool_calls.0.name", "add"),
                              attr("gen_ai.completion.0.tool_calls.0.arguments", '{"a": 2, "b": 2}'),
                              attr("gen_ai.usage.prompt_tokens", 3), attr("gen_ai.usage.completion_tokens", 4)]}
    evented = {"traceId": "ef" * 16, "spanId": "03" * 8, "name": "chat m", "kind": 3,
               "startTimeUnixNano": "1000000000", "endTimeUnixNano": "1500000000",
               "attributes": [attr("gen_ai.operation.name", "chat"), attr("gen_ai.request.model", "m")],
               "events": [{"name": "gen_ai.user.message", "timeUnixNano": "1000000000",
                           "attributes": [attr("content", "hello?")]},
                          {"name": "gen_ai.choice", "timeUnixNano": "1500000000",
                           "attributes": [attr("message", json.dumps({"role": "assistant", "content": "hi"})),
                                          attr("finish_reason", "stop")]},
                          {"name": "exception", "timeUnixNano": "1500000000", "attributes": [attr("x", "kept")]}]}
    export = tmp_path / "old.json"
    export.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [indexed, evented]}]}]}))
    store = TraceStore(tmp_path / "runs")
    runs = {r.trace_id: r for r in import_traces(export, store).runs}
    [first] = store.load(runs["cd" * 16].run_id).of_kind(ModelCall)
    assert [(m.role, m.content) for m in first.request.messages] == [("user", "2+2?")]
    assert first.response is not None and [(c.name, json.loads(c.arguments)) for c in first.response.tool_calls] == [
        ("add", {"a": 2, "b": 2})]
    assert (first.usage.prompt_tokens, first.usage.completion_tokens, first.latency_s) == (3, 4, 0.5)
    [second] = store.load(runs["ef" * 16].run_id).of_kind(ModelCall)
    assert [(m.role, m.content) for m in second.request.messages] == [("user", "hello?")]
    assert second.response is not None and (second.response.text, second.response.finish_reason) == ("hi", "stop")
    assert second.source is not None and [e["name"] for e in second.source.raw["span.events"]] == ["exception"]


def test_an_imported_run_says_so_in_its_page(tmp_path: Path) -> None:
    export = tmp_path / "one.json"
    export.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "12" * 16, "spanId": "34" * 8, "name": "chat m", "startTimeUnixNano": "1", "endTimeUnixNano": "2",
        "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}}]}]}]}]}))
    store = TraceStore(tmp_path / "runs")
    [run] = import_traces(export, store).runs
    page = CliRunner().invoke(cli, ["trace", "view", run.run_id, "--runs", str(store.root), "--out",
                                    str(tmp_path / "page.html")])
    assert page.exit_code == 0, page.output
    assert f"imported from otlp-json {export}" in (tmp_path / "page.html").read_text()
    from fastapi.testclient import TestClient

    from rolegraph.ui import create_app

    ui = TestClient(create_app(runs=store.root, evals=tmp_path / "evals"))
    listed = ui.get("/runs").text.split(run.run_id, 1)[1].split("</tr>", 1)[0]
    assert '<span class="tag">imported</span>' in listed
    assert "imported from otlp-json" in ui.get(f"/runs/{run.run_id}").text


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                     max_leaves=12)
_SPAN = st.fixed_dictionaries({
    "traceId": st.sampled_from(["ab" * 16, "", "not-hex", "q83vEjRWeJA="]),
    "spanId": st.sampled_from(["cd" * 8, "", "zz"]),
    "name": st.text(max_size=10),
    "startTimeUnixNano": st.one_of(st.integers(-5, 10**19).map(str), st.text(max_size=4)),
    "endTimeUnixNano": st.one_of(st.integers(-5, 10**19).map(str), st.none()),
    "attributes": st.lists(st.fixed_dictionaries({
        "key": st.sampled_from(["gen_ai.operation.name", "gen_ai.input.messages", "gen_ai.output.messages",
                                "openinference.span.kind", "llm.input_messages.0.message.role",
                                "llm.output_messages.0.message.content", "input.value", "output.value", "tool.name"]),
        "value": st.one_of(st.fixed_dictionaries({"stringValue": st.sampled_from(
            ["chat", "LLM", "TOOL", "CHAIN", "[]", "{}", '[{"role": "user", "parts": []}]', "x"])}), _JSON)}),
        max_size=6)})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(
    st.lists(_SPAN, max_size=4).map(lambda spans: json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})),
    _JSON.map(json.dumps), st.text(max_size=40)))
def test_any_export_imports_or_is_one_clear_error(tmp_path: Path, body: str) -> None:
    """Hostile input: whatever the file holds, the import ends in runs or one UserError naming the file."""
    export = tmp_path / f"e{abs(hash(body))}.json"
    export.write_text(body)
    try:
        report = import_traces(export, TraceStore(tmp_path / "runs"))
    except UserError as exc:
        assert str(export) in str(exc)
        return
    for run in report.runs:  # what was imported loads
        assert TraceStore(tmp_path / "runs").load(run.run_id).run_id == run.run_id
