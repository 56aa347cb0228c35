"""`rolegraph trace ...`: list, show, diff, view, export and turn into tests recorded runs; import
OpenTelemetry traces as runs; rebuild the run index from the run folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from rolegraph._cli_options import RunsDirOpt
from rolegraph.errors import UserError

trace_app = typer.Typer(no_args_is_help=True, help="Look at recorded runs.")
out = Console()


def _store(runs: Path | None) -> object:
    from rolegraph.traces import TraceStore

    return TraceStore.configured(runs)


@trace_app.command("list")
def list_runs(runs: RunsDirOpt = None, graph: Annotated[str | None, typer.Option()] = None,
              status: Annotated[str | None, typer.Option(help="ok, error, interrupted, running or incomplete")] = None,
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
             runs: RunsDirOpt = None, step: Annotated[int | None, typer.Option(help="Show one step in full.")] = None,
             calls: Annotated[bool, typer.Option("--calls", help="One row per model call.")] = False) -> None:
    """The steps of a run: roles, tokens, latency, retries, errors."""
    from rolegraph.traces._show import show

    trace = _store(runs).load(run)  # type: ignore[attr-defined]
    show(trace, out, step=step, calls=calls)
    if trace.damaged:
        n = len(trace.damaged)
        out.print(f"[yellow]damaged: {n} line{'s' if n > 1 else ''} of the log {'are' if n > 1 else 'is'} no event, "
                  "skipped (the events after it are shown):[/]", highlight=False)
        for where in trace.damaged[:20]:
            out.print(f"  {where}", highlight=False, soft_wrap=True)
        if len(trace.damaged) > 20:
            out.print(f"  ... and {len(trace.damaged) - 20} more", highlight=False)


@trace_app.command("diff")
def diff_runs(a: str, b: str, runs: RunsDirOpt = None) -> None:
    """Where two runs diverged, then how their final states differ."""
    from rolegraph.traces._diff import show_diff

    store = _store(runs)
    show_diff(store.load(a), store.load(b), out)  # type: ignore[attr-defined]


@trace_app.command("view")
def view_run(run: str, runs: RunsDirOpt = None,
             output: Annotated[Path | None, typer.Option("--out", help="HTML file to write.")] = None) -> None:
    """Write a self-contained HTML page (graph + timeline + calls) and print its path."""
    from rolegraph.traces._view import write_view

    path = write_view(_store(runs).load(run), output)  # type: ignore[attr-defined]
    out.print(str(path.resolve()))


@trace_app.command("export")
def export_run(run: str,
               otlp: Annotated[str, typer.Option("--otlp", help="A .json file, or an OTLP/HTTP endpoint like "
                                                               "http://127.0.0.1:4318")],
               runs: RunsDirOpt = None) -> None:
    """OpenTelemetry spans (OpenInference / GenAI attributes) for Phoenix, Langfuse or Jaeger."""
    from rolegraph.traces._otlp import export

    out.print(export(_store(runs).load(run), otlp))  # type: ignore[attr-defined]


@trace_app.command("import")
def import_runs(path: Annotated[Path, typer.Argument(help="An OTLP export: a file, or a folder of files.")],
                format: Annotated[str, typer.Option(
                    "--format", help="otlp-json (the collector's file exporter: one request a line), otlp-proto "
                                     "(ExportTraceServiceRequest bytes, as SDK exporters post them; needs the otel "
                                     "extra), openinference (OTLP read by OpenInference attributes only), or auto "
                                     "(by suffix and content; both conventions).")] = "auto",
                runs: RunsDirOpt = None) -> None:
    """Import OpenTelemetry traces (GenAI or OpenInference spans, or rolegraph's own export) as runs:
    one per trace id, shown, viewed, diffed and replayed (`rolegraph replay RUN --app module:app`) like
    any run, and marked as imported."""
    from rolegraph.traces._import import import_traces

    report = import_traces(path, _store(runs), format)  # type: ignore[arg-type]
    for line in report.lines():
        out.print(line, highlight=False, soft_wrap=True)


@trace_app.command("to-test")
def to_test(run: str, step: Annotated[int, typer.Option("--step", help="The step to turn into a test.")],
            output: Annotated[Path, typer.Option("--out", help="Test file or directory.")] = Path("tests/recorded"),
            runs: RunsDirOpt = None,
            check: Annotated[bool, typer.Option("--check/--no-check", help="Run the written test once and keep it "
                                                "only if it passes (the default).")] = True) -> None:
    """Write a pytest case that runs one step again from what it was given (a node's state, a Send's
    payload, a task's arguments; a subgraph's step through its subgraph) and checks it returns what
    it returned. A step that cannot become a passing test is refused, saying why."""
    from rolegraph.traces._totest import check_test, write_test, written_test_name

    trace = _store(runs).load(run)  # type: ignore[attr-defined]
    fixture = (output if output.suffix != ".py" else output.parent) / "traces" / trace.run_id
    fixture_existed = fixture.exists()
    path = write_test(trace, step, output)
    why = check_test(path, written_test_name(trace, step)) if check else None
    if why is not None:
        path.unlink()
        if not fixture_existed:
            import shutil

            shutil.rmtree(fixture, ignore_errors=True)
        raise UserError(f"step {step} cannot become a test that passes: run again by itself, it fails with {why} "
                        "(nothing was written)")
    out.print(str(path))


@trace_app.command("reindex")
def reindex(runs: RunsDirOpt = None) -> None:
    """Rebuild the run index (index.sqlite) from the run folders, e.g. after it was damaged or
    deleted. (A damaged index is also rebuilt by itself, the next time it is used.)"""
    store = _store(runs)
    count = store.reindex()  # type: ignore[attr-defined]
    out.print(store.take_notice() or f"indexed {count} runs", highlight=False, soft_wrap=True)  # type: ignore[attr-defined]
