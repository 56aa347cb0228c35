"""`rolegraph eval ...`: the MCQ benchmark (variants, transforms), reports, paired comparisons."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rolegraph._cli_options import ConcurrencyOpt, ConfigOpt, EvalOutOpt, EvalsDirOpt, RepeatsOpt, RetryErrorsOpt, TimeoutOpt
from rolegraph.errors import UserError
from rolegraph.evals._any import eval_any_command as eval_any_command  # `rolegraph eval any`, registered by the CLI
from rolegraph.models.servers import default_concurrency

eval_app = typer.Typer(no_args_is_help=True, help="Evaluate agents against benchmarks.")
out = Console()
err = Console(stderr=True)


def _errors(store: Any) -> int:
    """Results that are errors or timeouts."""
    return sum(n for status, n in store.status_counts().items() if status != "ok")


def _fmt(e: Any) -> str:
    return f"{e.value + 0.0:.3f} [{e.low + 0.0:.3f}, {e.high + 0.0:.3f}]"  # + 0.0 turns -0.0 into 0.0


@eval_app.command("mcq")
def eval_mcq(
    data: Annotated[Path, typer.Option("--data", help="MCQs: .jsonl, or MicroVQA's .csv")],
    variants: Annotated[str, typer.Option(help="No-image variants: question, choices_only, last_sentence")] = "question",
    transforms: Annotated[str, typer.Option(help="Robustness transforms on the question variant, e.g. "
                                                 "shuffle,labels:A,whitespace,punctuation,typos:0.05,paraphrase")] = "",
    concurrency: ConcurrencyOpt = default_concurrency(),
    repeats: RepeatsOpt = 1,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N questions.")] = None,
    timeout: TimeoutOpt = None,
    seed: Annotated[int, typer.Option()] = 0,
    refine: Annotated[bool, typer.Option("--refine", help="Run RefineBot on each case first, then compare "
                                                         "the shortcut rate before and after.")] = False,
    resume: Annotated[Path | None, typer.Option(help="An earlier suite directory to continue.")] = None,
    retry_errors: RetryErrorsOpt = True,
    executor: Annotated[str, typer.Option(help="asyncio (this process) or ray.")] = "asyncio",
    ray_address: Annotated[str | None, typer.Option("--ray-address", help="A Ray cluster (HEAD:6379); "
                                                                         "default: a local Ray.")] = None,
    out_dir: EvalOutOpt = Path("evals"),
    config: ConfigOpt = None,
) -> None:
    """Answer MCQs without the image (chain-of-thought), score accuracy, and report each variant and
    transform with confidence intervals; transforms also report the drop from clean accuracy."""
    from rolegraph.envs.mcq import load_mcqs
    from rolegraph.evals._report import write_report
    from rolegraph.evals._runner import new_eval_id, run_eval
    from rolegraph.evals._store import EvalStore
    from rolegraph.evals.mcq import VARIANTS, mcq_benchmark
    from rolegraph.evals.metrics import accuracy_ci, mean_ci, paired_comparison
    from rolegraph.evals.transforms import parse_transforms
    from rolegraph.runtime import Runtime

    names = [v.strip() for v in variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        raise UserError(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    chosen = parse_transforms(transforms) if transforms.strip() else []
    for _ in load_mcqs(data):  # validate the whole file before any model call
        pass
    benches = [mcq_benchmark(data, variant_name=v, seed=seed) for v in names]
    if chosen and "question" not in names:
        benches.insert(0, mcq_benchmark(data, variant_name="question", seed=seed))
    benches += [mcq_benchmark(data, transform=t, seed=seed) for t in chosen]
    suite = resume if resume is not None else out_dir / new_eval_id("mcq")
    runtime = Runtime.load(config)
    stores = {b.name: EvalStore(suite / b.name / "results.sqlite") for b in benches}

    if refine and "question" not in names:
        benches.insert(0, mcq_benchmark(data, variant_name="question", seed=seed))
        stores["mcq-question"] = EvalStore(suite / "mcq-question" / "results.sqlite")

    async def go() -> None:
        try:
            await run_all()
        finally:  # on every exit path, or aiohttp warns of unclosed sessions after the error
            await runtime.aclose()

    async def run_all() -> None:
        kw: dict[str, Any] = {"concurrency": concurrency, "timeout_s": timeout, "seed": seed,
                              "resume": resume is not None, "retry_errors": retry_errors, "console": err}
        if executor == "ray":
            from rolegraph.evals._ray import RayExecutor

            kw["executor"] = RayExecutor(address=ray_address)
        elif executor != "asyncio":
            raise UserError(f"unknown executor {executor!r}: use asyncio or ray")
        for b in benches:
            await run_eval(b, runtime, store=stores[b.name], repeats=repeats, limit=limit, **kw)
        if refine:
            from rolegraph.evals.mcq import refine_benchmark, refined_mcq_benchmark

            stores["refinebot"] = EvalStore(suite / "refinebot" / "results.sqlite")
            await run_eval(refine_benchmark(data), runtime, store=stores["refinebot"], limit=limit, **kw)
            refined = refined_mcq_benchmark(stores["refinebot"], data=data)
            stores["mcq-refined"] = EvalStore(suite / "mcq-refined" / "results.sqlite")
            await run_eval(refined, runtime, store=stores["mcq-refined"], repeats=repeats, **kw)

    with runtime:
        asyncio.run(go())
    table = Table(title=f"MCQ evaluation {suite.name}", title_justify="left")
    for col in ("run", "accuracy [95% CI]", "n", "errors", "drop vs clean [95% CI]", "McNemar p"):
        table.add_column(col, justify="left" if col == "run" else "right")
    clean = stores["mcq-question"].case_scores("accuracy") if "mcq-question" in stores else None
    summary: dict[str, Any] = {}
    if refine:
        codes: dict[str, int] = {}
        for r in stores["refinebot"].records():
            code = r.output["exit_code"] if r.status == "ok" else r.status.upper()
            codes[code] = codes.get(code, 0) + 1
        summary["refinebot_exit_codes"] = codes
        out.print("RefineBot exit codes: " + ", ".join(f"{k} {v}" for k, v in sorted(codes.items())))
    for name, store in stores.items():
        if name == "refinebot":
            continue
        per_case = store.case_scores("accuracy")
        acc = accuracy_ci([v >= 0.5 for v in per_case.values()]) if repeats == 1 else None
        est = acc if acc is not None else mean_ci(list(per_case.values()))
        drop, p = "", ""
        entry: dict[str, Any] = {"accuracy": est.__dict__, "errors": _errors(store),
                                 "report": str(write_report(store))}
        if clean is not None and (name.startswith("mcq-question-") or name == "mcq-refined"):
            cmp = paired_comparison(clean, per_case)
            drop = _fmt(type(cmp.diff)(-cmp.diff.value, -cmp.diff.high, -cmp.diff.low, cmp.diff.n))
            p = f"{cmp.mcnemar.p_value:.3g}" if cmp.mcnemar else ""
            entry["drop"] = {"value": -cmp.diff.value, "low": -cmp.diff.high, "high": -cmp.diff.low,
                             "mcnemar_p": cmp.mcnemar.p_value if cmp.mcnemar else None}
        summary[name] = entry
        table.add_row(name, _fmt(est), str(est.n), str(entry["errors"]), drop, p)
    (suite / "summary.json").write_text(runtime.redactor(json.dumps(summary, indent=2, default=str)))
    out.print(table)
    out.print(f"reports: {suite}/<run>/report/report.html   summary: {suite / 'summary.json'}")
    from rolegraph.evals._shell import fail_if_all_errored

    fail_if_all_errored([r for store in stores.values() for r in store.records()], str(suite))


@eval_app.command("report")
def eval_report(run: Annotated[str, typer.Argument(help="An evaluation directory, id, or 'last'.")],
                out_dir: Annotated[Path | None, typer.Option("--report", help="Directory for report.html.")] = None,
                root: EvalsDirOpt = Path("evals")) -> None:
    """Write report.json and report.html for an evaluation and print the HTML's path."""
    from rolegraph.evals._report import write_report
    from rolegraph.evals._store import EvalStore

    out.print(str(write_report(EvalStore.open(run, root), out_dir)))


