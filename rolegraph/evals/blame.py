"""Counterfactual blame: which model call of a recorded run made it fail.

A sample from model call i answers every call before i from the trace and runs call i and
everything after it live (tools after the fork point run live too), with its own seed, and scores
the outcome. `p_i` is the success rate when the run is re-sampled from call i; the recorded outcome
closes the series. The decisive call is the one with the largest drop from `p_i` to `p_(i+1)`: the
recorded output of call i is what cost the most. Calls are in run order (step, then call within the
step; parallel branches in the order they were sent), so each point's recorded prefix holds the
previous one's.

Where to sample: `bisect` looks for the one drop (see `rolegraph.evals._blame_search`) in a few
points, the cheap late calls preferred, and sweeps a range only where its samples show more than one
drop or a rise; `sweep` samples every call K times (`adaptive`: until its interval decides it).
`budget_calls` is a hard bound on the live calls (each is counted before it is made). Every
(call, sample) is a case of the eval runner, so blame has its progress bar, its SQLite results,
`resume` after a kill with nothing lost or repeated, and each sample's forked trace linked.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic_core import to_jsonable_python
from rich.console import Console
from rich.table import Table

from rolegraph._cli_options import LiveConfigOpt, RunsDirOpt
from rolegraph.errors import UserError
from rolegraph.evals._blame_page import write_blame_page
from rolegraph.evals._blame_sampling import (
    SPENT_LOG,
    Budget,
    Candidate,
    ForkSolver,
    Sampler,
    Tally,
    candidates_of,
    scoring_case,
)
from rolegraph.evals._blame_search import MIN_SAMPLES, Bisection, SearchLog, sweep
from rolegraph.evals._core import Scorer
from rolegraph.evals._runner import Executor
from rolegraph.evals._scoring import as_scorer, score_result
from rolegraph.evals._scoring import load_scorer as _load_scorer
from rolegraph.evals._shell import ExecutorOpt, RayAddressOpt, make_executor
from rolegraph.evals._store import EvalStore
from rolegraph.graphs import Graph, find_graph, replay_run
from rolegraph.runtime import Runtime
from rolegraph.traces import NodeStarted, Trace, TraceStore

__all__ = ["BlameReport", "BlameStep", "Method", "blame", "default_scorer", "load_scorer", "write_blame_page"]

MIN_ADAPTIVE = MIN_SAMPLES
"""Adaptive mode: samples a call gets before its interval may decide it."""
MIN_SEPARATED = MIN_SAMPLES
"""Samples each side needs before blame says the intervals separate the decisive call."""

SWEEP_SAMPLES = 8
"""K of a sweep: samples per call."""
BISECT_SAMPLES = 16
"""K of a bisection: the most samples a call gets (it samples few calls, each until decided)."""

Method = Literal["bisect", "sweep"]
"""`bisect`: search for the one drop in a few points; `sweep`: sample every call."""


@dataclass
class BlameStep:
    """One model call of the recorded run and what re-sampling from it gave."""

    index: int
    """The call's place among the run's model calls in run order (0 = first)."""
    step: int
    call_index: int
    """Its place within its node step."""
    node: str
    role: str
    samples: int = 0
    """Samples scored (0: not sampled)."""
    successes: float = 0.0
    p: float = float("nan")
    low: float = 0.0
    high: float = 1.0
    drop: float | None = None
    """p of this call minus p of the next sampled one (or the recorded outcome, after the last)."""
    live_calls: int = 0
    tokens: int = 0
    """Prompt and completion tokens of those live calls."""
    cut: int = 0
    """Samples the budget stopped before they ended (not scored; their calls are counted)."""
    traces: list[str] = field(default_factory=list)
    """The sampled runs' trace ids."""


