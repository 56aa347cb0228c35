"""`rolegraph replay` and `rolegraph resume`: run a recorded graph again from its trace (found
again from the manifest, wherever it is defined), fork it, or continue a killed run."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from rolegraph.errors import UserError
from rolegraph.models.servers import default_concurrency
from rolegraph.traces import TraceStore, comparable

out = Console()

RunsDir = Annotated[Path | None, typer.Option("--runs", help="Trace directory (default: [traces] dir, 'runs').")]


def _store(runs: Path | None) -> TraceStore:
    from rolegraph.config import load_config

    return TraceStore(runs if runs is not None else load_config().traces.dir)


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
    from rolegraph.graphs._replay import replay_run
    from rolegraph.runtime import Runtime

    store = _store(runs)
    trace = store.load(run)
    live = Runtime.load(config) if live_from is not None else None

    async def go() -> Any:
        try:
            return await replay_run(trace, store=store, live=live, live_from=live_from,
                                    models=_pairs(model or [], "--model"), prompts=_pairs(prompt or [], "--prompt"))
        finally:
            if live is not None:
                await live.aclose()

    try:
        result = asyncio.run(go())
    finally:
        if live is not None:
            live.close()
    new_id = getattr(result, "trace_id", None)
    new = store.load(new_id) if new_id else None
    totals = new.finished.totals if new and new.finished else None
    kind = "fork" if live_from is not None else "replay"
    out.print(f"{kind} of {trace.run_id}: {new_id}")
    if totals is not None:
        out.print(f"{totals.replayed_calls} calls answered from the trace, {totals.model_calls} live; "
                  f"status {new.status}")  # type: ignore[union-attr]
    if trace.finished is not None and new is not None and new.finished is not None and live_from is None:
        same = comparable(trace.finished.output) == comparable(new.finished.output)
        out.print("output: identical to the recorded run" if same else "[yellow]output differs from the recorded run[/]")


def resume_command(
    run: Annotated[str, typer.Argument(help="Run id, id prefix, 'last', or directory.")],
    runs: RunsDir = None,
    config: Annotated[Path | None, typer.Option(help="rolegraph.toml for the live models.")] = None,
) -> None:
    """Continue an interrupted run from its last checkpoint, without repeating finished calls."""
    from rolegraph.graphs._replay import resume_run
    from rolegraph.runtime import Runtime

    store = _store(runs)
    trace = store.load(run)
    live = Runtime.load(config)

    async def go() -> Any:
        try:
            return await resume_run(trace, store=store, live=live)
        finally:
            await live.aclose()

    with live:
        asyncio.run(go())
    done = store.load(trace.run_id)
    totals = done.finished.totals if done.finished else None
    out.print(f"resumed {trace.run_id}: status {done.status}")
    if totals is not None:
        out.print(f"{totals.node_steps} steps in all; {totals.replayed_calls} calls answered from the trace, "
                  f"{totals.model_calls} made live")




def read_inputs(graph: Any, path: Path, limit: int | None = None) -> list[Any]:
    """Every line of a JSONL file as the graph's input type, checked before anything runs. A bad line
    (not UTF-8, over 1 MiB, or not valid input) raises InputError naming the file, line and field;
    so does a file with no input in it."""
    from pydantic import ValidationError

    from rolegraph._inputs import no_cases, text_lines
    from rolegraph.errors import InputError

    inputs: list[Any] = []
    for line_no, line in text_lines(path):
        if limit is not None and len(inputs) >= limit:
            break
        if not line.strip():
            continue
        try:
            inputs.append(graph.input_type.model_validate_json(line))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(x) for x in first["loc"]) or None
            raise InputError(first["msg"], path=str(path), line=line_no, field=field) from None
    if not inputs:
        raise no_cases(path)
    return inputs


def parse_options(values: list[str]) -> dict[str, Any]:
    """`--option KEY=VALUE` pairs; a VALUE that reads as JSON (a number, true, a list) is that."""
    options: dict[str, Any] = {}
    for key, value in _pairs(values, "--option").items():
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def run_any_command(
    target: Annotated[str, typer.Argument(help="FILE.py:NAME, module:NAME, or an installed graph's name.")],
    input: Annotated[Path, typer.Option("--input", "-i", help="Inputs, one JSON object per line, validated "
                                                              "against the graph's input type.")],
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds; each is an independent run.")] = "0",
    option: Annotated[list[str] | None, typer.Option("--option", help="KEY=VALUE: one of the graph's options "
                                                                     "(repeatable).")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N inputs.", min=1)] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Results (JSONL); default NAME-results.jsonl.")] = None,
    concurrency: Annotated[int, typer.Option(
        min=1, help="Runs in flight (default: enough for every embedded server slot).")] = default_concurrency(),
    config: Annotated[Path | None, typer.Option(help="rolegraph.toml to use.")] = None,
) -> None:
    """Run any graph over a JSONL file of inputs: each (input, seed) is a recorded run."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from rolegraph.errors import one_line
    from rolegraph.graphs._find import load_graph
    from rolegraph.runtime import Runtime

    graph = load_graph(target)
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds wants integers separated by commas, not {seeds!r}") from None
    options = graph.options(parse_options(option or []))
    inputs = read_inputs(graph, input, limit)
    runtime = Runtime.load(config)
    dest = out_file or Path(f"{graph.name}-results.jsonl")
    counts: dict[str, int] = {}
    total = len(inputs) * len(seed_list)
    err = Console(stderr=True)

    async def one(index: int, value: Any, seed: int) -> dict[str, Any]:
        try:
            result = await graph.run(value, runtime=runtime, seed=seed, options=options)
        except Exception as exc:  # noqa: BLE001 - this input's recorded failure; the others go on
            return {"line": index + 1, "seed": seed, "status": "error", "error": f"{type(exc).__name__}: "
                                                                                 f"{one_line(exc)}"}
        return {"line": index + 1, "seed": seed, **result.model_dump(mode="json", exclude={"trace_dir"})}

    async def go() -> None:
        semaphore = asyncio.Semaphore(concurrency)

        async def limited(index: int, value: Any, seed: int) -> dict[str, Any]:
            async with semaphore:
                return await one(index, value, seed)

        dest.parent.mkdir(parents=True, exist_ok=True)
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=err)
        tasks = [asyncio.create_task(limited(i, v, s)) for i, v in enumerate(inputs) for s in seed_list]
        with dest.open("w") as fh, progress:
            bar = progress.add_task(graph.name, total=total)
            for next_done in asyncio.as_completed(tasks):
                row = await next_done
                counts[row["status"]] = counts.get(row["status"], 0) + 1
                fh.write(json.dumps(row) + "\n")
                fh.flush()
                progress.update(bar, advance=1, description=f"{graph.name} line {row['line']}/seed {row['seed']}")

    with runtime:
        runtime.run_sync(go())
    table = Table(title=f"{graph.name}: {len(inputs)} inputs x {len(seed_list)} seeds")
    table.add_column("status")
    table.add_column("runs", justify="right")
    for status, n in sorted(counts.items()):
        table.add_row(status, str(n))
    out.print(table)
    out.print(f"results: {dest}")
    if runtime.traces is not None:
        out.print(f"traces: {runtime.traces.root}/ (rolegraph trace list; rolegraph replay last)")
    if total and counts.get("ok", 0) == 0:
        raise UserError(f"every run of {graph.name} failed; see the errors in {dest}")
