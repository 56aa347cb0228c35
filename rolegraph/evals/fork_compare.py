"""Paired comparisons on shared prefixes: for every case of a finished evaluation, fork its recorded
trace at the first call of a role and run both arms from that same prefix, K times each: the
recorded settings, and the change (a prompt or a model for the role). Sample j of both arms draws
with the same seed, so the arms share everything but the change; the paired difference gets a
bootstrap interval and McNemar's test, and the cases that flipped link to both traces."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic_core import to_jsonable_python
from rich.console import Console
from rich.table import Table

from rolegraph._cli_options import LiveConfigOpt
from rolegraph.errors import UserError
from rolegraph.evals._blame_sampling import Outcome, Resampled, Spend, sample_seed
from rolegraph.evals._core import Benchmark, Case, Scorer, SolverOutput
from rolegraph.evals._ray import OnRay
from rolegraph.evals._runner import Executor, run_eval
from rolegraph.evals._scoring import as_scorer, score_result
from rolegraph.evals._shell import ExecutorOpt, RayAddressOpt, make_executor
from rolegraph.evals._store import EvalStore
from rolegraph.evals.blame import default_scorer, load_scorer
from rolegraph.evals.metrics import paired_comparison
from rolegraph.graphs import find_graph, replay_run
from rolegraph.models import ChatModel
from rolegraph.runtime import Runtime
from rolegraph.traces import ModelCall, Trace, TraceStore

__all__ = ["ForkComparison", "fork_compare"]

ARMS = ("recorded", "changed")


@dataclass
class FlippedCase:
    case_id: str
    repeat: int
    recorded: float
    changed: float
    recorded_traces: list[str] = field(default_factory=list)
    changed_traces: list[str] = field(default_factory=list)


@dataclass
class ForkComparison:
    eval_dir: str
    role: str
    change: str
    samples: int
    cases: int
    skipped: dict[str, str]
    """case/repeat -> why it was not compared (no call of the role, no trace, an error)."""
    recorded_mean: float
    changed_mean: float
    difference: float
    low: float
    high: float
    mcnemar_p: float | None
    flipped: list[FlippedCase]

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = to_jsonable_python(asdict(self))
        return data

    def print(self, console: Console) -> None:
        table = Table(title=f"fork-compare at the first call of '{self.role}': {self.change} "
                            f"({self.cases} cases x {self.samples} samples per arm)")
        for col in ("arm", "success"):
            table.add_column(col, justify="right")
        table.add_row("recorded settings", f"{self.recorded_mean:.3f}")
        table.add_row(self.change, f"{self.changed_mean:.3f}")
        table.add_row("paired difference (95% CI)", f"{self.difference:+.3f} [{self.low:+.3f}, {self.high:+.3f}]")
        if self.mcnemar_p is not None:
            table.add_row("McNemar p", f"{self.mcnemar_p:.4f}")
        console.print(table)
        for f in self.flipped[:20]:
            console.print(f"flipped {f.case_id}/{f.repeat}: {f.recorded:.2f} -> {f.changed:.2f} "
                          f"(traces {', '.join(f.recorded_traces[:1] + f.changed_traces[:1])})")
        if self.skipped:
            console.print(f"{len(self.skipped)} case(s) not compared, e.g. {next(iter(self.skipped.items()))}")


def target_scorer(result: Any, target: Any) -> float:
    """The default: an MCQ's chosen index against the case's target; else the graph's own measure."""
    pred = getattr(result, "pred_index", None)
    if isinstance(pred, int) and isinstance(target, int):
        return float(pred == target)
    return default_scorer(result)


