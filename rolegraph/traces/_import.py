"""`rolegraph trace import`: OpenTelemetry traces recorded elsewhere (GenAI or OpenInference spans,
rolegraph's own export) as runs in the store, one per trace id, written as the normal events so that
every tool reads them. What a span says that no event field holds is kept raw on the event
(`SpanSource`); the report says what was mapped, kept raw and skipped."""

from __future__ import annotations

import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rolegraph._langgraph import NODE, STEP
from rolegraph.errors import UserError
from rolegraph.traces._events import (
    Manifest,
    ModelCall,
    NodeFinished,
    NodeStarted,
    RunFinished,
    RunStarted,
    SpanSource,
    ToolInvocation,
    Totals,
)
from rolegraph.traces._import_genai import LLM_OPERATIONS, has_content, loads, model_call, tool_call
from rolegraph.traces._import_otlp import Span, read_export
from rolegraph.traces._store import TraceStore

IMPORTED = "imported"
"""The manifest tag of an imported run: the wire format it was read from."""
_STRUCTURE = frozenset({"CHAIN", "AGENT", "RETRIEVER", "RERANKER", "EMBEDDING", "GUARDRAIL", "EVALUATOR"})
_STEP_KEYS = frozenset({"openinference.span.kind", "gen_ai.operation.name", "gen_ai.agent.name", "input.value",
                        "output.value", "input.mime_type", "output.mime_type", "rolegraph.step", "rolegraph.node_key"})


@dataclass
class ImportedRun:
    run_id: str
    trace_id: str
    convention: str
    """What the spans follow: `openinference`, `gen_ai`, `rolegraph` (its own export) or a mix (`+`)."""
    spans: int = 0
    mapped: int = 0
    """Spans that became an event (a step, a model call, a tool call, the run)."""
    raw: int = 0
    """Spans that became no event of their own, kept whole on the event that encloses them."""
    calls: int = 0
    tools: int = 0
    derived_tools: int = 0
    """Tool calls read from the tool messages of later requests (the source had no tool spans)."""
    steps: int = 0
    content: bool = True
    """Whether the model calls carry their messages (needed for a replay)."""
    raw_keys: int = 0
    """Attributes of mapped spans that no event field holds (kept raw on their events)."""


@dataclass
class ImportReport:
    files: list[tuple[Path, str]] = field(default_factory=list)
    runs: list[ImportedRun] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """What was not imported, and why (spans that could not be read, traces imported before)."""

    def lines(self) -> list[str]:
        out = [f"read {len(self.files)} file{'s' if len(self.files) != 1 else ''} "
               f"({', '.join(sorted({w for _, w in self.files}))})"]
        for r in self.runs:
            text = (f"{r.run_id}: trace {r.trace_id} ({r.convention}): {r.spans} spans: {r.mapped} mapped, {r.raw} kept raw; "
                    f"{r.steps} steps, {r.calls} model calls, {r.tools} tool calls")
            if r.derived_tools:
                text += f" ({r.derived_tools} read from the tool messages of the next request)"
            if r.raw_keys:
                text += f"; {r.raw_keys} attributes kept raw on their events"
            if not r.content:
                text += "; no message content (capture was off): shown and diffed, not replayable"
            out.append(text)
        for s in self.skipped:
            out.append(f"skipped: {s}")
        out.append(f"imported {len(self.runs)} run{'s' if len(self.runs) != 1 else ''}"
                   + (f", skipped {len(self.skipped)}" if self.skipped else ""))
        return out


# -- classifying spans ------------------------------------------------------------------------------


def _oi_kind(span: Span) -> str:
    return str(span.attributes.get("openinference.span.kind", "")).upper()


def is_llm(span: Span, fmt: str) -> bool:
    a = span.attributes
    if _oi_kind(span) == "LLM":
        return True
    if fmt == "openinference":
        return False
    return a.get("gen_ai.operation.name") in LLM_OPERATIONS or (
        "gen_ai.operation.name" not in a and ("gen_ai.request.model" in a or "gen_ai.prompt" in a
                                             or any(k.startswith("gen_ai.prompt.") for k in a)))