@dataclass
class BlameReport:
    run_id: str
    graph: str
    outcome: float
    """The recorded run's own score (it closes the series)."""
    samples: int
    """K: the most samples a call gets."""
    adaptive: bool
    steps: list[BlameStep]
    decisive: int | None
    """`index` of the decisive call, or None when no call was sampled."""
    separated: bool
    """Whether the decisive call's interval is above the next point's, each with at least
    `MIN_SEPARATED` samples (the drop is not noise)."""
    evidence: str
    live_calls: int
    """Live model calls this blame made, every try of it (a killed one's included)."""
    dir: str
    errors: int = 0
    """Samples that ended in an error (kept out of p; listed in results.sqlite)."""
    method: str = "sweep"
    """'bisect', 'sweep' or 'adaptive sweep'."""
    tokens: int = 0
    """Prompt and completion tokens of the scored and cut samples' live calls."""
    budget_calls: int | None = None
    budget_reached: bool = False
    """The budget stopped the search: what is decided and what is not is in `notes`."""
    located: bool = True
    """The decisive call's drop is to the very next call (not across calls left unsampled)."""
    notes: list[str] = field(default_factory=list)
    """The search's fallbacks (several drops, a rise), and what the budget left open."""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = to_jsonable_python(asdict(self))
        return data

    @property
    def cost(self) -> str:
        budget = f" of a budget of {self.budget_calls}" if self.budget_calls is not None else ""
        return f"{self.live_calls} live model calls{budget}, {self.tokens:,} tokens"

    def print(self, console: Console) -> None:
        kind = "adaptive, up to " if self.adaptive else ("bisection, up to " if self.method == "bisect" else "")
        table = Table(title=f"blame: run {self.run_id} ({self.graph}), recorded outcome {self.outcome:g}, "
                            f"{kind}{self.samples} samples per call")
        for col in ("call", "step", "node", "role", "samples", "p (success)", "95% CI", "drop", "live calls"):
            table.add_column(col, justify="right" if col not in ("node", "role") else "left")
        for s in self.steps:
            mark = " ◀" if s.index == self.decisive else ""
            table.add_row(f"{s.index}{mark}", str(s.step), s.node, s.role, str(s.samples),
                          "—" if s.samples == 0 else f"{s.p:.2f}", f"{s.low:.2f}-{s.high:.2f}" if s.samples else "",
                          "" if s.drop is None else f"{s.drop:+.2f}", str(s.live_calls) if s.live_calls else "")
        console.print(table)
        console.print(self.evidence)
        for note in self.notes:
            console.print(f"[yellow]{note}")
        console.print(f"cost: {self.cost}")
        if self.errors:
            console.print(f"[yellow]{self.errors} sample(s) errored and are left out of p: see {self.dir}/results.sqlite")


# -- scorers ---------------------------------------------------------------------------------


def default_scorer(result: Any) -> float:
    """The graph's own success measure: a `success` field; a game's result (the first seat that is
    not an engine or a solver has not lost); else a UserError asking for --scorer."""
    success = getattr(result, "success", None)
    if isinstance(success, bool):
        return float(success)
    returns, seats = getattr(result, "returns", None), getattr(result, "seats", None)
    if isinstance(returns, list) and isinstance(seats, list) and returns:
        seat = next((i for i, s in enumerate(seats) if str(s).startswith(("llm", "model", "player"))), 0)
        return float(returns[seat] >= 0)
    raise UserError(f"{type(result).__name__} has no success measure (a `success` field or a game's returns): "
                    "give --scorer module:fn, a function fn(output, target) returning a bool or a score in [0, 1]")


def load_scorer(ref: str) -> Scorer:
    """`module:fn` or `FILE.py:fn`: the scorer `rolegraph eval` takes, `fn(output, target)` (see
    `rolegraph.evals.FunctionScorer`), or a Scorer object."""
    return _load_scorer(ref)


# -- blame -----------------------------------------------------------------------------------