class _ArmSolver:
    def __init__(self, base: Runtime, store: TraceStore, traces: dict[str, Trace], forks: dict[str, tuple[int, int]],
                 targets: dict[str, Any], scorer: Scorer, models: dict[str, str], prompts: dict[str, str],
                 temperature: float | None, seed: int, run_ids: dict[str, str] | None = None) -> None:
        self.base, self.store, self.traces, self.forks, self.targets = base, store, traces, forks, targets
        self.scorer, self.models, self.prompts, self.temperature, self.seed = scorer, models, prompts, temperature, seed
        self.run_ids = run_ids or {}
        """Pair -> the run id of a trace not loaded yet (on a Ray worker: in `store`, shipped in with the job)."""

    def on_ray(self) -> OnRay:
        """On Ray workers: each case's recorded run shipped to its worker once, the changed prompt's
        text with the job, the forked runs home into this comparison's runs/."""
        dirs = {pair: t.dir for pair, t in self.traces.items()}
        build = _ArmsOnWorker({pair: t.run_id for pair, t in self.traces.items()}, self.forks, self.targets, self.scorer,
                              self.models, {role: Path(f).read_text() for role, f in self.prompts.items()},
                              self.temperature, self.seed)
        return OnRay(build=build, runs=lambda case: [dirs[case.input["pair"]]], home=self.store)

    def ray_code(self) -> list[str]:
        """The files of the graphs the recorded runs ran, whose folder travels to Ray workers."""
        files = {find_graph(t.started.manifest).file for t in self.traces.values()}
        return sorted(f for f in files if f)

    async def __call__(self, case: Case, runtime: Runtime, *, repeat: int, seed: int) -> SolverOutput:
        spec = case.input
        trace = self.traces.get(spec["pair"])
        if trace is None:
            trace = self.traces[spec["pair"]] = self.store.load(self.run_ids[spec["pair"]])
        step, call = self.forks[spec["pair"]]
        spend = Spend()
        drawn = sample_seed(trace, step * 1000 + call, spec["sample"], self.seed)  # both arms alike

        def live_model(role: str) -> ChatModel:
            inner = (self.base.model_named(role, self.models[role]) if spec["arm"] == "changed" and role in self.models
                     else self.base.unrecorded_model(role))
            return Resampled(inner, drawn, self.temperature, spend)

        live = Runtime.from_models({}, prompts=self.base.prompts, fallback=live_model, counter_source=self.base)
        prompts = self.prompts if spec["arm"] == "changed" else {}
        graph = find_graph(trace.started.manifest)
        result = await replay_run(trace, store=self.store, live=live, live_from=step, live_from_call=call,
                                  prompts=prompts, graph=graph, library=self.base.prompts)
        scored = Case(id=spec["pair"], input=trace.started.manifest.input, target=self.targets[spec["pair"]])
        score = await score_result(self.scorer, scored, graph.solver().output(result), result)
        return SolverOutput(output={"score": score, "live_calls": spend.calls, "tokens": spend.tokens},
                            run_id=getattr(result, "run_id", None), trace_dir=getattr(result, "trace_dir", None),
                            prompt_tokens=spend.prompt_tokens, completion_tokens=spend.completion_tokens)


@dataclass(frozen=True)
class _ArmsOnWorker:
    """Builds fork-compare's solver on a Ray worker around its runtime and trace store."""

    run_ids: dict[str, str]
    forks: dict[str, tuple[int, int]]
    targets: dict[str, Any]
    scorer: Scorer
    models: dict[str, str]
    prompt_texts: dict[str, str]
    temperature: float | None
    seed: int

    def __call__(self, runtime: Runtime) -> _ArmSolver:
        import tempfile

        assert runtime.traces is not None
        prompts = {}
        for role, text in self.prompt_texts.items():
            path = Path(tempfile.mkdtemp(prefix="rolegraph-prompt-")) / f"{role}.j2"
            path.write_text(text)
            prompts[role] = str(path)
        return _ArmSolver(runtime, runtime.traces, {}, self.forks, self.targets, self.scorer, self.models, prompts,
                          self.temperature, self.seed, run_ids=self.run_ids)


