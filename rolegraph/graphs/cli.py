"""`rolegraph run`, `rolegraph replay` and `rolegraph resume`: run any graph over a file of inputs;
run a recorded graph again from its trace (found again from the manifest, wherever it is defined),
fork it, or continue a killed run."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import typer
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.table import Table

from rolegraph._cli_options import AllowUnusedRolesOpt, ConcurrencyOpt, ConfigOpt, LiveConfigOpt, RunsDirOpt
from rolegraph.errors import UserError
from rolegraph.models.servers import default_concurrency
from rolegraph.traces import TraceStore, comparable

if TYPE_CHECKING:
    from rolegraph.graphs._api import RunResult

out = Console()


def _store(runs: Path | None) -> TraceStore:
    return TraceStore.configured(runs)


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for v in values:
        role, sep, value = v.partition("=")
        if not sep or not role or not value:
            raise UserError(f"{flag} wants ROLE=VALUE, not {v!r}")
        pairs[role] = value
    return pairs


AnswerOpt = Annotated[str | None, typer.Option(
    "--answer", help="The human's answer: JSON (or plain text). One question: the answer itself; several: "
                     '{"INTERRUPT_ID": answer, ...} (ids as `rolegraph trace show` lists them).')]
AnswerFileOpt = Annotated[Path | None, typer.Option("--answer-file", help="The answer as a JSON file (as --answer).")]


def given_answer(answer: str | None, answer_file: Path | None) -> Any:
    """--answer or --answer-file as the answer's value (None: neither given)."""
    from rolegraph.graphs._human import answer_file as read_answer
    from rolegraph.graphs._human import answer_text

    if answer is not None and answer_file is not None:
        raise UserError("give --answer or --answer-file, not both")
    if answer_file is not None:
        return read_answer(answer_file)
    return answer_text(answer) if answer is not None else None


def _questions(store: TraceStore, run_id: str) -> None:
    from rolegraph.traces import show_questions

    show_questions(store.load(run_id), out)


def replay_command(
    run: Annotated[str, typer.Argument(help="Run id, id prefix, 'last', or directory.")],
    live_from: Annotated[int | None, typer.Option("--live-from", help="Call live models from this step on.")] = None,
    model: Annotated[list[str] | None, typer.Option("--model", help="ROLE=MODEL_NAME for the live part.")] = None,
    prompt: Annotated[list[str] | None, typer.Option("--prompt", help="ROLE=TEMPLATE_FILE for the live part.")] = None,
    answer: Annotated[str | None, typer.Option(
        "--answer", help="A changed human answer for the fork's live part (JSON or text): for the first question "
                         'it asks, or {"NODE_KEY": answer, ...} (keys as trace show prints them).')] = None,
    answer_file: AnswerFileOpt = None,
    runs: RunsDirOpt = None,
    config: LiveConfigOpt = None,
    app: Annotated[str | None, typer.Option(
        "--app", help="The code to replay against (FILE.py:NAME or module:NAME: a wrapped LangGraph app or a "
                      "rolegraph graph); needed for an imported run, else the recorded graph.")] = None,
) -> None:
    """Run a recorded run again offline from its trace; with --live-from, fork it. A run that did
    not finish is replayed as far as it was recorded, and nothing new is written. A person's answers
    (to `interrupt()` questions) are given again from the trace; --answer changes one in a fork.
    An imported run (`rolegraph trace import`) is replayed against --app: its model and tool calls are
    answered from the imported spans, in order, and the app's run is recorded as a run of its own,
    which --live-from then forks."""
    from rolegraph.graphs._find import load_graph
    from rolegraph.graphs._replay import PartialReplay, replay_run
    from rolegraph.runtime import Runtime
    from rolegraph.traces import IMPORTED

    store = _store(runs)
    trace = store.load(run)
    graph = load_graph(app) if app is not None else None
    if IMPORTED in trace.started.manifest.tags:
        if graph is None:
            raise UserError(f"run {trace.run_id} was imported ({trace.started.manifest.tags[IMPORTED]}): say which code "
                            "to replay it against, --app FILE.py:NAME or --app module:NAME (a LangGraph app wrapped "
                            "with rolegraph.langchain.app, or a rolegraph graph)")
        trace = _replay_imported(trace, graph, store)
        if live_from is None:
            return
        graph = None  # the fork below runs the app's own run again: it finds the app from its manifest
    human = given_answer(answer, answer_file)
    live = Runtime.load(config) if live_from is not None else None

    async def go() -> Any:
        try:
            return await replay_run(trace, store=store, live=live, live_from=live_from,
                                    models=_pairs(model or [], "--model"), prompts=_pairs(prompt or [], "--prompt"),
                                    answer=human, graph=graph)
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
        _human_summary(new)
    if trace.finished is not None and new is not None and new.finished is not None and live_from is None:
        same = comparable(trace.finished.output) == comparable(new.finished.output)
        out.print("output: identical to the recorded run" if same else "[yellow]output differs from the recorded run[/]")
    if new is not None and new.status == "interrupted":
        _questions(store, new.run_id)


