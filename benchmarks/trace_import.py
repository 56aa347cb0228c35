"""Importing OpenTelemetry traces: speed, what is mapped, and the replay's live calls, per source.

Each source's trace is made by real instrumentation around the ReAct test app (two tool calls) and a
stub OpenAI-compatible server on 127.0.0.1 (the helpers of tests/unit/test_trace_import.py):

- `openai-v2`: opentelemetry-instrumentation-openai-v2 (content capture on), ChatOpenAI-style calls;
- `openinference`: openinference-instrumentation-langchain around the rolegraph-wrapped app;
- `rolegraph`: rolegraph's own OTLP export of a recorded run of the app.

Then, per source: the trace copied under fresh trace ids into one OTLP JSON export of about
`--spans` spans, imported into an empty store (spans per second, median of `--trials`); the share of
spans mapped onto events and kept raw; and one imported run replayed against the app with the
network cut (live model calls, tools run, stub requests: all must be 0).

    .venv/bin/python benchmarks/trace_import.py [--spans 10000] [--trials 3]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rolegraph.graphs import replay_imported
from rolegraph.traces import TraceStore, import_traces, load, to_otlp
from tests.conftest import serve_app
from tests.unit import trace_import_app
from tests.unit.test_trace_import import (
    QUESTION,
    Stub,
    collector_json,
    network_cut,
    run_openai_v2,
    run_openinference,
    runtime_for,
)


def sources(url: str, folder: Path) -> dict[str, dict[str, Any]]:
    """One OTLP JSON request per source, made by its instrumentation."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    out: dict[str, dict[str, Any]] = {}
    for name, produce in (("openai-v2", run_openai_v2), ("openinference", run_openinference)):
        exporter = InMemorySpanExporter()
        produce(url, exporter)
        path = collector_json(exporter.get_finished_spans(), folder / f"{name}.json")
        out[name] = json.loads(path.read_text())
    rt = runtime_for(url)
    rt.traces = TraceStore(folder / "recorded")
    with rt:
        run = rt.run_sync(trace_import_app.app.run({"messages": [{"role": "user", "content": QUESTION}]}, runtime=rt))
    out["rolegraph"] = to_otlp(load(str(run.run_id), str(folder / "recorded")))
    return out


def spans_in(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for rs in request["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]


def scaled(request: dict[str, Any], spans: int, path: Path) -> int:
    """`request` copied under fresh trace ids, one request a line, to about `spans` spans; how many."""
    per = len(spans_in(request))
    copies = max(1, spans // per)
    text = json.dumps(request)
    ids = {s["traceId"] for s in spans_in(request)}
    with path.open("w") as fh:
        for i in range(copies):
            line = text
            for tid in sorted(ids):
                line = line.replace(tid, hashlib.sha256(f"{tid}/{i}".encode()).hexdigest()[:32])
            fh.write(line + "\n")
    return copies * per


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=10_000)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    table = Table(title=f"trace import: about {args.spans:,} spans per source, median of {args.trials} trials")
    for col in ("source", "spans", "runs", "spans/s", "range", "mapped", "kept raw", "tools read from messages",
                "replay: live calls", "tools run", "stub requests"):
        table.add_column(col, justify="left" if col == "source" else "right")
    server = Stub()
    with serve_app(server.app) as port, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        made = sources(f"http://127.0.0.1:{port}/v1", folder)
        for name, request in made.items():
            export = folder / f"{name}-scaled.jsonl"
            total = scaled(request, args.spans, export)
            rates = []
            report = None
            for trial in range(args.trials):
                store = TraceStore(folder / f"store-{name}-{trial}")
                started = time.perf_counter()
                report = import_traces(export, store)
                rates.append(total / (time.perf_counter() - started))
            assert report is not None
            mapped = sum(r.mapped for r in report.runs)
            raw = sum(r.raw for r in report.runs)
            derived = sum(r.derived_tools for r in report.runs)
            trace = store.load(report.runs[0].run_id)
            trace_import_app.TOOLS_RUN.clear()
            asked = len(server.requests)
            with network_cut():
                done = asyncio.run(replay_imported(trace, trace_import_app.app, store=store))
            table.add_row(name, f"{total:,}", f"{len(report.runs):,}", f"{statistics.median(rates):,.0f}",
                          f"{min(rates):,.0f}-{max(rates):,.0f}", f"{mapped / total:.0%}", f"{raw / total:.0%}",
                          str(derived), str(done.live_calls), str(len(trace_import_app.TOOLS_RUN)),
                          str(len(server.requests) - asked))
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