async def fork_compare(eval_dir: str | Path, *, live: Runtime, at: str, model: str | None = None,
                       prompt: str | Path | None = None, samples: int = 4,
                       scorer: Callable[..., Any] | Scorer | None = None,
                       out: str | Path | None = None, concurrency: int = 4, temperature: float | None = None,
                       seed: int = 0, progress: bool = True, console: Console | None = None,
                       executor: Executor | None = None) -> ForkComparison:
    """Compare the recorded settings of role `at` with a changed `model` name or `prompt` file, from
    each case's own prefix (see the module's doc). Results go to `out` (default EVAL_DIR/fork-compare);
    calling again with the same `out` resumes. `scorer` is `fn(output, target)` as `rolegraph eval`
    takes it (it may ask for `result`, the graph's result object, by name), or a Scorer; each case's
    target is its recorded one. `executor` runs the samples elsewhere (`RayExecutor`: on a Ray
    cluster, the forked traces shipped home into `out`/runs); the results are written here."""
    if (model is None) == (prompt is None):
        raise UserError("give exactly one change: --model ROLE=NAME or --prompt ROLE=FILE")
    eval_dir = Path(eval_dir)
    source = EvalStore(eval_dir / "results.sqlite")
    if not source.path.exists():
        raise UserError(f"{eval_dir} holds no evaluation (no results.sqlite)")
    scoring = as_scorer(scorer if scorer is not None else target_scorer)
    traces: dict[str, Trace] = {}
    forks: dict[str, tuple[int, int]] = {}
    targets: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for r in source.records():
        pair = f"{r.case_id}/{r.repeat}"
        if r.status != "ok" or not r.trace_dir or not Path(r.trace_dir).is_dir():
            skipped[pair] = "no recorded trace" if r.status == "ok" else f"recorded {r.status}"
            continue
        trace = Trace.load(r.trace_dir)
        first = next((c for c in trace.of_kind(ModelCall) if c.role == at and c.step is not None), None)
        if first is None:
            skipped[pair] = f"no call of role '{at}'"
            continue
        traces[pair], forks[pair], targets[pair] = trace, (first.step or 0, first.call_index), r.target
    if not traces:
        raise UserError(f"no case of {eval_dir} made a call of role '{at}'"
                        + (f" ({len(skipped)} skipped)" if skipped else ""))
    change = f"model {at}={model}" if model else f"prompt {at}={prompt}"
    out = Path(out) if out else eval_dir / "fork-compare"
    store = EvalStore(out / "results.sqlite")
    meta = store.meta() if store.path.exists() else {}
    if meta and (meta.get("config") or {}).get("change") != change:
        raise UserError(f"{out} holds a comparison of {(meta.get('config') or {}).get('change')}, not {change}")
    fork_runs = TraceStore(out / "runs", redactor=live.redactor, snapshot_every=live.config.traces.snapshot_every)
    solver = _ArmSolver(live, fork_runs, traces, forks, targets, scoring,
                        {at: model} if model else {}, {at: str(prompt)} if prompt else {}, temperature, seed)

    def cases() -> Iterator[Case]:
        for pair in traces:
            for arm in ARMS:
                for j in range(samples):
                    yield Case(id=f"{pair}/{arm}/{j:03d}", input={"pair": pair, "arm": arm, "sample": j},
                               metadata={"category": arm})

    bench = Benchmark(name="fork-compare", cases=cases, solver=solver, scorers=[Outcome()],
                      config={"eval": str(eval_dir), "change": change, "samples": samples})
    await run_eval(bench, live, store=store, concurrency=concurrency, resume=True, seed=seed, progress=progress,
                   console=console, executor=executor)
    arms: dict[str, dict[str, float]] = {a: {} for a in ARMS}
    per_case: dict[str, dict[str, list[float]]] = {}
    links: dict[str, dict[str, list[str]]] = {}
    for r in store.records():
        if r.status != "ok":
            skipped.setdefault(r.case_id.rsplit("/", 2)[0], f"a sample errored: {r.error}")
            continue
        pair, arm, j = r.case_id.rsplit("/", 2)
        arms[arm][f"{pair}/{j}"] = float(r.output["score"])
        per_case.setdefault(pair, {a: [] for a in ARMS})[arm].append(float(r.output["score"]))
        if r.run_id:
            links.setdefault(pair, {a: [] for a in ARMS})[arm].append(r.run_id)
    comparison = paired_comparison(arms["recorded"], arms["changed"])
    flipped = []
    for pair, scores in sorted(per_case.items()):
        a, b = (sum(scores[x]) / len(scores[x]) if scores[x] else 0.0 for x in ARMS)
        if (a > 0.5) != (b > 0.5):  # its success rate crossed one half
            case_id, repeat = pair.rsplit("/", 1)
            flipped.append(FlippedCase(case_id, int(repeat), a, b, links.get(pair, {}).get("recorded", []),
                                       links.get(pair, {}).get("changed", [])))
    report = ForkComparison(str(eval_dir), at, change, samples, len(per_case), skipped, comparison.mean_a,
                            comparison.mean_b, comparison.diff.value, comparison.diff.low,
                            comparison.diff.high, comparison.mcnemar.p_value if comparison.mcnemar else None,
                            flipped)
    (out / "fork-compare.json").write_text(json.dumps(report.to_json(), indent=1))
    return report