async def blame(trace: Trace, *, live: Runtime, out: str | Path, scorer: Callable[..., Any] | Scorer | None = None,
                samples: int | None = None, adaptive: bool = False, roles: Sequence[str] | None = None,
                steps: tuple[int, int] | None = None, max_calls: int | None = None, concurrency: int = 4,
                temperature: float | None = None, seed: int = 0, graph: Graph[Any] | None = None,
                progress: bool = True, console: Console | None = None, method: Method = "sweep",
                budget_calls: int | None = None, target: Any = None, executor: Executor | None = None) -> BlameReport:
    """Blame the model calls of `trace` (see the module's doc). Results go to `out`
    (results.sqlite, runs/, live-calls.log, blame.json); calling again with the same `out` resumes:
    samples already scored are kept, none is run twice.

    `method="bisect"` searches for the one drop, a call getting up to `samples` samples (default
    16: it samples few calls); `"sweep"` samples every call `samples` times (default 8), or with
    `adaptive` stops sampling a call once its Wilson interval lies on one side of 1/2 (after 4).
    `budget_calls` (`max_calls` is its former name) is a hard bound on the live model calls, kills
    and resumes included: what it left undecided is in the report's notes. `scorer` is
    `fn(output, target)` as `rolegraph eval` takes it (it may ask for `result`, the graph's result
    object, by name), or a Scorer; `target` is what it compares against (default None). `executor`
    runs the samples elsewhere (`RayExecutor`: on a Ray cluster, the forked traces shipped home
    into `out`/runs); the results are written here, by this process, as on asyncio."""
    samples = samples if samples is not None else (BISECT_SAMPLES if method == "bisect" else SWEEP_SAMPLES)
    if samples < 1:
        raise UserError("--samples must be at least 1")
    if method not in ("bisect", "sweep"):
        raise UserError(f"unknown blame method {method!r}: use 'bisect' or 'sweep'")
    if adaptive and method == "bisect":
        raise UserError("--adaptive is a kind of sweep: give it with --sweep (bisection always stops when decided)")
    budget_calls = budget_calls if budget_calls is not None else max_calls
    if budget_calls is not None and budget_calls < 1:
        raise UserError("--budget-calls must be at least 1")
    if not trace.complete:
        raise UserError(f"run {trace.run_id} did not finish ({trace.status}); resume it before blaming it")
    graph = graph or find_graph(trace.started.manifest)
    scoring = as_scorer(scorer if scorer is not None else default_scorer)
    out = Path(out)
    store = EvalStore(out / "results.sqlite")
    meta = store.meta() if store.path.exists() else {}
    if meta and (meta.get("config") or {}).get("run") != trace.run_id:
        raise UserError(f"{out} holds a blame of run {(meta.get('config') or {}).get('run')}, not {trace.run_id}")
    case = scoring_case(trace, target)
    recorded = await replay_run(trace, graph=graph, library=live.prompts)  # the recorded outcome, offline
    outcome = await score_result(scoring, case, graph.solver().output(recorded), recorded)
    nodes = {e.step: e.node for e in trace.of_kind(NodeStarted)}
    candidates = candidates_of(trace, roles, steps, nodes)
    if not candidates:
        raise UserError(f"run {trace.run_id} has no model call to blame"
                        + (" among the roles/steps given" if roles or steps else ""))
    budget = Budget(budget_calls, out / SPENT_LOG)
    fork_runs = TraceStore(out / "runs", redactor=live.redactor, snapshot_every=live.config.traces.snapshot_every)
    solver = ForkSolver(trace, graph, live, fork_runs, scoring, case,
                        temperature, seed, budget)
    sampler = Sampler(solver=solver, store=store, live=live, candidates=candidates, budget=budget,
                      config={"run": trace.run_id, "samples": samples, "adaptive": adaptive, "seed": seed,
                              "method": method},
                      concurrency=concurrency, seed=seed, progress=progress, console=console, executor=executor)
    hold = getattr(executor, "hold", None)  # a Ray executor keeps its workers from round to round
    try:
        async with hold() if callable(hold) else contextlib.nullcontext():
            if method == "bisect":
                log = await Bisection(sampler, outcome, samples).run()
            else:
                log = await sweep(sampler, samples, adaptive=adaptive)
    finally:
        budget.close()
    kind = "bisect" if method == "bisect" else ("adaptive sweep" if adaptive else "sweep")
    report = _report(trace, graph.name, outcome, candidates, sampler, samples, adaptive, out, kind, log)
    report.errors = sum(n for status, n in store.status_counts().items() if status != "ok") if store.path.exists() else 0
    report.live_calls = max(budget.spent, sum(s.live_calls for s in report.steps))
    report.budget_calls, report.budget_reached = budget_calls, sampler.stopped
    if sampler.stopped:
        report.notes.append(f"the budget of {budget_calls} live calls ran out: "
                            + (f"the drop lies between {_name(candidates, log.open[0])} and "
                               f"{_name(candidates, log.open[1])} and is not located"
                               if log.open is not None else "calls left unsampled are not decided"))
    (out / "blame.json").write_text(json.dumps(report.to_json(), indent=1))
    return report


