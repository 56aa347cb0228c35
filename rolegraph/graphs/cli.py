"""`rolegraph run`, `rolegraph replay` and `rolegraph resume`: run any graph over a file of inputs;
run a recorded graph again from its trace (found again from the manifest, wherever it is defined),
fork it, or continue a killed run."""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import typer
from rich.console import Console, RenderableType
from rich.table import Table

from rolegraph._cli_options import ConcurrencyOpt, ConfigOpt, LiveConfigOpt, RunsDirOpt
from rolegraph.errors import UserError
from rolegraph.models.servers import default_concurrency
from rolegraph.traces import TraceStore, comparable

if TYPE_CHECKING:
    from rolegraph.graphs._api import RunResult

out = Console()


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
    runs: RunsDirOpt = None,
    config: LiveConfigOpt = None,
) -> None:
    """Run a recorded run again offline from its trace; with --live-from, fork it. A run that did
    not finish is replayed as far as it was recorded, and nothing new is written."""
    from rolegraph.graphs._replay import PartialReplay, replay_run
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
    if isinstance(result, PartialReplay):
        out.print(result.message if result.identical else f"[yellow]{result.message}[/]", highlight=False, soft_wrap=True)
        return
    new_id = getattr(result, "run_id", None)
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
    runs: RunsDirOpt = None,
    config: LiveConfigOpt = None,
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


def _value(text: str) -> Any:
    """A VALUE that reads as JSON (a number, true, a list) is that; anything else is the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_options(values: list[str]) -> dict[str, Any]:
    """`--option KEY=VALUE` pairs; a VALUE that reads as JSON (a number, true, a list) is that."""
    return {key: _value(value) for key, value in _pairs(values, "--option").items()}


def option_flags(graph: Any, args: list[str]) -> dict[str, Any]:
    """A graph's options given as flags of their own (`--max-iters 2`, `--max-iters=2`, `--shuffle`,
    `--no-shuffle`): the arguments `rolegraph run` did not know, read against the graph's options type."""
    fields = graph.options_type.model_fields if graph.options_type is not None else {}
    flags = {"--" + name.replace("_", "-"): name for name in fields}
    found: dict[str, Any] = {}
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        flag, eq, value = arg.partition("=")
        name = flags.get(flag)
        negated = flags.get("--" + flag.removeprefix("--no-")) if flag.startswith("--no-") and not eq else None
        if name is None and negated is not None and fields[negated].annotation is bool:
            found[negated] = False
        elif name is None:
            what = f"graph '{graph.name}' has no option {flag}" if flag.startswith("-") else f"unexpected argument {arg!r}"
            raise UserError(f"{what}; the graph's options: {', '.join(flags) or 'none'}")
        elif eq:
            found[name] = _value(value)
        elif fields[name].annotation is bool and (not rest or rest[0].startswith("--")):
            found[name] = True
        elif rest:
            found[name] = _value(rest.pop(0))
        else:
            raise UserError(f"{flag} needs a value")
    return found


def graph_options(graph: Any, pairs: list[str], flags: list[str]) -> Any:
    """The graph's options from `--option KEY=VALUE` pairs and its own flags; a bad value is a UserError."""
    from pydantic import ValidationError

    try:
        return graph.options({**parse_options(pairs), **option_flags(graph, flags)})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UserError(f"graph '{graph.name}': option {'.'.join(str(x) for x in first['loc'])}: "
                        f"{first['msg']}") from None


def parse_seeds(text: str) -> list[int]:
    """`--seeds 0,1,2`: each seed an independent run of every input."""
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds wants integers separated by commas, not {text!r}") from None


class Summary(Protocol):
    """What `rolegraph run` prints once every run has ended, from the rows it wrote to the results
    file (`line`, `seed`, then the result's fields; or `status` "error" and `error`)."""

    def __call__(self, *, graph: str, rows: list[dict[str, Any]], inputs: int, seeds: int,
                 **future_kwargs: Any) -> RenderableType: ...


def status_table(*, graph: str, rows: list[dict[str, Any]], inputs: int, seeds: int, **future_kwargs: Any) -> Table:
    """The summary of a graph without one of its own: runs per status."""
    counts = collections.Counter(row["status"] for row in rows)
    table = Table(title=f"{graph}: {inputs} inputs x {seeds} seeds")
    table.add_column("status")
    table.add_column("runs", justify="right")
    for status, n in sorted(counts.items()):
        table.add_row(status, str(n))
    return table


