"""Terminal views of traces: the run list, one run's steps and calls, and where two runs diverge."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from rolegraph.traces._events import AgentRetry, ErrorEvent, ModelCall, NodeFinished, NodeStarted, ToolInvocation
from rolegraph.traces._replay import request_lines
from rolegraph.traces._store import RunInfo
from rolegraph.traces._trace import Trace


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%m-%d %H:%M:%S") if ts else "-"


def runs_table(runs: Iterable[RunInfo], width: int = 200) -> Table:
    """The run list; on a narrow terminal the parent and input columns are left out."""
    runs = list(runs)
    wide = width >= 130
    parents = wide and any(r.parent for r in runs)
    table = Table(title="recorded runs", title_justify="left")
    table.add_column("run", no_wrap=True)
    for col in ("status", "calls", "tokens", "started"):
        table.add_column(col, no_wrap=True, justify="right" if col in ("calls", "tokens") else "left")
    if parents:
        table.add_column("parent", no_wrap=True)
    if wide:
        table.add_column("input", no_wrap=True, overflow="ellipsis")
    for r in runs:
        colour = {"ok": "green", "error": "red", "incomplete": "yellow"}.get(r.status, "")
        row = [r.run_id, f"[{colour}]{r.status}[/]" if colour else r.status, str(r.model_calls), str(r.tokens),
               _when(r.started)]
        row += [r.parent or ""] if parents else []
        row += [r.summary[:60]] if wide else []
        table.add_row(*row)
    return table


@dataclass
class StepSummary:
    step: int
    node: str
    key: str
    duration_s: float = 0.0
    calls: list[ModelCall] = field(default_factory=list)
    tools: list[ToolInvocation] = field(default_factory=list)
    retries: int = 0
    error: str | None = None
    delta: Any = None
    state: Any = None
    end_ts: float = 0.0


def steps(trace: Trace) -> list[StepSummary]:
    by_key: dict[str, StepSummary] = {}
    order: list[StepSummary] = []
    for e in trace:
        if isinstance(e, NodeStarted):
            s = StepSummary(e.step, e.node, e.key, state=e.state)
            by_key[e.key] = s
            order.append(s)
        elif isinstance(e, NodeFinished) and e.key in by_key:
            s = by_key[e.key]
            s.duration_s, s.error, s.delta, s.end_ts = e.duration_s, e.error, e.delta, e.ts
        elif isinstance(e, ModelCall) and e.node_key in by_key:
            by_key[e.node_key].calls.append(e)
        elif isinstance(e, ToolInvocation) and e.node_key in by_key:
            by_key[e.node_key].tools.append(e)
        elif isinstance(e, AgentRetry) and e.node_key in by_key:
            by_key[e.node_key].retries += 1
    return order


def _preview(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def show(trace: Trace, console: Console, *, step: int | None = None, calls: bool = False) -> None:
    started = trace.started
    m = started.manifest
    head = Text.assemble((f"{trace.run_id}", "bold"), f"  graph {m.graph}  status ",
                         (trace.status, {"ok": "green", "error": "red"}.get(trace.status, "yellow")))
    if started.parent:
        head.append(f"  forked from {started.parent.run_id}"
                    + (f" at step {started.parent.live_from}"
                       + (f", call {started.parent.live_from_call}" if started.parent.live_from_call else "")
                       if started.parent.live_from is not None else " (replay)"))
    console.print(head)
    if trace.finished:
        t = trace.finished.totals
        console.print(f"{t.node_steps} steps, {t.model_calls} model calls ({t.replayed_calls} replayed), "
                      f"{t.prompt_tokens}+{t.completion_tokens} tokens, {t.retries} retries, {t.duration_s:.2f} s")
    items = steps(trace)
    if step is not None:
        match = [s for s in items if s.step == step]
        if not match:
            console.print(f"[red]no step {step}[/] (steps 0..{len(items) - 1})")
            return
        _show_step(match[0], console)
        return
    table = Table(title_justify="left")
    if calls:
        for col in ("step", "node", "role", "agent", "try", "tokens", "latency", "", "output / error"):
            table.add_column(col, justify="right" if col in ("step", "try", "tokens", "latency") else "left")
        for s in items:
            for c in s.calls:
                out = f"[red]{c.error}[/]" if c.error else _preview(c.parsed if c.parsed is not None else
                                                                    (c.response.text if c.response else ""))
                table.add_row(str(s.step), s.node, c.role, c.agent or "", str(c.attempt or 0),
                              f"{c.usage.prompt_tokens}+{c.usage.completion_tokens}",
                              f"{c.latency_s * 1000:.0f} ms", "replayed" if c.replayed else "", out)
    else:
        for col in ("step", "node", "roles", "calls", "tokens", "latency", "retries", "error"):
            table.add_column(col, justify="right" if col in ("step", "calls", "tokens", "latency", "retries") else "left")
        for s in items:
            tokens = sum(c.usage.total_tokens for c in s.calls)
            table.add_row(str(s.step), s.node, ", ".join(sorted({c.role for c in s.calls})), str(len(s.calls)),
                          str(tokens), f"{s.duration_s * 1000:.0f} ms", str(s.retries) if s.retries else "",
                          f"[red]{s.error}[/]" if s.error else "")
    console.print(table)
    for e in trace.of_kind(ErrorEvent):
        console.print(f"[red]error[/] {e.type}: {e.message}")
    if not trace.complete:
        console.print("[yellow]incomplete: the run stopped before it finished"
                      + (" (its last line was cut off)" if trace.dropped_tail else "") + "[/]")


def _show_step(s: StepSummary, console: Console) -> None:
    console.print(f"[bold]step {s.step}[/]: {s.node} ({s.key}), {s.duration_s * 1000:.0f} ms")
    console.print(Panel(_preview(s.delta, 2000), title="state update", title_align="left"))
    for c in s.calls:
        body = "\n".join(request_lines(c.request))
        answer = c.response.text if c.response else f"(no response) {c.error}"
        console.print(Panel(Group(Text(body), Text("— answer —", style="bold"), Text(answer)),
                            title=f"call {c.call_index}: {c.role} / {c.agent} attempt {c.attempt}"
                                  + (" [replayed]" if c.replayed else ""),
                            subtitle=f"{c.usage.prompt_tokens}+{c.usage.completion_tokens} tokens, "
                                     f"{c.latency_s * 1000:.0f} ms" + (f", error: {c.error}" if c.error else ""),
                            title_align="left"))