def _pair(text: str | None, flag: str) -> tuple[str, str] | None:
    if text is None:
        return None
    role, sep, value = text.partition("=")
    if not sep or not role or not value:
        raise UserError(f"{flag} {text!r}: give ROLE=VALUE")
    return role, value


def fork_compare_command(
    eval_dir: Annotated[Path, typer.Argument(help="A finished evaluation's directory (holding results.sqlite).")],
    at: Annotated[str, typer.Option("--at", help="Fork each case at the first call of this role.")],
    prompt: Annotated[str | None, typer.Option(help="ROLE=TEMPLATE_FILE: the changed arm's prompt.")] = None,
    model: Annotated[str | None, typer.Option(help="ROLE=MODEL_NAME: the changed arm's model.")] = None,
    samples: Annotated[int, typer.Option(min=1, help="Samples per case and arm.")] = 4,
    scorer: Annotated[str | None, typer.Option(help="module:fn or FILE.py:fn, the scorer `rolegraph eval` takes: "
                                                    "fn(output, target) (it may ask for `result`, the graph's result "
                                                    "object); default: an MCQ's index against the target, or the "
                                                    "graph's success")] = None,
    concurrency: Annotated[int, typer.Option(min=1)] = 4,
    temperature: Annotated[float | None, typer.Option(help="Temperature of the live calls.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Default EVAL_DIR/fork-compare (resumed if there).")] = None,
    executor: ExecutorOpt = "asyncio",
    ray_address: RayAddressOpt = None,
    config: LiveConfigOpt = None,
) -> None:
    """Paired comparison on shared prefixes: fork every case at the first call of --at and run the
    recorded settings and the change from the same prefix, K times each; the paired difference with
    a bootstrap interval, McNemar's test, and the cases that flipped."""
    import asyncio

    p, m = _pair(prompt, "--prompt"), _pair(model, "--model")
    for given in (p, m):
        if given is not None and given[0] != at:
            raise UserError(f"the change names role '{given[0]}' but --at is '{at}'")
    live = Runtime.load(config)
    fn = load_scorer(scorer) if scorer else None

    async def go() -> ForkComparison:
        try:
            return await fork_compare(eval_dir, live=live, at=at, model=m[1] if m else None,
                                      prompt=p[1] if p else None, samples=samples, scorer=fn, out=out, concurrency=concurrency,
                                      temperature=temperature, console=Console(stderr=True),
                                      executor=make_executor(executor, ray_address))
        finally:
            await live.aclose()

    with live:
        report = asyncio.run(go())
    report.print(Console())
