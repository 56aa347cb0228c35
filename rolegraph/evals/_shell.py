"""What the `rolegraph eval ...` commands share: run a benchmark into a new (or resumed)
evaluation directory on the configured runtime, then print and write its summary (scores with
CIs, win/draw/loss, Elo and top-k move fractions where games were played) next to the HTML report."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rolegraph.errors import UserError

out = Console()
err = Console(stderr=True)

ExecutorOpt = Annotated[str, typer.Option(help="Where the cases run: asyncio (this process) or ray (Ray workers; "
                                               "their traces come home to this machine).")]
"""`--executor` of an evaluation, a blame or a fork-compare."""
RayAddressOpt = Annotated[str | None, typer.Option("--ray-address", help="With --executor ray: a Ray cluster "
                                                                        "(HEAD:6379); default: a local Ray.")]
"""`--ray-address`: the Ray cluster to run on."""


def make_executor(name: str, address: str | None) -> Any:
    """The executor `--executor NAME [--ray-address A]` names: None for asyncio (the runner's default)."""
    if name == "asyncio":
        if address is not None:
            raise UserError("--ray-address goes with --executor ray")
        return None
    if name == "ray":
        from rolegraph.evals._ray import RayExecutor

        return RayExecutor(address=address)
    raise UserError(f"unknown executor {name!r}: use asyncio or ray")


def run_in_shell(benchmark: Any, *, concurrency: int, seed: int, resume: Path | None, out_dir: Path,
         config: Path | None, retry_errors: bool = True) -> tuple[Any, Path]:
    from rolegraph.evals._runner import new_eval_id, run_eval
    from rolegraph.evals._store import EvalStore
    from rolegraph.runtime import Runtime

    directory = resume if resume is not None else out_dir / new_eval_id(benchmark.name)
    store = EvalStore(directory / "results.sqlite")
    runtime = Runtime.load(config)

    async def go() -> None:
        try:
            await run_eval(benchmark, runtime, store=store, concurrency=concurrency, seed=seed,
                           resume=resume is not None, retry_errors=retry_errors, console=err)
        finally:
            await runtime.aclose()

    with runtime:
        asyncio.run(go())
    for scorer in benchmark.scorers:
        close = getattr(scorer, "close", None)
        if close is not None:
            close()
    return store, directory


def estimate_text(values: list[float], binary: bool) -> str:
    from rolegraph.evals.metrics import mean_ci, wilson_ci

    if not values:
        return "-"
    e = wilson_ci(int(sum(values)), len(values)) if binary else mean_ci(values)
    return f"{e.value:.3f} [{e.low:.3f}, {e.high:.3f}]"


def print_summary(store: Any, directory: Path) -> dict[str, Any]:
    """Print and write (summary.json) the table of one SPIN-Bench evaluation."""
    from rolegraph.evals._report import write_report
    from rolegraph.evals.spin import elo_pairs, outcome_counts, topk_summary
    from rolegraph.evals.spin.elo import compute_elo

    records = list(store.records())
    redact = store.redactor  # the traces' redaction: no key in the printed tables or summary.json
    scores: dict[str, list[float]] = {}
    for r in records:
        if r.status != "ok":  # errors and timeouts are counted apart, never scored
            continue
        for name, s in r.scores.items():
            scores.setdefault(name, []).append(s.value)
    errors = sum(r.status != "ok" for r in records)
    table = Table(title=f"{store.meta().get('benchmark')}  ({len(records)} results, {errors} errors)",
                  title_justify="left")
    table.add_column("metric")
    table.add_column("mean [95% CI]", justify="right")
    table.add_column("n", justify="right")
    summary: dict[str, Any] = {"benchmark": store.meta().get("benchmark"), "metrics": {}, "errors": errors}
    for name, values in scores.items():
        binary = name in ("win", "draw", "loss", "valid")
        table.add_row(redact(name), estimate_text(values, binary), str(len(values)))
        summary["metrics"][name] = {"mean": sum(values) / len(values), "n": len(values)}
    out.print(table)
    counts = outcome_counts(records)
    if any(counts[k] for k in ("win", "draw", "loss")):
        out.print("win / draw / loss / error: " + " / ".join(str(counts[k]) for k in ("win", "draw", "loss", "error")))
        summary["outcomes"] = counts
    pairs = elo_pairs(records)
    if pairs:
        ratings = compute_elo(pairs)
        elo = Table(title="Elo (K=32, from 1000)", title_justify="left")
        elo.add_column("player")
        elo.add_column("Elo", justify="right")
        for name, rating in sorted(ratings.items(), key=lambda kv: -kv[1]):
            elo.add_row(redact(name), f"{rating:.0f}")
        out.print(elo)
        summary["elo"] = ratings
    topk = topk_summary(records)
    if topk:
        print_topk(topk, redact)
        summary["topk"] = topk
    report = write_report(store)
    summary["report"] = str(report)
    (directory / "summary.json").write_text(redact(json.dumps(summary, indent=2, default=str)))
    out.print(f"report: {report}   summary: {directory / 'summary.json'}")
    fail_if_all_errored(records, str(directory))
    return summary


def print_topk(topk: dict[str, Any], redact: Any = str) -> None:
    """SPIN-Bench's cumulative top-k fractions, one table per measure: a row per k, a column per
    player (narrow enough for a terminal however many k there are)."""
    max_k = int(topk["max_k"])
    rows = [str(k) for k in range(1, max_k + 1)] + (["outside"] if topk["outside"] else [])
    for measure, players in topk["measures"].items():
        table = Table(title=f"top-k move fractions ({measure})", title_justify="left")
        table.add_column("top k")
        for player, entry in players.items():
            table.add_column(f"{redact(player)} ({entry['n']} moves)", justify="right")
        for key in rows:
            label = f"outside top {max_k}" if key == "outside" else key
            table.add_row(label, *(f"{entry['fractions'][key]:.3f}" for entry in players.values()))
        out.print(table)


def fail_if_all_errored(records: list[Any], where: str) -> None:
    """An evaluation in which every case errored says so and exits non-zero (after its report)."""
    from rolegraph.errors import UserError

    if records and all(r.status != "ok" for r in records):
        first = next((r.error for r in records if r.error), "") or records[0].status
        raise UserError(f"every one of the {len(records)} results errored (first: {first}); see {where}")