def _replay_imported(trace: Any, graph: Any, store: TraceStore) -> Any:
    """Replay an imported run against `graph`, print what it did, and return the new run's trace."""
    from rolegraph.graphs._replay_imported import replay_imported

    done = asyncio.run(replay_imported(trace, graph, store=store))
    new_id = getattr(done.result, "run_id", None)
    out.print(f"replay of imported run {trace.run_id} against {graph.name}: {new_id}")
    out.print(f"{done.answered} model calls answered from the trace, {done.live_calls} live; {done.tools_answered} "
              "tool calls answered from the trace, 0 run")
    if done.unused:
        out.print(f"[yellow]the trace recorded more than the app asked: {', '.join(done.unused)} unused[/]")
    if new_id is None:
        raise UserError("the replay's run was not recorded (no trace store): give --runs DIR")
    return store.load(new_id)


def _human_summary(trace: Any) -> None:
    """How a run's human answers were given, when it has any."""
    from rolegraph.traces import HumanInput

    given = trace.of_kind(HumanInput)
    if given:
        replayed = sum(1 for e in given if e.replayed)
        out.print(f"{len(given)} human answer{'s' if len(given) > 1 else ''}: {replayed} from the trace, "
                  f"{len(given) - replayed} given")


def resume_command(
    run: Annotated[str, typer.Argument(help="Run id, id prefix, 'last', or directory.")],
    answer: AnswerOpt = None,
    answer_file: AnswerFileOpt = None,
    runs: RunsDirOpt = None,
    config: LiveConfigOpt = None,
) -> None:
    """Continue a run from its last checkpoint, without repeating finished calls: a run that was
    killed, or one waiting for human input (status interrupted), given the answer."""
    from rolegraph.graphs._replay import resume_run
    from rolegraph.runtime import Runtime

    store = _store(runs)
    trace = store.load(run)
    human = given_answer(answer, answer_file)
    live = Runtime.load(config)

    async def go() -> Any:
        try:
            return await resume_run(trace, store=store, live=live, answer=human)
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
    if done.status == "interrupted":
        _questions(store, done.run_id)




def read_inputs(graph: Any, path: Path, limit: int | None = None) -> list[Any]:
    """Every line of a JSONL file as the graph's input type, checked before anything runs. A bad line
    (not UTF-8, over 1 MiB, or not valid input) raises InputError naming the file, line and field;
    so does a file with no input in it."""
    from pydantic import ValidationError

    from rolegraph._inputs import no_cases, not_jsonl, text_lines
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
            if first["type"] == "json_invalid":  # not JSON at all: say what the file is instead
                raise not_jsonl(path, line_no, line, first["msg"].removeprefix("Invalid JSON: "),
                                list(graph.input_type.model_fields)) from None
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


def check_roles(graph: Any, runtime: Any, inputs: Iterable[Any], options: Any) -> None:
    """Refuse a configuration file that configures a role no run of `graph` on `inputs` uses (nor any
    other graph its module defines, nor the default): a ConfigError naming the file, the role and the
    roles there are, before anything runs."""
    import sys

    from pydantic import ValidationError

    from rolegraph.graphs._api import Graph

    used = set(graph.roles(None, options))
    for value in inputs:
        used |= set(graph.roles(value, options))
    module = sys.modules.get(graph.ref.partition(":")[0])
    for other in (vars(module).values() if module is not None else ()):
        if isinstance(other, Graph) and other is not graph:
            with contextlib.suppress(UserError, ValidationError, TypeError):  # its default options may not build
                used |= set(other.roles())
    runtime.config.check_roles_used(used, by=f"graph '{graph.name}'")


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


