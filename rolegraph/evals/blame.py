"""Counterfactual blame: which model call of a recorded run made it fail.

For each model call i of the run, in order: every call before i is answered from the trace, call i
and everything after it are re-sampled live (tools after the fork point run live too), K times with
different seeds, and each outcome is scored. `p_i` is the success rate when the run is re-sampled
from call i; the recorded outcome closes the series. The decisive call is the one with the largest
drop from `p_i` to `p_(i+1)`: the recorded output of call i is what cost the most.

Every (call, sample) is a case of the eval runner, so blame has its progress bar, its SQLite results,
`resume` after a kill with nothing lost or repeated, and each sample's forked trace linked.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic_core import to_jsonable_python
from rich.console import Console
from rich.table import Table

from rolegraph._cli_options import LiveConfigOpt, RunsDirOpt
from rolegraph.errors import UserError
from rolegraph.evals._any import load_function
from rolegraph.evals._blame_page import write_blame_page
from rolegraph.evals._core import Benchmark, Case, Score, SolverOutput
from rolegraph.evals._runner import run_eval
from rolegraph.evals._store import EvalStore
from rolegraph.evals.metrics import wilson_ci
from rolegraph.graphs import Graph, find_graph, replay_run
from rolegraph.models import ChatModel, ChatRequest, ChatResponse
from rolegraph.runtime import Runtime
from rolegraph.traces import ModelCall, NodeStarted, Trace, TraceStore

__all__ = ["BlameReport", "BlameStep", "blame", "default_scorer", "load_scorer", "write_blame_page"]

MIN_ADAPTIVE = 4
"""Adaptive mode: samples a call gets before its interval may decide it."""


@dataclass
class BlameStep:
    """One model call of the recorded run and what re-sampling from it gave."""

    index: int
    """The call's place among the run's model calls (0 = first)."""
    step: int
    call_index: int
    """Its place within its node step."""
    node: str
    role: str
    samples: int = 0
    successes: float = 0.0
    p: float = float("nan")
    low: float = 0.0
    high: float = 1.0
    drop: float | None = None
    """p of this call minus p of the next (or the recorded outcome, after the last)."""
    live_calls: int = 0
    traces: list[str] = field(default_factory=list)
    """The sampled runs' trace ids."""


@dataclass
class BlameReport:
    run_id: str
    graph: str
    outcome: float
    """The recorded run's own score (it closes the series)."""
    samples: int
    adaptive: bool
    steps: list[BlameStep]
    decisive: int | None
    """`index` of the decisive call, or None when no call was sampled."""
    separated: bool
    """Whether the decisive call's interval is above the next point's (the drop is not noise)."""
    evidence: str
    live_calls: int
    dir: str
    errors: int = 0
    """Samples that ended in an error (kept out of p; listed in results.sqlite)."""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = to_jsonable_python(asdict(self))
        return data

    def print(self, console: Console) -> None:
        table = Table(title=f"blame: run {self.run_id} ({self.graph}), recorded outcome {self.outcome:g}, "
                            f"{'adaptive, up to ' if self.adaptive else ''}{self.samples} samples per call")
        for col in ("call", "step", "node", "role", "samples", "p (success)", "95% CI", "drop"):
            table.add_column(col, justify="right" if col not in ("node", "role") else "left")
        for s in self.steps:
            mark = " ◀" if s.index == self.decisive else ""
            table.add_row(f"{s.index}{mark}", str(s.step), s.node, s.role, str(s.samples),
                          "—" if s.samples == 0 else f"{s.p:.2f}", f"{s.low:.2f}-{s.high:.2f}" if s.samples else "",
                          "" if s.drop is None else f"{s.drop:+.2f}")
        console.print(table)
        console.print(self.evidence)
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
                    "give --scorer module:fn, a function of the result returning a bool or a score in [0, 1]")


def load_scorer(ref: str) -> Callable[[Any], float]:
    """`module:fn` or `FILE.py:fn`: a function of the graph's result."""
    fn = load_function(ref)
    if not callable(fn):
        raise UserError(f"--scorer {ref!r} is not a function")
    return fn  # type: ignore[no-any-return]


