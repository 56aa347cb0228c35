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

from rolegraph.traces._events import (
    AgentRetry,
    ErrorEvent,
    HumanInput,
    ModelCall,
    NodeFinished,
    NodeStarted,
    PendingInterrupt,
    ToolInvocation,
)
from rolegraph.traces._import import imported
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
        colour = {"ok": "green", "error": "red", "incomplete": "yellow", "interrupted": "magenta"}.get(r.status, "")
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
    interrupts: list[PendingInterrupt] = field(default_factory=list)
    """The questions the step stopped at (`interrupt()`), while they wait for an answer."""
    answers: list[HumanInput] = field(default_factory=list)
    """The answers its questions were given, in order."""
    handoff: list[str] | None = None
    """Where the step handed control (a supervisor's or swarm's handoff), if it ended so."""


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
            s.interrupts = list(e.interrupts)
            s.handoff = e.handoff
        elif isinstance(e, ModelCall) and e.node_key in by_key:
            by_key[e.node_key].calls.append(e)
        elif isinstance(e, ToolInvocation) and e.node_key in by_key:
            by_key[e.node_key].tools.append(e)
        elif isinstance(e, AgentRetry) and e.node_key in by_key:
            by_key[e.node_key].retries += 1
    for e in trace:  # an answer is given before its node runs again (the step's final execution)
        if isinstance(e, HumanInput) and e.interrupt.node_key in by_key:
            by_key[e.interrupt.node_key].answers.append(e)
    return order


def answer_text(call: ModelCall) -> str:
    """A call's answer as every view shows it: its text, then each tool call it asked for as
    `→ name(arguments)` (a handoff decision is such a call); an unanswered call's error."""
    if call.response is None:
        return f"(no response) {call.error}"
    calls = [f"→ {c.name}({c.arguments})" for c in call.response.tool_calls]
    return "\n".join([call.response.text, *calls] if call.response.text else calls)


def tool_line(t: ToolInvocation) -> str:
    """A recorded tool call on one line: `name(input) → output` (or its error)."""
    result = f"error: {t.error}" if t.error else json.dumps(t.output, default=str, ensure_ascii=False)
    return f"{t.name}({json.dumps(t.input, default=str, ensure_ascii=False)}) → {result}"


