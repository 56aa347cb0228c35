"""Where two runs diverged: the first differing step or model call (request or response, side by
side), then a summary of how their final states differ."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from rolegraph.traces._events import ModelCall, ToolInvocation
from rolegraph.traces._import import IMPORTED
from rolegraph.traces._import_replay import same_as_imported
from rolegraph.traces._replay import request_lines, same_request
from rolegraph.traces._show import StepSummary, answer_text, steps, tool_line
from rolegraph.traces._trace import Trace


@dataclass
class Divergence:
    step: int
    what: str
    """'node' (different node ran), 'calls' (different number of calls), 'request', 'response' or
    'tool' (a recorded tool call's name, input or output) or 'answer' (a person's answer to a question
    the step asked, or the question itself)."""
    detail: str
    left: list[str]
    right: list[str]


def final_state(trace: Trace) -> dict[str, Any]:
    """The first node's input state with every node's update applied in order."""
    state: dict[str, Any] = {}
    items = steps(trace)
    if items and isinstance(items[0].state, dict):
        state = dict(items[0].state)
    for s in items:
        if isinstance(s.delta, dict):
            state.update(s.delta)
    return state


def first_divergence(a: Trace, b: Trace) -> Divergence | None:
    sa, sb = steps(a), steps(b)
    # a run imported from elsewhere is compared as its replay compares it (`same_as_imported`)
    loose = IMPORTED in a.started.manifest.tags or IMPORTED in b.started.manifest.tags
    for x, y in zip(sa, sb, strict=False):
        if x.node != y.node:
            return Divergence(x.step, "node", f"step {x.step} ran '{x.node}' in A but '{y.node}' in B",
                              [x.node], [y.node])
        for cx, cy in zip(x.calls, y.calls, strict=False):
            if not (same_as_imported(cx.request, cy.request) if loose else same_request(cx, cy)):
                return Divergence(x.step, "request", f"step {x.step} ({x.node}) call {cx.call_index}: the requests differ",
                                  request_lines(cx.request), request_lines(cy.request))
            tx, ty = _answer(cx), _answer(cy)
            if tx != ty:
                return Divergence(x.step, "response", f"step {x.step} ({x.node}) call {cx.call_index}: "
                                  + different_answers(a, b, cx, cy), tx.splitlines(), ty.splitlines())
        if len(x.calls) != len(y.calls):
            return Divergence(x.step, "calls", f"step {x.step} ({x.node}) made {len(x.calls)} calls in A, "
                              f"{len(y.calls)} in B", [str(len(x.calls))], [str(len(y.calls))])
        tools = _tool_divergence(x.step, x.node, x.tools, y.tools, loose=loose)
        if tools is not None:
            return tools
        human = _human_divergence(x, y)
        if human is not None:
            return human
    if len(sa) != len(sb):
        n = min(len(sa), len(sb))
        return Divergence(n, "node", f"A ran {len(sa)} steps, B ran {len(sb)}",
                          [s.node for s in sa[n:]], [s.node for s in sb[n:]])
    return None


def different_answers(a: Trace, b: Trace, cx: ModelCall, cy: ModelCall) -> str:
    """Why the same request got different answers in runs A and B, as far as the traces tell: a call
    that failed, a role played by another model or with other settings, a request sent with no seed
    (the server samples afresh), or a seeded request the server did not reproduce."""
    if cx.response is None or cy.response is None:
        failed = " and ".join(side for side, c in (("A", cx), ("B", cy)) if c.response is None)
        return f"same request, but the call failed in {failed}"
    ra, rb = _role(a, cx.role), _role(b, cy.role)
    if ra is not None and rb is not None and ra != rb:
        return (f"same request, different answers: role '{cx.role}' is played differently "
                f"(A: {_role_text(ra)}; B: {_role_text(rb)})")
    seed = cx.request.seed if cx.request.seed is not None else (ra or rb or {}).get("sampling", {}).get("seed")
    if seed is None:
        return "same request, different answers: the request carried no seed, so the server sampled afresh"
    if ra is None or rb is None:  # a replay's or fork's manifest does not say which model answered live
        return (f"same request, different answers: the seeded request (seed {seed}) was not reproduced (a fork's "
                "live part may run another model than the recorded run)")
    return f"same request, different answers: the server did not reproduce a seeded request (seed {seed})"


def _role(trace: Trace, role: str) -> dict[str, Any] | None:
    """The role's endpoint, model and sampling as the run's manifest recorded them (None if it did not,
    as a replay's or a fork's, whose roles are answered from a trace)."""
    info = trace.started.manifest.roles.get(role)
    if info is None or info.model == "ReplayModel" or trace.started.parent is not None:
        return None
    return info.model_dump(mode="json")


def _role_text(info: dict[str, Any] | None) -> str:
    if info is None:
        return "not recorded"
    parts = [f"{k} {info[k]}" for k in ("endpoint", "model") if info.get(k)]
    parts += [f"{k}={v}" for k, v in sorted(info.get("sampling", {}).items())]
    return ", ".join(parts) or "unknown"


def _answer(c: ModelCall) -> str:
    return answer_text(c) if c.response else f"(error) {c.error}"


def _tool_divergence(step: int, node: str, a: list[ToolInvocation], b: list[ToolInvocation], *,
                     loose: bool = False) -> Divergence | None:
    """`loose` (an imported run): a tool `langchain.T` is T, and an output is compared as text (a span
    holds a tool's answer as the text the model was given)."""
    def key(t: ToolInvocation) -> Any:
        if loose:
            out = t.output if isinstance(t.output, str) else json.dumps(t.output)
            return comparable((t.name.rpartition(".")[2], t.input, out, t.error))
        return comparable((t.name, t.input, t.output, t.error))

    la, lb = [tool_line(t) for t in a], [tool_line(t) for t in b]
    same = [key(t) for t in a] == [key(t) for t in b]
    if same:
        return None
    return Divergence(step, "tool", f"step {step} ({node}): its tool calls differ", la, lb)


def _human_divergence(x: StepSummary, y: StepSummary) -> Divergence | None:
    """Where the questions a step asked, or their answers, differ (interrupt ids aside: each run draws its own)."""
    def lines(s: StepSummary) -> list[str]:
        return [f"asked {json.dumps(a.interrupt.value, default=str)} → {json.dumps(a.answer, default=str)}"
                for a in s.answers] + [f"asked {json.dumps(q.value, default=str)} → (waiting)" for q in s.interrupts]

    def same(s: StepSummary) -> Any:
        return comparable([(a.interrupt.value, a.answer) for a in s.answers] + [(q.value,) for q in s.interrupts])

    if same(x) == same(y):
        return None
    return Divergence(x.step, "answer", f"step {x.step} ({x.node}): the questions it asked or their answers differ",
                      lines(x), lines(y))


_MESSAGE_TYPES = frozenset({"human", "ai", "tool", "system", "chat", "function"})
_TOOL_CALL_TYPES = frozenset({"tool_call", "invalid_tool_call", "tool_call_chunk", "function"})
_INTERRUPT_KEYS = frozenset({"value", "id", "response_schema", "node", "node_key", "step", "index"})
"""The fields of an interrupt: LangGraph's `Interrupt` as JSON, or a recorded `PendingInterrupt`."""


def comparable(value: Any) -> Any:
    """A state value without what is random by construction, as `ChatRequest.comparable` leaves it
    out of a request: the ids LangGraph's `add_messages` draws for chat messages and the ids of
    interrupts are dropped, and each tool-call id (drawn by a model, an app or a library's handoff)
    becomes `#n`, n counting the ids in the order they appear, so which message answers which call
    still counts. Two runs that said the same things compare equal."""
    ids: dict[str, str] = {}

    def placeholder(ident: Any) -> Any:
        return ids.setdefault(ident, f"#{len(ids)}") if isinstance(ident, str) else ident

    def walk(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [walk(x) for x in v]
        if not isinstance(v, dict):
            return v
        message = v.get("type") in _MESSAGE_TYPES and "content" in v
        interrupt = {"value", "id"} <= set(v) <= _INTERRUPT_KEYS
        call = v.get("type") in _TOOL_CALL_TYPES and "id" in v
        out = {}
        for k, x in v.items():
            if k == "id" and (message or interrupt):
                continue
            out[k] = placeholder(x) if (k == "id" and call) or k == "tool_call_id" else walk(x)
        return out

    return walk(value)


def differing_part(a: Any, b: Any, width: int = 300) -> tuple[str, str, str]:
    """Where two values first differ, as (path, A's part, B's part): the path descends through
    dicts and lists while both sides have the same shape there, so a long message list shows the
    message (and its field) that differs, not its first few hundred characters."""
    path = ""
    while True:
        if isinstance(a, dict) and isinstance(b, dict):
            keys = [k for k in dict.fromkeys([*a, *b]) if a.get(k, _MISSING) != b.get(k, _MISSING)]
            key = keys[0] if len(keys) == 1 else "content" if "content" in keys else None
            if key is None or key not in a or key not in b:
                break
            path, a, b = f"{path}.{key}", a[key], b[key]
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            diffs = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
            if len(diffs) != 1 and not (diffs and isinstance(a[diffs[0]], (dict, list))):
                break
            path, a, b = f"{path}[{diffs[0]}]", a[diffs[0]], b[diffs[0]]
        elif isinstance(a, list) and isinstance(b, list):
            n = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
            path = f"{path}[{n}:]"
            a, b = a[n:], b[n:]
            break
        else:
            break
    return path, _clip(a, width), _clip(b, width)


_MISSING = object()


def _clip(value: Any, width: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def state_differences(a: Trace, b: Trace) -> list[tuple[str, str, str]]:
    """The final-state fields that differ, as (field, A, B): for a long value, the part that
    differs (`messages[5].content`), compared without random ids."""
    fa, fb = final_state(a), final_state(b)
    rows = []
    for key in sorted(set(fa) | set(fb)):
        va, vb = comparable(fa.get(key, "—")), comparable(fb.get(key, "—"))
        if va != vb:
            path, pa, pb = differing_part(va, vb)
            rows.append((f"{key}{path}", pa, pb))
    return rows


def show_diff(a: Trace, b: Trace, console: Console) -> Divergence | None:
    console.print(f"A: {a.run_id} ({a.status})\nB: {b.run_id} ({b.status})")
    d = first_divergence(a, b)
    if d is None:
        console.print("[green]no divergence: the same steps, requests and answers[/]")
    else:
        console.print(f"[bold]first divergence[/] at step {d.step}: {d.detail}")
        table = Table(show_lines=False, expand=True)
        table.add_column("A", ratio=1, overflow="fold")
        table.add_column("B", ratio=1, overflow="fold")
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=d.left, b=d.right, autojunk=False).get_opcodes():
            left, right = d.left[i1:i2], d.right[j1:j2]
            if tag == "equal":
                if len(left) > 4:  # keep context short
                    left = [*left[:2], "…", *left[-2:]]
                    right = left
                style = "dim"
            else:
                style = "bold yellow"
            for k in range(max(len(left), len(right))):
                table.add_row(f"[{style}]{_esc(left[k]) if k < len(left) else ''}[/]",
                              f"[{style}]{_esc(right[k]) if k < len(right) else ''}[/]")
        console.print(table)
        _print_tools(a, b, d.step, console)
    rows = state_differences(a, b)
    if rows:
        table = Table(title="final state: fields that differ", title_justify="left", expand=True)
        table.add_column("field")
        table.add_column("A", overflow="fold")
        table.add_column("B", overflow="fold")
        for key, va, vb in rows:
            table.add_row(key, _esc(va), _esc(vb))
        console.print(table)
    elif d is not None:
        console.print("final states are equal")
    return d


def _print_tools(a: Trace, b: Trace, step: int, console: Console) -> None:
    """The recorded tool calls of step `step` in A and B, side by side."""
    ta = next((s.tools for s in steps(a) if s.step == step), [])
    tb = next((s.tools for s in steps(b) if s.step == step), [])
    if not ta and not tb:
        return
    table = Table(title=f"tool calls at step {step}", title_justify="left", expand=True)
    table.add_column("A", ratio=1, overflow="fold")
    table.add_column("B", ratio=1, overflow="fold")
    for k in range(max(len(ta), len(tb))):
        table.add_row(_esc(tool_line(ta[k])) if k < len(ta) else "", _esc(tool_line(tb[k])) if k < len(tb) else "")
    console.print(table)


def _esc(text: str) -> str:
    return text.replace("[", r"\[")
