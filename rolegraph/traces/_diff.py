"""Where two runs diverged: the first differing step or model call (request or response, side by
side), then a summary of how their final states differ."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from rolegraph.traces._events import ModelCall
from rolegraph.traces._replay import request_lines
from rolegraph.traces._show import steps
from rolegraph.traces._trace import Trace


@dataclass
class Divergence:
    step: int
    what: str
    """'node' (different node ran), 'calls' (different number of calls), 'request' or 'response'."""
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
    for x, y in zip(sa, sb, strict=False):
        if x.node != y.node:
            return Divergence(x.step, "node", f"step {x.step} ran '{x.node}' in A but '{y.node}' in B",
                              [x.node], [y.node])
        for cx, cy in zip(x.calls, y.calls, strict=False):
            if cx.fingerprint != cy.fingerprint:
                return Divergence(x.step, "request", f"step {x.step} ({x.node}) call {cx.call_index}: the requests differ",
                                  request_lines(cx.request), request_lines(cy.request))
            tx, ty = _answer(cx), _answer(cy)
            if tx != ty:
                return Divergence(x.step, "response", f"step {x.step} ({x.node}) call {cx.call_index}: same request, "
                                  "different answers", tx.splitlines(), ty.splitlines())
        if len(x.calls) != len(y.calls):
            return Divergence(x.step, "calls", f"step {x.step} ({x.node}) made {len(x.calls)} calls in A, "
                              f"{len(y.calls)} in B", [str(len(x.calls))], [str(len(y.calls))])
    if len(sa) != len(sb):
        n = min(len(sa), len(sb))
        return Divergence(n, "node", f"A ran {len(sa)} steps, B ran {len(sb)}",
                          [s.node for s in sa[n:]], [s.node for s in sb[n:]])
    return None


def _answer(c: ModelCall) -> str:
    return c.response.text if c.response else f"(error) {c.error}"


_MESSAGE_TYPES = frozenset({"human", "ai", "tool", "system", "chat", "function"})


def comparable(value: Any) -> Any:
    """A state value without the ids LangGraph's `add_messages` draws at random for chat messages
    (two runs that said the same things have the same messages)."""
    if isinstance(value, list):
        return [comparable(v) for v in value]
    if isinstance(value, dict):
        drop = value.get("type") in _MESSAGE_TYPES and "content" in value
        return {k: comparable(v) for k, v in value.items() if not (drop and k == "id")}
    return value


def state_differences(a: Trace, b: Trace) -> list[tuple[str, str, str]]:
    fa, fb = final_state(a), final_state(b)
    rows = []
    for key in sorted(set(fa) | set(fb)):
        va, vb = fa.get(key, "—"), fb.get(key, "—")
        if comparable(va) != comparable(vb):
            rows.append((key, json.dumps(va, default=str)[:300], json.dumps(vb, default=str)[:300]))
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


def _esc(text: str) -> str:
    return text.replace("[", r"\[")