def _preview(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def show(trace: Trace, console: Console, *, step: int | None = None, calls: bool = False) -> None:
    started = trace.started
    m = started.manifest
    head = Text.assemble((f"{trace.run_id}", "bold"), f"  graph {m.graph}  status ",
                         (trace.status, {"ok": "green", "error": "red", "interrupted": "magenta"}.get(trace.status, "yellow")))
    if started.parent:
        head.append(f"  forked from {started.parent.run_id}"
                    + (f" at step {started.parent.live_from}"
                       + (f", call {started.parent.live_from_call}" if started.parent.live_from_call else "")
                       if started.parent.live_from is not None else " (replay)"))
    console.print(head)
    origin = imported(started)
    if origin is not None:
        console.print(f"[cyan]{_esc(origin)}[/]", highlight=False, soft_wrap=True)
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
            events: list[ModelCall | ToolInvocation] = [*s.calls, *s.tools]
            for c in sorted(events, key=lambda e: e.seq):
                if isinstance(c, ToolInvocation):  # a recorded tool call, in its place among the model calls
                    line = _esc(_preview(tool_line(c), 120))
                    table.add_row(str(s.step), s.node, "tool", "", "", "", f"{c.duration_s * 1000:.0f} ms",
                                  "replayed" if c.replayed else "", f"[red]{line}[/]" if c.error else line)
                    continue
                out = f"[red]{c.error}[/]" if c.error else _esc(_preview(c.parsed if c.parsed is not None else
                                                                         (answer_text(c) if c.response else "")))
                table.add_row(str(s.step), s.node, c.role, c.agent or "", str(c.attempt or 0),
                              f"{c.usage.prompt_tokens}+{c.usage.completion_tokens}",
                              f"{c.latency_s * 1000:.0f} ms", "replayed" if c.replayed else "", out)
    else:
        handoffs = any(s.handoff is not None for s in items)  # a multi-agent run: where each agent handed to
        for col in ("step", "node", "roles", "calls", "tokens", "latency", "retries", *(["handoff"] if handoffs else []),
                    "error"):
            table.add_column(col, justify="right" if col in ("step", "calls", "tokens", "latency", "retries") else "left")
        for s in items:
            tokens = sum(c.usage.total_tokens for c in s.calls)
            handoff = [f"→ {', '.join(s.handoff)}" if s.handoff is not None else ""] if handoffs else []
            table.add_row(str(s.step), s.node, ", ".join(sorted({c.role for c in s.calls})), str(len(s.calls)),
                          str(tokens), f"{s.duration_s * 1000:.0f} ms", str(s.retries) if s.retries else "",
                          *handoff, f"[red]{s.error}[/]" if s.error else _human_cell(s))
    console.print(table)
    for e in trace.of_kind(ErrorEvent):
        console.print(f"[red]error[/] {e.type}: {e.message}")
    show_questions(trace, console)
    if not trace.complete:
        console.print("[yellow]incomplete: the run stopped before it finished"
                      + (" (its last line was cut off)" if trace.dropped_tail else "") + "[/]")


def _human_cell(s: StepSummary) -> str:
    """A step's questions in the step table: what it waits on, or the answers it was given."""
    if s.interrupts:
        return "[yellow]waits: " + "; ".join(_preview(q.value, 50) for q in s.interrupts) + "[/]"
    if s.answers:
        return "answered: " + "; ".join(_preview(a.answer, 50) for a in s.answers)
    return ""


def show_questions(trace: Trace, console: Console) -> None:
    """The questions an interrupted run waits on (id, step, what was asked) and how to answer them."""
    waiting = trace.interrupts
    if not waiting:
        return
    console.print(f"[yellow]waiting for human input[/]: {len(waiting)} question{'s' if len(waiting) > 1 else ''}")
    for q in waiting:
        where = f"step {q.step} ({q.node_key})" if q.step >= 0 else "(no traced node)"
        console.print(f"  {q.id}  {where}: {_preview(q.value, 200)}", highlight=False, soft_wrap=True)
    how = "JSON" if len(waiting) == 1 else "'{\"ID\": JSON, ...}'"
    console.print(f"answer with: rolegraph resume {trace.run_id} --answer {how}  (or --answer-file FILE)",
                  highlight=False, soft_wrap=True)


def _show_step(s: StepSummary, console: Console) -> None:
    console.print(f"[bold]step {s.step}[/]: {s.node} ({s.key}), {s.duration_s * 1000:.0f} ms")
    for q in s.interrupts:
        console.print(Panel(_preview(q.value, 2000), title=f"question {q.index} (interrupt {q.id}): waiting",
                            title_align="left"))
    for a in s.answers:
        console.print(Panel(Group(Text(_preview(a.interrupt.value, 2000)), Text("— answer —", style="bold"),
                                  Text(_preview(a.answer, 2000))),
                            title=f"question {a.interrupt.index}" + (" [replayed]" if a.replayed else ""),
                            title_align="left"))
    if s.handoff is not None:
        console.print(f"handed off to {', '.join(s.handoff)}", highlight=False)
    console.print(Panel(_preview(s.delta, 2000), title="state update" + (" (the handoff's)" if s.handoff else ""),
                        title_align="left"))
    for c in s.calls:
        body = "\n".join(request_lines(c.request))
        console.print(Panel(Group(Text(body), Text("— answer —", style="bold"), Text(answer_text(c))),
                            title=f"call {c.call_index}: {c.role}" + (f" / {c.agent} attempt {c.attempt}" if c.agent else "")
                                  + (" [replayed]" if c.replayed else ""),
                            subtitle=f"{c.usage.prompt_tokens}+{c.usage.completion_tokens} tokens, "
                                     f"{c.latency_s * 1000:.0f} ms" + (f", error: {c.error}" if c.error else ""),
                            title_align="left"))
    if s.tools:
        lines = [f"#{t.call_index} {_preview(tool_line(t), 400)}" + (" [replayed]" if t.replayed else "") for t in s.tools]
        console.print(Panel(Text("\n".join(lines)), title="tool calls", title_align="left"))


def _esc(text: str) -> str:
    return text.replace("[", r"\[")