def _name(candidates: Sequence[Candidate], pos: int) -> str:
    return "the recorded outcome" if pos >= len(candidates) else f"call {candidates[pos].index}"


def _report(trace: Trace, graph: str, outcome: float, candidates: list[Candidate], sampler: Sampler, samples: int,
            adaptive: bool, out: Path, method: str, log: SearchLog) -> BlameReport:
    steps = []
    for pos, c in enumerate(candidates):
        t = sampler.tally(pos) if sampler.tallies else Tally()
        s = BlameStep(c.index, c.step, c.call_index, c.node, c.role, samples=t.n, successes=t.s,
                      live_calls=t.live, tokens=t.tokens, cut=t.cut, traces=t.traces)
        if t.n:
            ci = t.estimate
            s.p, s.low, s.high = t.s / t.n, ci.low, ci.high
        steps.append(s)
    position = {s.index: pos for pos, s in enumerate(steps)}
    sampled = [s for s in steps if s.samples]
    following: dict[int, BlameStep | None] = dict(zip((s.index for s in sampled), [*sampled[1:], None], strict=False))
    for s in sampled:
        nxt = following[s.index]
        s.drop = s.p - (nxt.p if nxt is not None else outcome)

    def adjacent(s: BlameStep) -> bool:
        nxt = following[s.index]
        return position[s.index] + 1 == (position[nxt.index] if nxt is not None else len(steps))

    # a drop to the very next call locates a call; one across unsampled calls only brackets it
    pool = [s for s in sampled if adjacent(s)] or sampled
    decisive = max(pool, key=lambda s: (s.drop or 0.0, s.index), default=None)  # a tie: the later call
    separated, located, evidence = False, True, "no call was sampled"
    if decisive is not None:
        nxt = following[decisive.index]
        located = adjacent(decisive)
        after = (f"{nxt.p:.2f} [{nxt.low:.2f}, {nxt.high:.2f}] from call {nxt.index}" if nxt is not None
                 else f"the recorded outcome {outcome:g}")
        enough = decisive.samples >= MIN_SEPARATED and (nxt is None or nxt.samples >= MIN_SEPARATED)
        separated = enough and decisive.low > (nxt.high if nxt is not None else outcome)
        evidence = (f"decisive: call {decisive.index} (step {decisive.step}, node {decisive.node}, role "
                    f"{decisive.role}): re-sampled from it the run succeeds {decisive.p:.2f} "
                    f"[{decisive.low:.2f}, {decisive.high:.2f}] of the time, against {after} once its recorded "
                    f"output is kept (drop {decisive.drop:+.2f}). ")
        if not located:
            evidence += (f"The calls between it and {'call ' + str(nxt.index) if nxt else 'the end'} were not "
                         "sampled: the drop may be at any of them. ")
        if separated:
            evidence += "The intervals separate it from the next call."
        elif not enough:
            evidence += (f"Fewer than {MIN_SEPARATED} samples on one side: too few to say the intervals separate "
                         "(--samples).")
        else:
            evidence += "The intervals overlap the next call's: more samples (--samples) would be needed to be sure."
    notes = list(log.notes)
    if log.undecided:
        notes.append("undecided after every sample: " + ", ".join(_name(candidates, p) for p in log.undecided)
                     + " (their estimates decided their side)")
    return BlameReport(trace.run_id, graph, outcome, samples, adaptive, steps,
                       decisive.index if decisive is not None else None, separated, evidence,
                       sum(s.live_calls for s in steps), str(out), method=method,
                       tokens=sum(s.tokens for s in steps), located=located, notes=notes)


