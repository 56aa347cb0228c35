"""`rolegraph eval FILE.py:NAME --data cases.jsonl --scorer module:fn`: evaluate any graph with the
runner (concurrency, resume, repeats, report), its cases read from JSONL and scored by a function."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from rolegraph._cli_options import (
    AllowUnusedRolesOpt,
    ConcurrencyOpt,
    ConfigOpt,
    EvalOutOpt,
    RepeatsOpt,
    ResumeOpt,
    RetryErrorsOpt,
    TimeoutOpt,
)
from rolegraph._inputs import jsonl_objects, no_cases, object_field
from rolegraph.errors import InputError, UserError
from rolegraph.evals._core import Benchmark, Case
from rolegraph.evals._scoring import FunctionScorer as FunctionScorer  # its home before the one scorer shape
from rolegraph.evals._scoring import load_scorer
from rolegraph.evals._shell import ExecutorOpt, RayAddressOpt, make_executor
from rolegraph.models.servers import default_concurrency

out = Console()
err = Console(stderr=True)


def graph_cases(graph: Any, path: Path) -> list[Case]:
    """Cases from JSONL: `{"id", "input", "target", "metadata"}` per line, or the input object
    itself (with an optional "id" and "target"). Each input is validated against the graph's input; a
    malformed line (see `rolegraph._inputs`) or an empty file raises InputError naming file, line, field."""
    cases: list[Case] = []
    seen: set[str] = set()
    for line_no, row in jsonl_objects(path):
        raw = row.get("input", row)
        try:
            value = graph.input(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise InputError(first["msg"], path=str(path), line=line_no,
                             field=".".join(str(x) for x in first["loc"]) or None) from None
        case_id = str(row.get("id", f"line-{line_no}"))
        if case_id in seen:
            raise InputError(f"duplicate id {case_id!r}", path=str(path), line=line_no, field="id")
        seen.add(case_id)
        cases.append(Case(id=case_id, input=value, target=row.get("target"),
                          metadata=object_field(row, "metadata", path, line_no)))
    if not cases:
        raise no_cases(path)
    return cases


def load_function(ref: str, what: str = "scorer") -> Any:
    """The object `module:fn` or `FILE.py:fn` names (a file is imported with its folder on sys.path)."""
    import importlib

    head, sep, attr = ref.rpartition(":")
    if not sep or not attr:
        raise UserError(f"--{what} wants module:function or FILE.py:function, not {ref!r}")
    try:
        if head.endswith(".py"):
            import importlib.util
            import sys

            file = Path(head).resolve()
            if not file.is_file():
                raise UserError(f"no such {what} file: {file}")
            sys.path.insert(0, str(file.parent))
            spec = importlib.util.spec_from_file_location(file.stem, file)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(head)
        return getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise UserError(f"cannot load {what} {ref!r}: {exc}") from None


def eval_any_command(
    target: Annotated[str, typer.Argument(help="FILE.py:NAME, module:NAME, or an installed graph's name.")],
    data: Annotated[Path, typer.Option("--data", help="Cases, one JSON object per line: {id, input, target} "
                                                      "or the input itself.")],
    scorer: Annotated[list[str] | None, typer.Option("--scorer", help="module:fn or FILE.py:fn (repeatable); "
                                                                     "fn(output, target) -> number.")] = None,
    option: Annotated[list[str] | None, typer.Option("--option", help="KEY=VALUE: a graph option.")] = None,
    answers: Annotated[Path | None, typer.Option(
        "--answers", help="Scripted answers to the questions the graph asks with interrupt(): JSONL, one rule a "
                          'line, {"answer": A} with any of "case", "node", "question" (the first rule that matches '
                          "answers). Without it, a case that asks fails with its question.")] = None,
    concurrency: ConcurrencyOpt = default_concurrency(),
    repeats: RepeatsOpt = 1,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N cases.")] = None,
    timeout: TimeoutOpt = None,
    seed: Annotated[int, typer.Option()] = 0,
    resume: ResumeOpt = None,
    retry_errors: RetryErrorsOpt = True,
    executor: ExecutorOpt = "asyncio",
    ray_address: RayAddressOpt = None,
    out_dir: EvalOutOpt = Path("evals"),
    config: ConfigOpt = None,
    allow_unused_roles: AllowUnusedRolesOpt = False,
) -> None:
    """Evaluate any graph on a JSONL file of cases: every (case, repeat) a recorded run, scored,
    written as it ends, resumable, with a report."""
    from rolegraph.evals._report import summarize, write_report
    from rolegraph.evals._runner import new_eval_id, run_eval
    from rolegraph.evals._store import EvalStore
    from rolegraph.graphs import load_graph
    from rolegraph.graphs.cli import check_roles, parse_options
    from rolegraph.runtime import Runtime

    graph = load_graph(target)
    options = graph.options(parse_options(option or []))
    cases = graph_cases(graph, data)
    scorers = [load_scorer(s) for s in scorer or []]
    for ref, fn in zip(scorer or [], scorers, strict=True):
        if isinstance(fn, FunctionScorer) and fn.wants_result:
            raise UserError(f"--scorer {ref}: it asks for `result`, the graph's result object, which only blame and "
                            "fork-compare have; an evaluation scores `output`, the same result as a dict: take "
                            "fn(output, target)")

    def stream() -> Iterator[Case]:
        return iter(cases)

    bench = Benchmark(name=graph.name, cases=stream, solver=graph.solver(options=options, answers=answers),
                      scorers=scorers,
                      config={"graph": graph.ref, "data": str(data), "options": options.model_dump() if options else {},
                              "scorers": scorer or [], **({"answers": str(answers)} if answers is not None else {})})
    run_dir = resume if resume is not None else out_dir / new_eval_id(graph.name)
    store = EvalStore(run_dir / "results.sqlite")
    runtime = Runtime.load(config)
    if not allow_unused_roles:
        check_roles(graph, runtime, [c.input for c in cases], options)

    async def go() -> Any:
        try:
            return await run_eval(bench, runtime, store=store, concurrency=concurrency, repeats=repeats, limit=limit,
                                  timeout_s=timeout, seed=seed, resume=resume is not None, retry_errors=retry_errors,
                                  console=err, executor=make_executor(executor, ray_address))
        finally:
            await runtime.aclose()

    with runtime:
        summary = asyncio.run(go())
    report = write_report(store)
    data_ = store.redactor.data(summarize(store))  # the printed table holds no key (as the report)
    table = Table(title=f"{graph.name}: {run_dir.name}", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in sorted(data_["status"].items()):
        table.add_row(f"runs {key}", str(value))
    for name, stats in data_["scorers"].items():
        est = stats["mean"]
        errors = f", {stats['errors']} errors apart" if stats["errors"] else ""
        table.add_row(name, f"{est['value']:.3f} [{est['low']:.3f}, {est['high']:.3f}] (n={est['n']}{errors})")
    table.add_row("tokens", str(data_["tokens"]["total"]))
    out.print(table)
    out.print(f"results: {store.dir}   report: {report}")
    if summary.ran and summary.errors == summary.ran:
        first = next((r for r in store.records() if r.status != "ok" and (r.error or "").strip()), None)
        shown = f" (the first, case {first.case_id}: {(first.error or '').strip().splitlines()[0]})" if first else ""
        raise UserError(f"every case of {graph.name} failed{shown}; see {report}")
