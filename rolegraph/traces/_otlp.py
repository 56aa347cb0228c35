"""OpenTelemetry export: a run as OTLP/JSON spans with OpenInference and GenAI semantic
attributes (run -> node steps -> model and tool calls), to a file or an OTLP/HTTP endpoint, so
it opens in Phoenix, Langfuse or Jaeger."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from pathlib import Path
from typing import Any

from rolegraph.traces._events import ModelCall, ToolInvocation
from rolegraph.traces._recorder import package_versions
from rolegraph.traces._redact import Redactor
from rolegraph.traces._show import steps
from rolegraph.traces._trace import Trace

SPAN_KIND_INTERNAL, SPAN_KIND_CLIENT = 1, 3
STATUS_OK, STATUS_ERROR = 1, 2


def _id(*parts: str, n: int) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:n]


def _ns(seconds: float) -> str:
    return str(int(seconds * 1e9))


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        v: dict[str, Any] = {"boolValue": value}
    elif isinstance(value, int):
        v = {"intValue": str(value)}
    elif isinstance(value, float):
        v = {"doubleValue": value}
    else:
        v = {"stringValue": value if isinstance(value, str) else json.dumps(value, default=str)}
    return {"key": key, "value": v}


def _span(trace_id: str, span_id: str, parent: str, name: str, start: float, end: float,
          attrs: dict[str, Any], error: str | None = None, kind: int = SPAN_KIND_INTERNAL) -> dict[str, Any]:
    return {
        "traceId": trace_id, "spanId": span_id, "parentSpanId": parent, "name": name, "kind": kind,
        "startTimeUnixNano": _ns(start), "endTimeUnixNano": _ns(max(end, start)),
        "attributes": [_attr(k, v) for k, v in attrs.items() if v is not None],
        "status": {"code": STATUS_ERROR, "message": error} if error else {"code": STATUS_OK},
    }


def _model_span(trace_id: str, parent: str, c: ModelCall) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "openinference.span.kind": "LLM",
        "llm.model_name": c.request.model or (c.response.model if c.response else ""),
        "llm.invocation_parameters": json.dumps(c.request.model_dump(
            mode="json", include={"temperature", "top_p", "max_tokens", "seed"}, exclude_none=True)),
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": c.request.model or (c.response.model if c.response else ""),
        "rolegraph.role": c.role, "rolegraph.agent": c.agent, "rolegraph.attempt": c.attempt,
        "rolegraph.prompt": c.prompt, "rolegraph.replayed": c.replayed,
    }
    for i, m in enumerate(c.request.messages):
        attrs[f"llm.input_messages.{i}.message.role"] = m.role
        attrs[f"llm.input_messages.{i}.message.content"] = m.content or ""
        attrs.update(_tool_call_attrs(f"llm.input_messages.{i}.message", m.tool_calls))
        if m.tool_call_id is not None:
            attrs[f"llm.input_messages.{i}.message.tool_call_id"] = m.tool_call_id
    for i, t in enumerate(c.request.tools):
        attrs[f"llm.tools.{i}.tool.json_schema"] = json.dumps(
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}})
    if c.response is not None:
        attrs.update({
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": c.response.text,
            **_tool_call_attrs("llm.output_messages.0.message", c.response.tool_calls),
            "output.value": c.response.text,
            "llm.token_count.prompt": c.usage.prompt_tokens,
            "llm.token_count.completion": c.usage.completion_tokens,
            "llm.token_count.total": c.usage.total_tokens,
            "gen_ai.usage.input_tokens": c.usage.prompt_tokens,
            "gen_ai.usage.output_tokens": c.usage.completion_tokens,
            "gen_ai.response.model": c.response.model,
            "gen_ai.response.finish_reasons": json.dumps([c.response.finish_reason]),
        })
    name = f"chat {c.role}"
    return _span(trace_id, _id(trace_id, c.node_key or "", "call", str(c.call_index), n=16), parent, name,
                 c.ts - c.latency_s, c.ts, attrs, c.error, SPAN_KIND_CLIENT)


def _tool_call_attrs(prefix: str, calls: Any) -> dict[str, Any]:
    """A message's tool calls as OpenInference's `...message.tool_calls.N.tool_call.*` attributes."""
    out: dict[str, Any] = {}
    for j, call in enumerate(calls):
        out[f"{prefix}.tool_calls.{j}.tool_call.id"] = call.id
        out[f"{prefix}.tool_calls.{j}.tool_call.function.name"] = call.name
        out[f"{prefix}.tool_calls.{j}.tool_call.function.arguments"] = call.arguments
    return out


def _tool_span(trace_id: str, parent: str, t: ToolInvocation) -> dict[str, Any]:
    attrs = {"openinference.span.kind": "TOOL", "tool.name": t.name, "gen_ai.operation.name": "execute_tool",
             "gen_ai.tool.name": t.name, "input.value": t.input, "output.value": t.output,
             "rolegraph.replayed": t.replayed}
    return _span(trace_id, _id(trace_id, t.node_key or "", "tool", str(t.call_index), n=16), parent,
                 f"tool {t.name}", t.ts - t.duration_s, t.ts, attrs, t.error)


def to_otlp(trace: Trace) -> dict[str, Any]:
    """The run as one OTLP ExportTraceServiceRequest (JSON encoding)."""
    started = trace.started
    trace_id = _id(trace.run_id, n=32)
    root_id = _id(trace_id, "run", n=16)
    end = trace.events[-1].ts if trace.events else started.ts
    finished = trace.finished
    root_attrs: dict[str, Any] = {
        "openinference.span.kind": "CHAIN", "rolegraph.run_id": trace.run_id, "rolegraph.graph": started.manifest.graph,
        "input.value": started.manifest.input, "rolegraph.status": trace.status,
        "output.value": finished.output if finished else None,
    }
    if started.parent:
        root_attrs["rolegraph.parent_run_id"] = started.parent.run_id
    spans = [_span(trace_id, root_id, "", started.manifest.graph, started.ts, end, root_attrs,
                   None if trace.status == "ok" else trace.status)]
    for s in steps(trace):
        node_id = _id(trace_id, "node", s.key, n=16)
        node_end = s.end_ts or end
        spans.append(_span(trace_id, node_id, root_id, s.node, node_end - s.duration_s, node_end,
                           {"openinference.span.kind": "CHAIN", "rolegraph.step": s.step, "rolegraph.node_key": s.key,
                            "output.value": s.delta}, s.error))
        spans.extend(_model_span(trace_id, node_id, c) for c in s.calls)
        spans.extend(_tool_span(trace_id, node_id, t) for t in s.tools)
    return {"resourceSpans": [{
        "resource": {"attributes": [_attr("service.name", "rolegraph"),
                                    _attr("openinference.project.name", started.manifest.graph)]},
        "scopeSpans": [{"scope": {"name": "rolegraph", "version": package_versions().get("rolegraph", "0.0.0")},
                        "spans": spans}],
    }]}


def export(trace: Trace, target: str, *, timeout_s: float = 10.0, redactor: Redactor | None = None) -> str:
    """Write OTLP/JSON to a file, or POST it to an OTLP/HTTP endpoint (http://host:4318), with
    secrets redacted (`redactor`, default: the environment's key-like variables)."""
    body = (redactor or Redactor())(json.dumps(to_otlp(trace))).encode()
    if target.startswith(("http://", "https://")):
        url = target.rstrip("/")
        if not url.endswith("/v1/traces"):
            url += "/v1/traces"
        req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout_s) as response:
            return f"{url}: HTTP {response.status}"
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return str(path.resolve())