# -- the command -----------------------------------------------------------------------------


def _steps_range(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", text)
    if m is None:
        raise UserError(f"--steps {text!r}: give A-B (node steps, inclusive) or one step")
    a = int(m[1])
    return a, int(m[2]) if m[2] else a


def blame_command(
    run: Annotated[str, typer.Argument(help="Run id, id prefix, 'last', or directory.")],
    samples: Annotated[int | None, typer.Option(min=1, help="The most re-samples a model call gets (K; default 16, "
                                                           "with --sweep 8); bisection and --adaptive stop sooner "
                                                           "once a call's interval decides it.")] = None,
    sweep: Annotated[bool, typer.Option("--sweep", help="Sample every call K times instead of searching for the "
                                                        "drop (the cost grows with the square of the run's length).")] = False,
    scorer: Annotated[str | None, typer.Option(help="module:fn or FILE.py:fn, the scorer `rolegraph eval` takes: "
                                                    "fn(output, target) -> bool or [0, 1] (it may ask for `result`, "
                                                    "the graph's result object); default: the graph's own success "
                                                    "measure.")] = None,
    target: Annotated[str | None, typer.Option(help="The target the scorer compares against, as JSON "
                                                    "(a bare word is a string).")] = None,
    adaptive: Annotated[bool, typer.Option(help="With --sweep: stop sampling a call once its interval is "
                                                "decided.")] = False,
    roles: Annotated[str | None, typer.Option(help="Only calls of these roles (comma-separated).")] = None,
    steps: Annotated[str | None, typer.Option(help="Only calls in these node steps: A-B.")] = None,
    budget_calls: Annotated[int | None, typer.Option("--budget-calls", "--max-calls", min=1,
                                                     help="A hard bound on the live model calls (resumes included): "
                                                          "stop there and report what is decided.")] = None,
    concurrency: Annotated[int, typer.Option(min=1)] = 4,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature of the live calls "
                                                           "(default: each recorded request's).")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    out: Annotated[Path | None, typer.Option("--out", help="Where results go (default blame/RUN_ID); "
                                                          "an existing one is resumed.")] = None,
    executor: ExecutorOpt = "asyncio",
    ray_address: RayAddressOpt = None,
    runs: RunsDirOpt = None,
    config: LiveConfigOpt = None,
) -> None:
    """Which model call made a run fail: re-sample the run from a call (the calls before it answered
    from the trace) and see how often it still succeeds. By default a search for the one drop in a
    few calls (searching or sweeping again only where the samples show another drop or a rise);
    --sweep samples every call. Reports each sampled call's success rate, the drops, the decisive call and the live calls
    and tokens spent, with a table, blame.json and blame.html. Resumable: run it again with the same --out."""
    import asyncio

    if adaptive and not sweep:
        sweep = True  # --adaptive alone keeps meaning the adaptive sweep
    store = TraceStore.configured(runs, config=config)
    trace = store.load(run)
    where = out or Path("blame") / trace.run_id
    fn = load_scorer(scorer) if scorer else None
    expected = _target(target)
    live = Runtime.load(config)
    console = Console(stderr=True)

    async def go() -> BlameReport:
        try:
            return await blame(trace, live=live, out=where, scorer=fn, samples=samples, adaptive=adaptive,
                               roles=[r.strip() for r in roles.split(",") if r.strip()] if roles else None,
                               steps=_steps_range(steps), concurrency=concurrency, temperature=temperature,
                               seed=seed, console=console, method="sweep" if sweep else "bisect",
                               budget_calls=budget_calls, target=expected,
                               executor=make_executor(executor, ray_address))
        finally:
            await live.aclose()

    with live:
        report = asyncio.run(go())
    out_console = Console()
    report.print(out_console)
    page = write_blame_page(report, where, runs=TraceStore(where / "runs"))
    out_console.print(f"blame.json and {page}")


def _target(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