@eval_app.command("compare")
def eval_compare(a: str, b: str,
                 scorer: Annotated[list[str] | None, typer.Option(
                     "--scorer", help="A scorer's name (repeatable); default: every scorer both evaluations "
                                      "share.")] = None,
                 root: EvalsDirOpt = Path("evals")) -> None:
    """Paired comparison of two evaluations on the cases they share, for every scorer they share
    (or those given): difference with a CI, and McNemar's test when scores are binary."""
    from rolegraph.evals._store import EvalStore
    from rolegraph.evals.metrics import paired_comparison

    ea, eb = EvalStore.open(a, root), EvalStore.open(b, root)
    for name in compared_scorers(set(ea.headline()), set(eb.headline()), scorer, a, b):
        try:
            cmp = paired_comparison(ea.case_scores(name), eb.case_scores(name))
        except ValueError:
            out.print(f"{name}: no case was scored by both")
            continue
        table = Table(title=f"{name}: B - A on {cmp.n} shared cases", title_justify="left")
        for col in ("A", "B", "B - A [95% CI]", "McNemar (A only / B only)", "p"):
            table.add_column(col, justify="right")
        m = cmp.mcnemar
        table.add_row(f"{cmp.mean_a:.3f}", f"{cmp.mean_b:.3f}", _fmt(cmp.diff), f"{m.b} / {m.c}" if m else "-",
                      f"{m.p_value:.3g}" if m else "-")
        out.print(table)