FAILURES_SHOWN = 20
"""The most failed runs `rolegraph run` lists one per line (the results file has them all)."""


def input_id(value: Any) -> str | None:
    """An input's own id, if it has one (an `id` or `key` field)."""
    for name in ("id", "key"):
        found = value.get(name) if isinstance(value, dict) else getattr(value, name, None)
        if isinstance(found, str | int) and not isinstance(found, bool) and str(found):
            return str(found)
    return None


def print_failures(rows: list[dict[str, Any]], inputs: list[Any], dest: Path) -> None:
    """One line per failed run (its input's line, id and seed, and the error's first line), then how
    many failed: where the user looks, not only in the results file."""
    failed = sorted((row for row in rows if row.get("status") == "error"), key=lambda r: (r["line"], r["seed"]))
    for row in failed[:FAILURES_SHOWN]:
        index = row["line"] - 1
        ident = input_id(inputs[index]) if 0 <= index < len(inputs) else None
        error = (str(row.get("error") or "").strip().splitlines() or ["(no message)"])[0]
        out.print(f"[red]failed[/red] line {row['line']}" + (f" (id {escape(ident)})" if ident else "")
                  + f", seed {row['seed']}: {escape(error)}", highlight=False, soft_wrap=True)
    if len(failed) > FAILURES_SHOWN:
        out.print(f"... and {len(failed) - FAILURES_SHOWN} more", highlight=False)
    if failed:
        out.print(f"{len(failed)} of {len(rows)} runs failed; every error is in {dest}", highlight=False, soft_wrap=True)


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
        stream: Annotated[bool, typer.Option("--stream", help="Show the models' tokens as they come and each node's "
                                                              "update as a line, on stderr (one run at a time).")] = False,
        allow_unused_roles: AllowUnusedRolesOpt = False,
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
        if not allow_unused_roles:
            check_roles(graph, runtime, inputs, options)
        dest = out_file or Path(f"{graph.name}-results.jsonl")
        rows: list[dict[str, Any]] = []

        async def go() -> None:
            dest.parent.mkdir(parents=True, exist_ok=True)
            progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=Console(stderr=True))
            from rolegraph.graphs._console import streamed_runs

            # streamed, the runs' tokens and updates take the progress bar's place on stderr
            shown: contextlib.AbstractContextManager[Any] = contextlib.nullcontext() if stream else progress
            with dest.open("w") as fh, shown:
                bar = None if stream else progress.add_task(graph.name, total=len(inputs) * len(seed_list))
                runs = (streamed_runs(graph, inputs, runtime=runtime, seeds=seed_list, options=options,
                                      console=Console(stderr=True)) if stream else
                        graph.run_batch(inputs, runtime=runtime, seeds=seed_list, options=options,
                                        concurrency=concurrency))
                async for index, seed, result in runs:
                    # redacted as the traces are: the results file, the summary table and the error below
                    # are made from these rows, so a key the model echoed or an input held reaches none
                    rows.append(runtime.redactor.data(_row(index, seed, result, hook.exclude)))
                    fh.write(json.dumps(rows[-1]) + "\n")
                    fh.flush()
                    if bar is not None:
                        progress.update(bar, advance=1, description=f"{graph.name} line {index + 1}/seed {seed}")

        with runtime:
            runtime.run_sync(go())
        out.print(hook.summary(graph=graph.name, rows=rows, inputs=len(inputs), seeds=len(seed_list)))
        print_failures(rows, inputs, dest)
        out.print(f"results: {dest}")
        if runtime.traces is not None:
            out.print(f"traces: {runtime.traces.root}/ (rolegraph trace list; rolegraph replay last)")
        waiting = [row for row in rows if row["status"] == "interrupted"]
        if waiting:
            out.print(f"{len(waiting)} run{'s wait' if len(waiting) > 1 else ' waits'} for human input (first: "
                      f"{waiting[0].get('run_id')}): rolegraph trace show RUN lists the questions; rolegraph resume "
                      "RUN --answer JSON answers them", highlight=False, soft_wrap=True)
        if rows and not any(row["status"] in ("ok", "interrupted") for row in rows):
            first = next((row["error"] for row in rows if row.get("error")), None)
            raise UserError(f"every run of {graph.name} failed" + (f" (the first: {first})" if first else "")
                            + f"; see the errors in {dest}")

    return run_any_command