@dataclass(frozen=True)
class RunHooks:
    """How `rolegraph run NAME` treats one graph, where the defaults do not fit it."""

    read: Callable[[Path], Iterable[Any]] | None = None
    """Reads --input (default: `read_inputs`, JSONL lines validated against the graph's input type)."""
    seeds: str = "0"
    """--seeds when none is given."""
    exclude: frozenset[str] = frozenset()
    """Result fields left out of the results file's rows (besides trace_dir)."""
    summary: Summary = status_table
    """The table printed at the end."""


def _row(index: int, seed: int, result: RunResult, exclude: frozenset[str]) -> dict[str, Any]:
    from rolegraph.graphs._result import RunFailure

    if isinstance(result, RunFailure):
        return {"line": index + 1, "seed": seed, "status": "error", "error": result.error}
    return {"line": index + 1, "seed": seed, **result.model_dump(mode="json", exclude={"trace_dir", *exclude})}


def run_command(hooks: Mapping[str, RunHooks] | None = None) -> Callable[..., None]:
    """The `rolegraph run TARGET` command, given the hooks of the graphs (by name) that have some."""
    known = dict(hooks or {})

    def run_any_command(
        ctx: typer.Context,
        target: Annotated[str, typer.Argument(help="FILE.py:NAME, module:NAME, or an installed graph's name.")],
        input: Annotated[Path, typer.Option("--input", "-i", help="Inputs, one JSON object per line, validated "
                                                                  "against the graph's input type.")],
        seeds: Annotated[str | None, typer.Option(help="Comma-separated seeds; each is an independent run "
                                                       "(default: 0, or the graph's own: refinebot's is 0,1).")] = None,
        option: Annotated[list[str] | None, typer.Option("--option", help="KEY=VALUE: one of the graph's options "
                                                                         "(repeatable); or --KEY VALUE.")] = None,
        limit: Annotated[int | None, typer.Option(help="Only the first N inputs.", min=1)] = None,
        out_file: Annotated[Path | None, typer.Option("--out", help="Results (JSONL); default "
                                                                    "NAME-results.jsonl.")] = None,
        concurrency: ConcurrencyOpt = default_concurrency(),
        config: ConfigOpt = None,
    ) -> None:
        """Run any graph over a JSONL file of inputs: each (input, seed) is a recorded run. The graph's
        options go as --option KEY=VALUE or as flags of their own (refinebot's --max-iters 2)."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from rolegraph.graphs._find import load_graph
        from rolegraph.runtime import Runtime

        graph = load_graph(target)
        hook = known.get(graph.name, RunHooks())
        seed_list = parse_seeds(seeds if seeds is not None else hook.seeds)
        options = graph_options(graph, option or [], ctx.args)
        inputs = (list(itertools.islice(hook.read(input), limit)) if hook.read is not None
                  else read_inputs(graph, input, limit))
        runtime = Runtime.load(config)
        dest = out_file or Path(f"{graph.name}-results.jsonl")
        rows: list[dict[str, Any]] = []

        async def go() -> None:
            dest.parent.mkdir(parents=True, exist_ok=True)
            progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=Console(stderr=True))
            with dest.open("w") as fh, progress:
                bar = progress.add_task(graph.name, total=len(inputs) * len(seed_list))
                async for index, seed, result in graph.run_batch(inputs, runtime=runtime, seeds=seed_list,
                                                                 options=options, concurrency=concurrency):
                    # redacted as the traces are: the results file, the summary table and the error below
                    # are made from these rows, so a key the model echoed or an input held reaches none
                    rows.append(runtime.redactor.data(_row(index, seed, result, hook.exclude)))
                    fh.write(json.dumps(rows[-1]) + "\n")
                    fh.flush()
                    progress.update(bar, advance=1, description=f"{graph.name} line {index + 1}/seed {seed}")

        with runtime:
            runtime.run_sync(go())
        out.print(hook.summary(graph=graph.name, rows=rows, inputs=len(inputs), seeds=len(seed_list)))
        out.print(f"results: {dest}")
        if runtime.traces is not None:
            out.print(f"traces: {runtime.traces.root}/ (rolegraph trace list; rolegraph replay last)")
        if rows and not any(row["status"] == "ok" for row in rows):
            first = next((row["error"] for row in rows if row.get("error")), None)
            raise UserError(f"every run of {graph.name} failed" + (f" (the first: {first})" if first else "")
                            + f"; see the errors in {dest}")

    return run_any_command