def is_tool(span: Span, fmt: str) -> bool:
    return _oi_kind(span) == "TOOL" or (fmt != "openinference"
                                        and span.attributes.get("gen_ai.operation.name") == "execute_tool")


def _convention(spans: list[Span]) -> str:
    found = []
    if any(k.startswith("rolegraph.") for s in spans for k in s.attributes):
        return "rolegraph"
    if any("openinference.span.kind" in s.attributes for s in spans):
        found.append("openinference")
    if any(k.startswith("gen_ai.") for s in spans for k in s.attributes):
        found.append("gen_ai")
    return "+".join(found) or "unknown"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "_", text).strip("_")[:40] or "trace"


def _value(text: Any) -> Any:
    """A span's input.value/output.value as JSON, LangChain's serialized messages (`{"type": "ai",
    "data": {...}}`) as their fields, the form rolegraph's own runs record them in."""
    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            if set(v) == {"type", "data"} and isinstance(v["data"], dict) and v["data"].get("type") == v["type"]:
                return walk(v["data"])
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(loads(text))


def _raw_span(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {"span_id": span.span_id, "name": span.name, "kind": span.kind, "attributes": span.attributes}
    if span.events:
        out["events"] = [{"name": e.name, "ts": e.ts, "attributes": e.attributes} for e in span.events]
    if span.error:
        out["error"] = span.error
    return out


# -- one trace as one run ---------------------------------------------------------------------------


class _Trace:
    """The spans of one trace id, as a tree."""

    def __init__(self, spans: list[Span]) -> None:
        self.spans = sorted(spans, key=lambda s: (s.start, s.end))
        ids = {s.span_id for s in self.spans}
        self.children: dict[str, list[Span]] = defaultdict(list)
        tops = []
        for s in self.spans:
            if s.parent and s.parent in ids and s.parent != s.span_id:
                self.children[s.parent].append(s)
            else:
                tops.append(s)
        # one top span is the run's root; several (no common parent was exported) hang under none
        self.root: Span | None = tops[0] if len(tops) == 1 else None
        self.tops = self.children[self.root.span_id] if self.root else tops

    def under(self, span: Span) -> list[Span]:
        out, todo = [], list(self.children.get(span.span_id, ()))
        while todo:
            s = todo.pop(0)
            out.append(s)
            todo[:0] = self.children.get(s.span_id, ())
        return out


class _Builder:
    """Turns one trace's spans into a run's events."""

    def __init__(self, spans: list[Span], fmt: str, source: str, wire: str) -> None:
        self.tree = _Trace(spans)
        self.fmt, self.source, self.wire = fmt, source, wire
        root = self.tree.root
        if root is not None and (is_llm(root, fmt) or is_tool(root, fmt)):  # a lone call: its own step
            self.tree.root, self.tree.tops = None, [root]
        self.trace_id = spans[0].trace_id
        self.events: list[Any] = []
        self.info = ImportedRun(run_id="", trace_id=self.trace_id, convention=_convention(spans), spans=len(spans))
        self.totals = Totals()

    def source_of(self, span: Span, used: set[str], inner: list[Span], events: list[int] | None = None) -> SpanSource:
        raw = {k: v for k, v in span.attributes.items() if k not in used}
        self.info.raw_keys += len(raw)
        kept_events = [e for i, e in enumerate(span.events) if events is None or i not in events]
        if kept_events:
            raw["span.events"] = [{"name": e.name, "ts": e.ts, "attributes": e.attributes} for e in kept_events]
        self.info.raw += len(inner)
        return SpanSource(span_id=span.span_id, name=span.name, raw=raw, inner=[_raw_span(s) for s in inner])

    def build(self) -> tuple[RunStarted, list[Any], RunFinished]:
        for step, top in enumerate(self.tree.tops):
            if is_llm(top, self.fmt) or is_tool(top, self.fmt):
                self._step(top, step, node="llm" if is_llm(top, self.fmt) else "tool", whole=[top])
            else:
                self._step(top, step, node=None, whole=self.tree.under(top))
        self._derive_tools()
        return self._started(), self.events, self._finished()

    def _step(self, span: Span, step: int, *, node: str | None, whole: list[Span]) -> None:
        a = span.attributes
        meta = loads(a.get("metadata"))
        meta = meta if isinstance(meta, dict) else {}
        # OpenInference's LangChain spans carry LangGraph's run metadata: the node and its LangGraph step
        name = node or str(meta.get(NODE) or a.get("gen_ai.agent.name") or span.name or "step")
        key = str(a.get("rolegraph.node_key") or f"{name}@{meta.get(STEP, step)}")
        # the calls in this step: the outermost LLM and TOOL spans under it (one nested in another,
        # e.g. an OpenInference LLM span around the openai client's own, is kept raw on the outer one)
        calls: list[tuple[Span, list[Span]]] = []
        claimed: set[str] = set()
        for s in whole:
            if s.span_id in claimed or not (is_llm(s, self.fmt) or is_tool(s, self.fmt)):
                continue
            inner = self.tree.under(s)
            claimed.update(x.span_id for x in inner)
            calls.append((s, inner))
        structure = [s for s in whole if s.span_id not in claimed and s is not span
                     and all(s is not c for c, _ in calls)]
        used = {k for k in a if k in _STEP_KEYS} | ({"metadata"} if meta else set())
        is_call = node is not None
        started = NodeStarted(node=name, path=[name], key=key, step=step, ts=span.start,
                              state=None if is_call else _value(a.get("input.value")),
                              source=None if is_call else self.source_of(span, used, structure))
        self.events.append(started)
        self.info.steps += 1
        self.totals.node_steps += 1
        if not is_call:
            self.info.mapped += 1
        model_index = tool_index = 0
        for s, inner in calls:
            if is_llm(s, self.fmt):
                self._model_call(s, inner, key, step, model_index)
                model_index += 1
            else:
                self._tool_call(s, inner, key, step, tool_index)
                tool_index += 1
        self.events.append(NodeFinished(node=name, key=key, step=step, ts=span.end, duration_s=max(0.0, span.end - span.start),
                                        delta=None if is_call else _value(a.get("output.value")), error=span.error))

    def _model_call(self, span: Span, inner: list[Span], key: str, step: int, index: int) -> None:
        request, response, used, used_events = model_call(span)
        a = span.attributes
        role = str(a.get("rolegraph.role") or request.model or "model")
        used.update(k for k in ("rolegraph.role", "rolegraph.agent", "rolegraph.attempt", "rolegraph.prompt",
                                "rolegraph.replayed") if k in a)
        if not has_content(request, response):
            self.info.content = False
        self.events.append(ModelCall(
            role=role, node_key=key, step=step, call_index=index, fingerprint=request.fingerprint, request=request,
            response=response, error=span.error, ts=span.end, agent=a.get("rolegraph.agent"),
            attempt=a.get("rolegraph.attempt"), prompt=a.get("rolegraph.prompt"),
            source=self.source_of(span, used, inner, used_events)))
        self.info.mapped += 1
        self.info.calls += 1
        if response is not None:
            self.totals.model_calls += 1
            self.totals.prompt_tokens += response.usage.prompt_tokens
            self.totals.completion_tokens += response.usage.completion_tokens

    def _tool_call(self, span: Span, inner: list[Span], key: str, step: int, index: int) -> None:
        name, value, output, used = tool_call(span)
        used.update(k for k in ("rolegraph.replayed",) if k in span.attributes)
        self.events.append(ToolInvocation(name=name, node_key=key, step=step, call_index=index, input=value,
                                          output=output, duration_s=max(0.0, span.end - span.start), error=span.error,
                                          ts=span.end, source=self.source_of(span, used, inner)))
        self.info.mapped += 1
        self.info.tools += 1
        self.totals.tool_calls += 1

    def _derive_tools(self) -> None:
        """Sources without tool spans (the openai client's instrumentation) still show each tool's
        answer: the tool message that answers a call in the next request. Those become tool calls of a
        step of their own ("tools") after the step whose model asked for them."""
        if self.info.tools:
            return
        calls = [e for e in self.events if isinstance(e, ModelCall)]
        answers: dict[str, tuple[str, float]] = {}
        for c in calls:
            for m in c.request.messages:
                if m.role == "tool" and m.tool_call_id:
                    answers.setdefault(m.tool_call_id, (m.content or "", c.ts - c.latency_s))
        out: list[Any] = []
        step_shift = 0
        for e in self.events:
            if step_shift and isinstance(e, NodeStarted | NodeFinished | ModelCall | ToolInvocation):
                e.step = (e.step or 0) + step_shift
            out.append(e)
            if not (isinstance(e, NodeFinished)):
                continue
            asked = [t for c in calls if c.node_key == e.key and c.response for t in c.response.tool_calls
                     if t.id in answers]
            if not asked:
                continue
            step = e.step + 1
            key = f"tools@{step}"
            end = max(answers[t.id][1] for t in asked)
            out.append(NodeStarted(node="tools", path=["tools"], key=key, step=step, ts=e.ts))
            for i, t in enumerate(asked):
                out.append(ToolInvocation(name=t.name, node_key=key, step=step, call_index=i, input=loads(t.arguments),
                                          output=answers[t.id][0], ts=end))
                self.info.derived_tools += 1
                self.totals.tool_calls += 1
            out.append(NodeFinished(node="tools", key=key, step=step, ts=end, duration_s=max(0.0, end - e.ts)))
            self.info.steps += 1
            self.totals.node_steps += 1
            step_shift += 1
        self.events = out

    def _root_name(self) -> str:
        root = self.tree.root
        first = self.tree.spans[0]
        service = str(first.resource.get("service.name", ""))
        if root is not None and root.attributes.get("rolegraph.graph"):
            return str(root.attributes["rolegraph.graph"])
        if root is not None and not (is_llm(root, self.fmt) or is_tool(root, self.fmt)):
            return root.name
        return service if service and not service.startswith("unknown_service") else "trace"

    def _input(self) -> Any:
        root = self.tree.root
        if root is not None and "input.value" in root.attributes:
            return _value(root.attributes["input.value"])
        first = next((e for e in self.events if isinstance(e, ModelCall)), None)
        if first is None:
            return None
        # the conversation the first call was given, up to its first answer: what a chat app starts from
        messages = []
        for m in first.request.messages:
            if m.role == "assistant":
                break
            if m.role != "system":
                messages.append({"role": m.role, "content": m.content or ""})
        return {"messages": messages}

    def _started(self) -> RunStarted:
        root, first = self.tree.root, self.tree.spans[0]
        start = min(s.start for s in self.tree.spans)
        name = self._root_name()
        self.info.run_id = (f"{IMPORTED}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime(start))}-{_slug(name)}-"
                            f"{self.trace_id[:16]}")
        tags = {IMPORTED: self.wire, "source": self.source, "trace_id": self.trace_id,
                "convention": self.info.convention, "content": "yes" if self.info.content else "no"}
        manifest = Manifest(graph=_slug(name), input=self._input(), tags=tags, mermaid=_drawing(self.events))
        source = None
        if root is not None and not (is_llm(root, self.fmt) or is_tool(root, self.fmt)):
            used = {k for k in root.attributes if k in _STEP_KEYS or k in ("rolegraph.run_id", "rolegraph.graph",
                                                                           "rolegraph.status")}
            source = self.source_of(root, used, [])
            self.info.mapped += 1
        raw_resource = {f"resource.{k}": v for k, v in first.resource.items()}
        if source is None:
            source = SpanSource(span_id="", name="", raw=raw_resource)
        else:
            source.raw.update(raw_resource)
        return RunStarted(run_id=self.info.run_id, manifest=manifest, ts=start, source=source)

    def _finished(self) -> RunFinished:
        root = self.tree.root
        end = max(s.end for s in self.tree.spans)
        start = min(s.start for s in self.tree.spans)
        self.totals.duration_s = max(0.0, end - start)
        output: Any = None
        if root is not None and "output.value" in root.attributes:
            output = _value(root.attributes["output.value"])
        else:
            last = next((e for e in reversed(self.events) if isinstance(e, ModelCall) and e.response), None)
            output = last.response.text if last is not None and last.response is not None else None
        failed = any(s.error for s in ([root] if root else self.tree.tops))
        return RunFinished(status="error" if failed else "ok", output=output, totals=self.totals, ts=end)


def import_traces(path: str | Path, store: TraceStore, fmt: str = "auto") -> ImportReport:
    """Import every trace in an OTLP export (a file or a folder of files) as runs in `store`."""
    read, files = read_export(path, "auto" if fmt == "openinference" else fmt)
    report = ImportReport(files=files, skipped=list(read.skipped))
    if not read.spans:
        raise UserError(f"{path}: no spans in the export" + (f" ({len(read.skipped)} skipped: {read.skipped[0]})"
                                                             if read.skipped else ""))
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for s in read.spans:
        by_trace[s.trace_id].append(s)
    wires = {str(f): w for f, w in files}
    unmapped: list[str] = []
    for trace_id, spans in by_trace.items():
        file = spans[0].where.rpartition(":")[0]
        builder = _Builder(spans, fmt, file, wires.get(file, "otlp-json"))
        try:
            started, events, finished = builder.build()
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:  # a span unlike its convention
            unmapped.append(f"trace {trace_id} ({file}): its spans could not be mapped ({type(exc).__name__}: {exc}); "
                            "nothing of it was imported")
            continue
        run_id = builder.info.run_id
        if (store.root / run_id / "events.jsonl").exists():
            report.skipped.append(f"trace {trace_id}: imported before, as run {run_id}")
            continue
        writer = store.writer(run_id)
        try:
            writer.write(started)
            for e in events:
                if isinstance(e, ToolInvocation):
                    e.input, e.output = writer.payload(e.input), writer.payload(e.output)
                writer.write(e)
            writer.write(finished)
        finally:
            writer.close()
        report.runs.append(builder.info)
    report.skipped += unmapped
    if unmapped and not report.runs:
        raise UserError(f"{path}: no trace could be imported ({len(unmapped)} not mapped; the first: {unmapped[0]})")
    return report


def imported(started: RunStarted) -> str | None:
    """Where an imported run came from, in a few words (None for a run recorded here)."""
    tags = started.manifest.tags
    if IMPORTED not in tags:
        return None
    return f"imported from {tags[IMPORTED]} {tags.get('source', '')} (trace {tags.get('trace_id', '?')})"


def _drawing(events: list[Any]) -> str:
    """The graph as far as the trace shows it: its top-level steps' nodes and the moves between them
    that the run made (a drawing for the run's page; an imported trace carries no graph of its own)."""
    order = [e.node for e in events if isinstance(e, NodeStarted) and len(e.path) <= 1]
    if not order:
        return ""
    ids: dict[str, str] = {}
    for node in order:
        ids.setdefault(node, f"n{len(ids)}")
    lines = ["graph TD;", "  %% the moves the recorded run made", "  start([__start__]):::first", "  stop([__end__]):::last"]
    lines += [f'  {ids[n]}["{_label(n)}"]' for n in ids]
    moves = dict.fromkeys(zip(["start", *(ids[n] for n in order)], [*(ids[n] for n in order), "stop"], strict=True))
    lines += [f"  {a} --> {b};" for a, b in moves]
    return "\n".join(lines)


def _label(name: str) -> str:
    """A node's name as a drawing's label: letters, digits and a little punctuation (it comes from a file)."""
    return re.sub(r"[^\w .:/-]", "_", name)[:60] or "_"

