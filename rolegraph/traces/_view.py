"""`rolegraph trace view`: one HTML page per run — the graph (mermaid), a timeline of steps and model
calls, and every call's messages and output. A page is self-contained (mermaid inlined, ~3.4 MB) unless
it is one of many in a folder (an eval report): then it points at one shared copy of the script."""

from __future__ import annotations

import json
import os
import shutil
import urllib.parse
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from rolegraph.traces._import import imported
from rolegraph.traces._redact import Redactor
from rolegraph.traces._show import StepSummary, answer_text, steps, tool_line
from rolegraph.traces._trace import Trace

ASSETS = Path(__file__).parent / "assets"
SHARED_ASSETS = ("mermaid.min.js", "mermaid.LICENSE", "view.css")


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ASSETS)), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    return env.get_template("view.html.j2")


@lru_cache(maxsize=1)
def _css() -> str:
    return (ASSETS / "view.css").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _mermaid_js() -> str:
    # a literal "</script" inside the inlined library would end the tag early
    return (ASSETS / "mermaid.min.js").read_text(encoding="utf-8").replace("</script", "<\\/script")


def _pretty(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, default=str)


def write_assets(directory: str | Path) -> Path:
    """Copy the viewer's script, its licence and its stylesheet into `directory` unless a copy of the
    same size is there; returns the folder. Pages written with `write_view(..., assets=directory)` use it."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    for name in SHARED_ASSETS:
        source, target = ASSETS / name, folder / name
        if not target.exists() or target.stat().st_size != source.stat().st_size:
            shutil.copyfile(source, target)
    return folder


def render_view(trace: Trace, *, assets_url: str | None = None, app: Mapping[str, Any] | None = None) -> str:
    """The page's HTML: self-contained, or, with `assets_url` (the URL of a `write_assets` folder,
    usually relative, ending in "/"), loading the script and stylesheet from there.

    `app` adds what a page served by `rolegraph ui` shows beside the trace: `nav` (label -> URL),
    `fork_url` (where a step's fork form posts), `fork_roles` (role -> its current prompt source or
    None), `live` (which live models a fork calls) and `compare_url` (the run beside its parent);
    `status` (the run's status as the run list shows it: "running" while its writer lives) and
    `live_url` (while it runs, what the page polls to update its steps in place, without a reload)."""
    started = trace.started
    items = steps(trace)
    t0 = started.ts
    end = max([t0] + [e.ts for e in trace.events])
    span = max(end - t0, 1e-6)
    step_rows: list[dict[str, Any]] = []
    for s in items:
        node_start = (s.end_ts or end) - s.duration_s
        calls = []
        for c in s.calls:
            c_start = c.ts - c.latency_s
            calls.append(dict(
                index=c.call_index, role=c.role, agent=c.agent, attempt=c.attempt, replayed=c.replayed,
                error=c.error, prompt=c.prompt, latency=c.latency_s,
                prompt_tokens=c.usage.prompt_tokens, completion_tokens=c.usage.completion_tokens,
                left=round(100 * (c_start - t0) / span, 3), width=round(100 * c.latency_s / span, 3),
                messages=[dict(role=m.role, content=m.content or "".join(
                    f"{tc.name}({tc.arguments})" for tc in m.tool_calls)) for m in c.request.messages],
                answer=answer_text(c) if c.response else "",
                tool_calls=[dict(name=tc.name, arguments=tc.arguments) for tc in c.response.tool_calls]
                if c.response else [],
                parsed=None if c.parsed is None else _pretty(c.parsed),
            ))
        step_rows.append(dict(step=s.step, node=s.node, key=s.key, duration=s.duration_s, error=s.error,
                              left=round(100 * (node_start - t0) / span, 3),
                              width=round(100 * s.duration_s / span, 3), calls=calls, delta=_pretty(s.delta),
                              **_step_extras(s), **_step_questions(s), ended=bool(s.end_ts)))
    totals = trace.finished.totals if trace.finished else None
    calls_all = [c for s in step_rows for c in s["calls"]]
    parent = ""
    if started.parent:
        parent = f"forked from {started.parent.run_id}" + (
            f" at step {started.parent.live_from}" + (f", call {started.parent.live_from_call}"
                                                       if started.parent.live_from_call else "")
            if started.parent.live_from is not None else " (offline replay)")
    parent = parent or imported(started) or ""  # an imported run says where it came from in the same place
    manifest = started.manifest.model_dump(mode="json", exclude={"mermaid"})
    return _template().render(
        run_id=trace.run_id, graph=started.manifest.graph, status=(app or {}).get("status") or trace.status,
        parent=parent,
        steps=step_rows, n_calls=len(calls_all), n_replayed=sum(1 for c in calls_all if c["replayed"]),
        prompt_tokens=sum(c["prompt_tokens"] for c in calls_all),
        completion_tokens=sum(c["completion_tokens"] for c in calls_all),
        n_retries=totals.retries if totals else sum(1 for c in calls_all if c["error"]),
        duration=totals.duration_s if totals else span, mermaid=started.manifest.mermaid or "graph TD;\n  run",
        manifest_json=_pretty(manifest), output=_pretty(trace.finished.output) if trace.finished else "",
        mermaid_js="" if assets_url else _mermaid_js(), css="" if assets_url else _css(),
        assets_url=assets_url or "", app=dict(app) if app else None,
        questions=[dict(id=q.id, step=q.step, node=q.node, key=q.node_key, value=_pretty(q.value))
                   for q in trace.interrupts],
    )


def _step_questions(s: StepSummary) -> dict[str, Any]:
    """The questions a step asked with `interrupt()`: those it waits on, and those answered (with the answer)."""
    return dict(asks=[_pretty(q.value) for q in s.interrupts],
                answers=[dict(question=_pretty(a.interrupt.value), answer=_pretty(a.answer), replayed=a.replayed)
                         for a in s.answers])


def _step_extras(s: StepSummary) -> dict[str, Any]:
    """What a step shows besides its model calls: where it handed control, and its recorded tool calls."""
    return dict(handoff=s.handoff, tools=[dict(index=t.call_index, name=t.name, line=tool_line(t), error=t.error,
                                               replayed=t.replayed, duration=t.duration_s) for t in s.tools])


def write_view(trace: Trace, path: str | Path | None = None, *, assets: str | Path | None = None,
               redactor: Redactor | None = None) -> Path:
    """Write the run's page (default `<run dir>/view.html`). Without `assets` the page is self-contained;
    with a folder, the script is written there once and the page refers to it by relative path, so a
    folder of pages costs a few KB each instead of 3.4 MB."""
    out = Path(path) if path else trace.dir / "view.html"
    url = None
    if assets is not None:
        folder = write_assets(assets)
        url = urllib.parse.quote(Path(os.path.relpath(folder.resolve(), out.parent.resolve())).as_posix()) + "/"
    # the trace was redacted when written; redact again with what this process knows (keys added since)
    out.write_text((redactor or Redactor())(render_view(trace, assets_url=url)), encoding="utf-8")
    return out
