"""Reading OTLP trace exports into plain spans: JSON (the collector's file exporter, one
ExportTraceServiceRequest a line, or one document; hex or base64 ids) and protobuf (the bytes an SDK's
OTLP/HTTP exporter posts; needs the `otel` extra)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rolegraph.errors import UserError

Format = Literal["otlp-json", "otlp-proto", "openinference", "auto"]
FORMATS: tuple[str, ...] = ("otlp-json", "otlp-proto", "openinference", "auto")
_HEX = re.compile(r"[0-9a-fA-F]+")
_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_PROTO_SUFFIXES = (".pb", ".bin", ".protobuf", ".otlp")


@dataclass
class SpanEvent:
    name: str
    ts: float
    attributes: dict[str, Any]


@dataclass
class Span:
    """One span as read from an export, its attribute values decoded to Python values."""

    trace_id: str
    span_id: str
    parent: str
    name: str
    kind: str
    start: float
    end: float
    attributes: dict[str, Any]
    events: list[SpanEvent] = field(default_factory=list)
    error: str | None = None
    """The status message of a span whose status is ERROR ("error" when it gave none)."""
    resource: dict[str, Any] = field(default_factory=dict)
    scope: str = ""
    where: str = ""
    """`file:line` of the export record the span came from."""


@dataclass
class ReadResult:
    spans: list[Span] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """What was not read, each as `file:line: why`."""


def _hex_id(value: Any, size: int) -> str:
    """A trace or span id as lowercase hex: OTLP JSON writes hex, protobuf-to-JSON writes base64."""
    if not value:
        return ""
    text = str(value)
    if len(text) == size * 2 and _HEX.fullmatch(text):
        return text.lower()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"id {text!r} is neither hex nor base64") from None
    if len(raw) != size:
        raise ValueError(f"id {text!r} is {len(raw)} bytes, not {size}")
    return raw.hex()


def any_value(v: Any) -> Any:
    """An OTLP AnyValue as a Python value (a value that is no AnyValue: a scalar as it is, else its JSON)."""
    if not isinstance(v, dict):
        return v if v is None or isinstance(v, str | int | float | bool) else json.dumps(v)
    if "stringValue" in v:
        return v["stringValue"]
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "arrayValue" in v:
        return [any_value(x) for x in (v["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in v:
        return {kv.get("key", ""): any_value(kv.get("value")) for kv in (v["kvlistValue"] or {}).get("values", [])}
    if "bytesValue" in v:
        return v["bytesValue"]
    return None


def attributes(items: Any) -> dict[str, Any]:
    return {kv["key"]: any_value(kv.get("value")) for kv in items or () if isinstance(kv, dict) and "key" in kv}


def _kind(value: Any) -> str:
    if isinstance(value, int):
        return _KINDS.get(value, str(value))
    return str(value or "UNSPECIFIED").removeprefix("SPAN_KIND_")


def _error(status: Any) -> str | None:
    if not isinstance(status, dict):
        return None
    code = status.get("code")
    if code in (2, "STATUS_CODE_ERROR", "2"):
        return str(status.get("message") or "error")
    return None


def _seconds(nanos: Any) -> float:
    return int(nanos or 0) / 1e9


def spans_of(request: Any, where: str, out: ReadResult) -> None:
    """The spans of one ExportTraceServiceRequest (as JSON) into `out`; a span that cannot be read is
    skipped, saying why."""
    if not isinstance(request, dict) or "resourceSpans" not in request:
        keys = ", ".join(sorted(request)[:5]) if isinstance(request, dict) else type(request).__name__
        raise UserError(f"{where}: not an OTLP trace export (an ExportTraceServiceRequest has `resourceSpans`; "
                        f"this has {keys or 'nothing'}). Export traces, not logs or metrics, with the collector's "
                        "file exporter or an SDK's OTLP exporter")
    for rs in request.get("resourceSpans") or ():
        resource = attributes((rs.get("resource") or {}).get("attributes"))
        for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or ():
            scope = str((ss.get("scope") or ss.get("instrumentationLibrary") or {}).get("name", ""))
            for i, s in enumerate(ss.get("spans") or ()):
                try:
                    span = Span(
                        trace_id=_hex_id(s.get("traceId"), 16), span_id=_hex_id(s.get("spanId"), 8),
                        parent=_hex_id(s.get("parentSpanId"), 8), name=str(s.get("name", "")), kind=_kind(s.get("kind")),
                        start=_seconds(s.get("startTimeUnixNano")), end=_seconds(s.get("endTimeUnixNano")),
                        attributes=attributes(s.get("attributes")),
                        events=[SpanEvent(str(e.get("name", "")), _seconds(e.get("timeUnixNano")),
                                          attributes(e.get("attributes"))) for e in s.get("events") or ()],
                        error=_error(s.get("status")), resource=resource, scope=scope, where=where)
                except (ValueError, TypeError, AttributeError) as exc:
                    out.skipped.append(f"{where}: span {i} of scope '{scope}': {exc}")
                    continue
                if not span.trace_id or not span.span_id:
                    out.skipped.append(f"{where}: span {i} ('{span.name}') of scope '{scope}': no trace or span id")
                    continue
                out.spans.append(span)


def _read_json(path: Path, out: ReadResult) -> None:
    data = path.read_bytes()
    try:
        whole = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        whole = None
    else:
        spans_of(whole, f"{path}:1", out)
        return
    lines = data.split(b"\n")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            why = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
            if n == len(lines) and not data.endswith(b"\n"):  # the writer stopped mid-line
                out.skipped.append(f"{path}:{n}: the last line is cut off ({why}); its spans were not read")
                continue
            raise UserError(f"{path}:{n}: not OTLP JSON ({why}). Each line of a collector file export is one "
                            "ExportTraceServiceRequest; fix or remove this line and import again") from None
        spans_of(request, f"{path}:{n}", out)


def _read_proto(path: Path, out: ReadResult) -> None:
    try:
        from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped]
        from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    except ImportError:
        raise UserError(f"{path}: reading OTLP protobuf needs opentelemetry-proto: pip install 'rolegraph[otel]' "
                        "(or export OTLP JSON, which needs nothing more)") from None
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(path.read_bytes())
    except DecodeError as exc:
        raise UserError(f"{path}: not an OTLP protobuf ExportTraceServiceRequest ({exc}); give --format otlp-json "
                        "for a JSON export") from None
    spans_of(MessageToDict(request), f"{path}:1", out)


def _files(path: Path) -> Iterator[Path]:
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not found:
            raise UserError(f"{path} holds no files to import")
        yield from found
    elif path.is_file():
        yield path
    else:
        raise UserError(f"no such file or folder: {path}")


def wire_format(path: Path, fmt: str) -> str:
    """`otlp-json` or `otlp-proto` for one file: as given, else by its suffix, else by its first byte."""
    if fmt == "otlp-json" or fmt == "otlp-proto":
        return fmt
    if path.suffix.lower() in (".json", ".jsonl", ".ndjson"):
        return "otlp-json"
    if path.suffix.lower() in _PROTO_SUFFIXES:
        return "otlp-proto"
    with open(path, "rb") as fh:
        head = fh.read(64).lstrip()
    return "otlp-json" if head[:1] in (b"{", b"[") else "otlp-proto"


def read_export(path: str | Path, fmt: str = "auto") -> tuple[ReadResult, list[tuple[Path, str]]]:
    """Every span in a file or a folder of files, and each file with the wire format it was read as."""
    if fmt not in FORMATS:
        raise UserError(f"unknown import format '{fmt}'; one of: {', '.join(FORMATS)}")
    out = ReadResult()
    files: list[tuple[Path, str]] = []
    for file in _files(Path(path)):
        wire = wire_format(file, fmt)
        files.append((file, wire))
        (_read_json if wire == "otlp-json" else _read_proto)(file, out)
    return out, files