def compared_scorers(in_a: set[str], in_b: set[str], asked: list[str] | None, a: str, b: str) -> list[str]:
    """The scorers `eval compare` compares: those asked for (each must be in both), else every one
    both evaluations share; it says which it used and which it left out, and names each side's
    scorers when none is shared (a UserError)."""
    if asked:
        for name in asked:
            missing = [ref for ref, names in ((a, in_a), (b, in_b)) if name not in names]
            if missing:
                raise UserError(f"--scorer {name}: no result of {' and '.join(missing)} has it; scorers of {a}: "
                                f"{', '.join(sorted(in_a)) or '(none)'}; of {b}: {', '.join(sorted(in_b)) or '(none)'}")
        names = list(dict.fromkeys(asked))
        out.print(f"comparing scorer{'s' if len(names) > 1 else ''} {', '.join(names)} (asked with --scorer)")
        return names
    shared = sorted(in_a & in_b)
    if not shared:
        raise UserError(f"{a} and {b} share no scorer: {a} has {', '.join(sorted(in_a)) or 'no scored result'}, "
                        f"{b} has {', '.join(sorted(in_b)) or 'no scored result'}")
    only = [f"{', '.join(sorted(x))} (only in {ref})" for x, ref in ((in_a - in_b, a), (in_b - in_a, b)) if x]
    out.print(f"comparing every scorer both share: {', '.join(shared)}"
              + (f"; not compared: {'; '.join(only)}" if only else ""))
    return shared


def optimize_command(
    role: Annotated[str, typer.Argument(help="answerer (the MCQ benchmark) or mcq_writer (MicroVQA stage 1)")],
    data: Annotated[Path, typer.Option("--data", "--benchmark", help="The benchmark data: MCQs for answerer; "
                                                                "question/answer pairs for mcq_writer")],
    optimizer: Annotated[str, typer.Option(help="bootstrap (BootstrapFewShot) or mipro (MIPROv2)")] = "bootstrap",
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the new prompt version.")] = Path("prompts"),
    max_demos: Annotated[int, typer.Option(min=0)] = 3,
    config: ConfigOpt = None,
) -> None:
    """Optimise a role's prompt with DSPy against its benchmark metric and write the new version
    (load it with Runtime.load(prompts_dir=OUT))."""
    from rolegraph.evals.optimize import optimize
    from rolegraph.runtime import Runtime

    with Runtime.load(config) as runtime:
        result = optimize(role, data, runtime, optimizer=optimizer, out_dir=out_dir, max_demos=max_demos)
    table = Table(title=f"optimize {role} ({optimizer})", title_justify="left")
    for col in ("metric before", "metric after", "demos", "prompt file"):
        table.add_column(col)
    table.add_row(f"{result.before:.3f}", f"{result.after:.3f}", str(result.demos), str(result.prompt_file))
    out.print(table)
    out.print(f"report: {result.report_file}")


def _register_spin() -> None:
    from rolegraph.evals.spin.cli import register

    register(eval_app)


_register_spin()
