"""`rolegraph trace ...` and `rolegraph replay`: list, show, diff, view and replay recorded runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from rolegraph.errors import UserError

trace_app = typer.Typer(no_args_is_help=True, help="Look at recorded runs.")
out = Console()

RunsDir = Annotated[Path | None, typer.Option("--runs", help="Trace directory (default: [traces] dir, 'runs').")]


def _store(runs: Path | None) -> object:
    from rolegraph.config import load_config
    from rolegraph.traces import TraceStore

    return TraceStore(runs if runs is not None else load_config().traces.dir)


@trace_app.command("list")
def list_runs(runs: RunsDir = None, graph: Annotated[str | None, typer.Option()] = None,
              status: Annotated[str | None, typer.Option(help="ok, error, running or incomplete")] = None,
              search: Annotated[str | None, typer.Option(help="Text to find in the runs' inputs.")] = None,
              limit: Annotated[int, typer.Option(min=1)] = 30) -> None:
    """Recorded runs, newest first."""
    from rolegraph.traces._show import runs_table

    store = _store(runs)
    found = store.list(graph=graph, status=status, search=search, limit=limit)  # type: ignore[attr-defined]
    if not found:
        out.print(f"no runs in {store.root}")  # type: ignore[attr-defined]
        return
    out.print(runs_table(found, out.width))


@trace_app.command("show")
def show_run(run: Annotated[str, typer.Argument(help="Run id, id prefix, 'last', or directory.")],
             runs: RunsDir = None, step: Annotated[int | None, typer.Option(help="Show one step in full.")] = None,
             calls: Annotated[bool, typer.Option("--calls", help="One row per model call.")] = False) -> None:
    """The steps of a run: roles, tokens, latency, retries, errors."""
    from rolegraph.traces._show import show

    show(_store(runs).load(run), out, step=step, calls=calls)  # type: ignore[attr-defined]


@trace_app.command("diff")
def diff_runs(a: str, b: str, runs: RunsDir = None) -> None:
    """Where two runs diverged, then how their final states differ."""
    from rolegraph.traces._diff import show_diff

    store = _store(runs)
    show_diff(store.load(a), store.load(b), out)  # type: ignore[attr-defined]


@trace_app.command("view")
def view_run(run: str, runs: RunsDir = None,
             output: Annotated[Path | None, typer.Option("--out", help="HTML file to write.")] = None) -> None:
    """Write a self-contained HTML page (graph + timeline + calls) and print its path."""
    from rolegraph.traces._view import write_view

    path = write_view(_store(runs).load(run), output)  # type: ignore[attr-defined]
    out.print(str(path.resolve()))


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for v in values:
        role, sep, value = v.partition("=")
        if not sep or not role or not value:
            raise UserError(f"{flag} wants ROLE=VALUE, not {v!r}")
        pairs[role] = value
    return pairs


def replay_command(
    run: Annotated[str, typer.Argument(help="Run id, id prefix, 'last', or directory.")],
    live_from: Annotated[int | None, typer.Option("--live-from", help="Call live models from this step on.")] = None,
    model: Annotated[list[str] | None, typer.Option("--model", help="ROLE=MODEL_NAME for the live part.")] = None,
    prompt: Annotated[list[str] | None, typer.Option("--prompt", help="ROLE=TEMPLATE_FILE for the live part.")] = None,
    runs: RunsDir = None,
    config: Annotated[Path | None, typer.Option(help="rolegraph.toml for the live models.")] = None,
) -> None:
    """Run a recorded run again offline from its trace; with --live-from, fork it."""
    from rolegraph.runtime import Runtime
    from rolegraph.traces._replay import replay_run

    store = _store(runs)
    trace = store.load(run)  # type: ignore[attr-defined]
    live = Runtime.load(config) if live_from is not None else None

    async def go() -> object:
        try:
            return await replay_run(trace, store=store, live=live, live_from=live_from,
                                    models=_pairs(model or [], "--model"), prompts=_pairs(prompt or [], "--prompt"))
        finally:
            if live is not None:
                await live.aclose()

    import asyncio

    try:
        result = asyncio.run(go())
    finally:
        if live is not None:
            live.close()
    new_id = getattr(result, "trace_id", None)
    new = store.load(new_id) if new_id else None  # type: ignore[attr-defined]
    totals = new.finished.totals if new and new.finished else None
    kind = "fork" if live_from is not None else "replay"
    out.print(f"{kind} of {trace.run_id}: {new_id}")
    if totals is not None:
        out.print(f"{totals.replayed_calls} calls answered from the trace, {totals.model_calls} live; "
                  f"status {new.status}")  # type: ignore[union-attr]
    if trace.finished is not None and new is not None and new.finished is not None and live_from is None:
        same = trace.finished.output == new.finished.output
        out.print("output: identical to the recorded run" if same else "[yellow]output differs from the recorded run[/]")


def resume_command(
    run: Annotated[str, typer.Argument(help="Run id, id prefix, 'last', or directory.")],
    runs: RunsDir = None,
    config: Annotated[Path | None, typer.Option(help="rolegraph.toml for the live models.")] = None,
) -> None:
    """Continue an interrupted run from its last checkpoint, without repeating finished calls."""
    import asyncio

    from rolegraph.runtime import Runtime
    from rolegraph.traces._replay import resume_run

    store = _store(runs)
    trace = store.load(run)  # type: ignore[attr-defined]
    live = Runtime.load(config)

    async def go() -> object:
        try:
            return await resume_run(trace, store=store, live=live)
        finally:
            await live.aclose()

    with live:
        asyncio.run(go())
    done = store.load(trace.run_id)  # type: ignore[attr-defined]
    totals = done.finished.totals if done.finished else None
    out.print(f"resumed {trace.run_id}: status {done.status}")
    if totals is not None:
        out.print(f"{totals.node_steps} steps in all; {totals.replayed_calls} calls answered from the trace, "
                  f"{totals.model_calls} made live")


@trace_app.command("export")
def export_run(run: str,
               otlp: Annotated[str, typer.Option("--otlp", help="A .json file, or an OTLP/HTTP endpoint like "
                                                               "http://127.0.0.1:4318")],
               runs: RunsDir = None) -> None:
    """OpenTelemetry spans (OpenInference / GenAI attributes) for Phoenix, Langfuse or Jaeger."""
    from rolegraph.traces._otlp import export

    out.print(export(_store(runs).load(run), otlp))  # type: ignore[attr-defined]


@trace_app.command("to-test")
def to_test(run: str, step: Annotated[int, typer.Option("--step", help="The step to turn into a test.")],
            output: Annotated[Path, typer.Option("--out", help="Test file or directory.")] = Path("tests/recorded"),
            runs: RunsDir = None) -> None:
    """Write a pytest case that replays one step from its recorded input state."""
    from rolegraph.traces._totest import write_test

    try:
        path = write_test(_store(runs).load(run), step, output)  # type: ignore[attr-defined]
    except ValueError as exc:
        raise UserError(str(exc)) from None
    out.print(str(path))