def _score(scorer: Callable[[Any], Any], result: Any) -> float:
    value = float(scorer(result))
    if not 0.0 <= value <= 1.0:
        raise UserError(f"the scorer returned {value}; it must return a bool or a score in [0, 1]")
    return value


# -- sampling --------------------------------------------------------------------------------


class _Resampled:
    """A live model whose every request carries this sample's seed (and temperature, if set)."""

    def __init__(self, inner: ChatModel, seed: int, temperature: float | None, counter: list[int]) -> None:
        self.inner, self.seed, self.temperature, self.counter = inner, seed, temperature, counter

    async def chat(self, request: ChatRequest) -> ChatResponse:
        self.counter[0] += 1
        update: dict[str, Any] = {"seed": self.seed + self.counter[0]}
        if self.temperature is not None:
            update["temperature"] = self.temperature
        return await self.inner.chat(request.model_copy(update=update))

    async def aclose(self) -> None:  # the base runtime owns the endpoint
        return None


def _sample_seed(trace: Trace, index: int, sample: int, seed: int) -> int:
    """The same for a blame of the same run (a resumed sample draws what it would have), different
    for runs with other inputs or seeds."""
    manifest = trace.started.manifest
    what = json.dumps([manifest.graph, manifest.input, manifest.seed, index, sample, seed], sort_keys=True, default=str)
    digest = hashlib.sha256(what.encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x3FFFFFFF


@dataclass
class _Candidate:
    index: int
    step: int
    call_index: int
    node: str
    role: str


def _candidates(trace: Trace, roles: Sequence[str] | None, steps: tuple[int, int] | None) -> list[_Candidate]:
    nodes = {e.step: e.node for e in trace.of_kind(NodeStarted)}
    calls = [c for c in trace.of_kind(ModelCall) if c.step is not None and c.response is not None]
    out = []
    for i, c in enumerate(calls):
        if roles and c.role not in roles:
            continue
        if steps and not steps[0] <= (c.step or 0) <= steps[1]:
            continue
        out.append(_Candidate(i, c.step or 0, c.call_index, nodes.get(c.step or 0, "?"), c.role))
    return out


class _ForkSolver:
    """One case = one (call, sample): fork the run at the call and score the outcome."""

    def __init__(self, trace: Trace, graph: Graph[Any], base: Runtime, store: TraceStore,
                 scorer: Callable[[Any], Any], temperature: float | None, seed: int) -> None:
        self.trace, self.graph, self.base, self.store = trace, graph, base, store
        self.scorer, self.temperature, self.seed = scorer, temperature, seed

    async def __call__(self, case: Case, runtime: Runtime, *, repeat: int, seed: int) -> SolverOutput:
        spec = case.input
        counter = [0]
        sample_seed = _sample_seed(self.trace, spec["index"], spec["sample"], self.seed)

        def live_model(role: str) -> ChatModel:
            return _Resampled(self.base.unrecorded_model(role), sample_seed, self.temperature, counter)

        # memories count tokens as a live run would
        live = Runtime.from_models({}, prompts=self.base.prompts, fallback=live_model, counter_source=self.base)
        result = await replay_run(self.trace, store=self.store, live=live, live_from=spec["step"],
                                  live_from_call=spec["call_index"], graph=self.graph, library=self.base.prompts)
        return SolverOutput(output={"score": _score(self.scorer, result), "live_calls": counter[0]},
                            run_id=getattr(result, "run_id", None), trace_dir=getattr(result, "trace_dir", None))


@dataclass(frozen=True)
class _Outcome:
    name: str = "success"

    async def __call__(self, case: Case, output: Any) -> Score:
        return Score(value=float(output["score"]))


def _decided(successes: float, n: int) -> bool:
    """Adaptive mode: the interval lies wholly on one side of one half."""
    if n < MIN_ADAPTIVE:
        return False
    ci = wilson_ci(round(successes), n)
    return ci.low > 0.5 or ci.high < 0.5


async def blame(trace: Trace, *, live: Runtime, out: str | Path, scorer: Callable[[Any], Any] | None = None,
                samples: int = 8, adaptive: bool = False, roles: Sequence[str] | None = None,
                steps: tuple[int, int] | None = None, max_calls: int | None = None, concurrency: int = 4,
                temperature: float | None = None, seed: int = 0, graph: Graph[Any] | None = None,
                progress: bool = True, console: Console | None = None) -> BlameReport:
    """Blame the model calls of `trace` (see the module's doc). Results go to `out`
    (results.sqlite, runs/, blame.json); calling again with the same `out` resumes: samples
    already scored are kept, none is run twice. `adaptive` stops sampling a call once its Wilson
    interval lies on one side of 1/2 (after 4 samples); `max_calls` stops starting new rounds
    once that many live model calls were made."""
    if samples < 1:
        raise UserError("--samples must be at least 1")
    if not trace.complete:
        raise UserError(f"run {trace.run_id} did not finish ({trace.status}); resume it before blaming it")
    graph = graph or find_graph(trace.started.manifest)
    scorer = scorer or default_scorer
    out = Path(out)
    store = EvalStore(out / "results.sqlite")
    meta = store.meta() if store.path.exists() else {}
    if meta and (meta.get("config") or {}).get("run") != trace.run_id:
        raise UserError(f"{out} holds a blame of run {(meta.get('config') or {}).get('run')}, not {trace.run_id}")
    recorded = await replay_run(trace, graph=graph, library=live.prompts)  # the recorded outcome, offline
    outcome = _score(scorer, recorded)
    candidates = _candidates(trace, roles, steps)
    if not candidates:
        raise UserError(f"run {trace.run_id} has no model call to blame"
                        + (" among the roles/steps given" if roles or steps else ""))
    solver = _ForkSolver(trace, graph, live, TraceStore(out / "runs", redactor=live.redactor), scorer,
                         temperature, seed)
    config = {"run": trace.run_id, "samples": samples, "adaptive": adaptive, "seed": seed}
    target = {c.index: (min(MIN_ADAPTIVE, samples) if adaptive or max_calls else samples) for c in candidates}

    def cases() -> Iterator[Case]:
        for c in candidates:
            for j in range(target[c.index]):
                yield Case(id=f"call{c.index:04d}-s{j:03d}", input={"index": c.index, "step": c.step,
                                                                    "call_index": c.call_index, "sample": j},
                           metadata={"category": f"call {c.index}"})

    bench = Benchmark(name="blame", cases=cases, solver=solver, scorers=[_Outcome()], config=config)
    while True:
        await run_eval(bench, live, store=store, concurrency=concurrency, resume=True, seed=seed, progress=progress,
                       console=console)
        tally = _tally(store)
        used = sum(t["live"] for t in tally.values())
        if max_calls is not None and used >= max_calls:
            break
        grow = [c.index for c in candidates if target[c.index] < samples
                and not (adaptive and _decided(tally.get(c.index, {}).get("s", 0.0), target[c.index]))]
        if not grow:
            break
        for i in grow:
            target[i] = min(samples, target[i] + (2 if adaptive else samples))
    report = _report(trace, graph.name, outcome, candidates, _tally(store), samples, adaptive, out)
    report.errors = sum(n for status, n in store.status_counts().items() if status != "ok")
    (out / "blame.json").write_text(json.dumps(report.to_json(), indent=1))
    return report


def _tally(store: EvalStore) -> dict[int, dict[str, Any]]:
    by: dict[int, dict[str, Any]] = {}
    for r in store.records():
        if r.status != "ok":
            continue
        i = int(r.case_id[4:8])
        t = by.setdefault(i, {"n": 0, "s": 0.0, "live": 0, "traces": []})
        t["n"] += 1
        t["s"] += float(r.output["score"])
        t["live"] += int(r.output.get("live_calls", 0))
        if r.run_id:
            t["traces"].append(r.run_id)
    return by


def _report(trace: Trace, graph: str, outcome: float, candidates: list[_Candidate], tally: dict[int, dict[str, Any]],
            samples: int, adaptive: bool, out: Path) -> BlameReport:
    steps = []
    for c in candidates:
        t = tally.get(c.index, {"n": 0, "s": 0.0, "live": 0, "traces": []})
        s = BlameStep(c.index, c.step, c.call_index, c.node, c.role, samples=t["n"], successes=t["s"],
                      live_calls=t["live"], traces=t["traces"])
        if t["n"]:
            ci = wilson_ci(round(t["s"]), t["n"])
            s.p, s.low, s.high = t["s"] / t["n"], ci.low, ci.high
        steps.append(s)
    sampled = [s for s in steps if s.samples]
    for s, nxt in zip(sampled, [*sampled[1:], None], strict=True):
        s.drop = s.p - (nxt.p if nxt is not None else outcome)
    decisive = max(sampled, key=lambda s: (s.drop or 0.0, s.index), default=None)  # a tie: the later call
    separated, evidence = False, "no call was sampled"
    if decisive is not None:
        pos = sampled.index(decisive)
        nxt = sampled[pos + 1] if pos + 1 < len(sampled) else None
        after = (f"{nxt.p:.2f} [{nxt.low:.2f}, {nxt.high:.2f}] from call {nxt.index}" if nxt is not None
                 else f"the recorded outcome {outcome:g}")
        next_high = nxt.high if nxt is not None else outcome
        separated = decisive.low > next_high
        evidence = (f"decisive: call {decisive.index} (step {decisive.step}, node {decisive.node}, role "
                    f"{decisive.role}): re-sampled from it the run succeeds {decisive.p:.2f} "
                    f"[{decisive.low:.2f}, {decisive.high:.2f}] of the time, against {after} once its recorded "
                    f"output is kept (drop {decisive.drop:+.2f}). ")
        evidence += ("The intervals separate it from the next call." if separated else
                     "The intervals overlap the next call's: more samples (--samples) would be needed to be sure.")
    return BlameReport(trace.run_id, graph, outcome, samples, adaptive, steps,
                       decisive.index if decisive is not None else None, separated, evidence,
                       sum(s.live_calls for s in steps), str(out))


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
    samples: Annotated[int, typer.Option(min=1, help="Re-samples per model call (K).")] = 8,
    scorer: Annotated[str | None, typer.Option(help="module:fn or FILE.py:fn scoring the graph's result (bool or "
                                                    "[0, 1]); default: the graph's own success measure.")] = None,
    adaptive: Annotated[bool, typer.Option(help="Stop sampling a call once its interval is decided.")] = False,
    roles: Annotated[str | None, typer.Option(help="Only calls of these roles (comma-separated).")] = None,
    steps: Annotated[str | None, typer.Option(help="Only calls in these node steps: A-B.")] = None,
    max_calls: Annotated[int | None, typer.Option("--max-calls", min=1,
                                                  help="Start no new round of samples past this many live calls.")] = None,
    concurrency: Annotated[int, typer.Option(min=1)] = 4,
    temperature: Annotated[float | None, typer.Option(help="Sampling temperature of the live calls "
                                                           "(default: each recorded request's).")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    out: Annotated[Path | None, typer.Option("--out", help="Where results go (default blame/RUN_ID); "
                                                          "an existing one is resumed.")] = None,
    runs: RunsDirOpt = None,
    config: LiveConfigOpt = None,
) -> None:
    """Which model call made a run fail: re-sample the run from each call K times (the calls before
    it answered from the trace) and report each call's success rate, the drops, and the decisive call,
    with a table, blame.json and blame.html. Resumable: run it again with the same --out."""
    import asyncio

    from rolegraph.config import load_config

    store = TraceStore(runs if runs is not None else load_config(config).traces.dir)
    trace = store.load(run)
    target = out or Path("blame") / trace.run_id
    fn = load_scorer(scorer) if scorer else None
    live = Runtime.load(config)
    console = Console(stderr=True)

    async def go() -> BlameReport:
        try:
            return await blame(trace, live=live, out=target, scorer=fn, samples=samples, adaptive=adaptive,
                               roles=[r.strip() for r in roles.split(",") if r.strip()] if roles else None,
                               steps=_steps_range(steps), max_calls=max_calls, concurrency=concurrency,
                               temperature=temperature, seed=seed, console=console)
        finally:
            await live.aclose()

    with live:
        report = asyncio.run(go())
    out_console = Console()
    report.print(out_console)
    page = write_blame_page(report, target, runs=TraceStore(target / "runs"))
    out_console.print(f"blame.json and {page}")
