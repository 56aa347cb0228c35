"""How blame takes its samples: a sample is the recorded run forked at one model call and run live
from there (a case of the eval runner, so it is written once and resumed after a kill), its live
calls seeded, counted, priced in tokens and held under a hard budget."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from rolegraph.evals._core import Benchmark, Case, Score, Scorer, SolverOutput
from rolegraph.evals._ray import OnRay
from rolegraph.evals._runner import Executor, run_eval
from rolegraph.evals._scoring import score_result
from rolegraph.evals._store import EvalStore
from rolegraph.evals.metrics import Estimate, wilson_ci
from rolegraph.graphs import Graph, replay_run
from rolegraph.models import ChatModel, ChatRequest, ChatResponse
from rolegraph.runtime import Runtime
from rolegraph.traces import Trace, TraceStore

SPENT_LOG = "live-calls.log"
"""One line per live model call a blame made (written before the call): its true cost, kills included."""


@dataclass
class Spend:
    """What one sample's live calls cost."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cut: bool = False
    """The budget ran out in the middle of this sample."""

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class BudgetExhausted(Exception):
    """A live call the budget has no room for: the sample stops there."""


class Budget:
    """A hard bound on the live model calls of a blame, kept across resumes: each call is counted
    (one line of `live-calls.log`) before it is made, and none is made past `limit`."""

    def __init__(self, limit: int | None, log: Path | None) -> None:
        self.limit, self.log = limit, log
        self.spent = _lines(log) if log is not None else 0
        self._fd: int | None = None

    @property
    def left(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.spent)

    def take(self, where: str) -> None:
        if self.limit is not None and self.spent >= self.limit:
            raise BudgetExhausted(f"the budget of {self.limit} live calls is spent")
        self.spent += 1
        if self.log is not None:
            if self._fd is None:
                self.log.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(self._fd, f"{where}\n".encode())

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def record(self, calls: int, where: str) -> None:
        """Count `calls` made elsewhere (on Ray workers, counted there against the same limit)."""
        for _ in range(max(0, calls)):
            self.spent += 1
            if self.log is not None:
                if self._fd is None:
                    self.log.parent.mkdir(parents=True, exist_ok=True)
                    self._fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                os.write(self._fd, f"{where}\n".encode())


class _Counter:
    """A Ray actor on the driver's node: the live calls of a blame's workers, against its limit."""

    def __init__(self, spent: int, limit: int | None) -> None:
        self.spent, self.limit = spent, limit

    def take(self) -> bool:
        if self.limit is not None and self.spent >= self.limit:
            return False
        self.spent += 1
        return True

    def count(self) -> int:
        return self.spent


class RemoteBudget:
    """A blame's budget on Ray: every worker asks one counter (an actor on the driver's node) before a
    live call, so the bound holds across workers; the driver writes the calls to `live-calls.log` after
    each round (a driver killed mid-round leaves that round's calls out of the log)."""

    def __init__(self, budget: Budget) -> None:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
        self.limit, self.start = budget.limit, budget.spent
        self.counter = ray.remote(num_cpus=0, scheduling_strategy=here)(_Counter).remote(budget.spent, budget.limit)  # type: ignore[call-overload]

    async def take(self, where: str) -> None:
        if not await self.counter.take.remote():
            raise BudgetExhausted(f"the budget of {self.limit} live calls is spent")

    def spent(self) -> int:
        import ray

        return int(ray.get(self.counter.count.remote()))


def _lines(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 16), b""))
    except FileNotFoundError:
        return 0


class Resampled:
    """A live model whose every request carries this sample's seed (and temperature, if set), its
    calls and tokens counted in `spend` and taken from `budget`."""

    def __init__(self, inner: ChatModel, seed: int, temperature: float | None, spend: Spend,
                 budget: Budget | RemoteBudget | None = None, where: str = "") -> None:
        self.inner, self.seed, self.temperature, self.spend = inner, seed, temperature, spend
        self.budget, self.where = budget, where

    async def chat(self, request: ChatRequest) -> ChatResponse:
        if self.budget is not None:
            try:
                if isinstance(self.budget, RemoteBudget):
                    await self.budget.take(self.where)
                else:
                    self.budget.take(self.where)
            except BudgetExhausted:
                self.spend.cut = True
                raise
        self.spend.calls += 1
        update: dict[str, Any] = {"seed": self.seed + self.spend.calls}
        if self.temperature is not None:
            update["temperature"] = self.temperature
        response = await self.inner.chat(request.model_copy(update=update))
        self.spend.prompt_tokens += response.usage.prompt_tokens
        self.spend.completion_tokens += response.usage.completion_tokens
        return response

    async def aclose(self) -> None:  # the base runtime owns the endpoint
        return None


def sample_seed(trace: Trace, index: int, sample: int, seed: int) -> int:
    """The same for a blame of the same run (a resumed sample draws what it would have), different
    for runs with other inputs or seeds."""
    manifest = trace.started.manifest
    what = json.dumps([manifest.graph, manifest.input, manifest.seed, index, sample, seed], sort_keys=True, default=str)
    digest = hashlib.sha256(what.encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x3FFFFFFF


@dataclass(frozen=True)
class Outcome:
    """The sample's score as the runner's scorer (a cut sample has none)."""

    name: str = "success"

    async def __call__(self, case: Case, output: Any) -> Score:
        return Score(value=float(output["score"] if output.get("score") is not None else 0.0))


@dataclass(frozen=True)
class Candidate:
    """A model call blame may fork at."""

    index: int
    """Its place among the run's answered model calls, in run order (step, then call within it)."""
    step: int
    call_index: int
    node: str
    role: str
    cost: int
    """Live calls one sample from here makes if the run goes as recorded (this call and every later one)."""


class ForkSolver:
    """One case = one (call, sample): fork the run at the call, run the rest live, score the outcome."""

    def __init__(self, trace: Trace, graph: Graph[Any], base: Runtime, store: TraceStore, scorer: Scorer,
                 case: Case, temperature: float | None, seed: int, budget: Budget | RemoteBudget) -> None:
        self.trace, self.graph, self.base, self.store = trace, graph, base, store
        self.scorer, self.case, self.temperature, self.seed, self.budget = scorer, case, temperature, seed, budget
        self.output = graph.solver().output
        self.remote: RemoteBudget | None = None

    def on_ray(self) -> OnRay:
        """On Ray workers: the recorded run shipped to each worker once, the forked runs home into
        this blame's runs/, the budget counted by one counter (see `RemoteBudget`)."""
        assert isinstance(self.budget, Budget)
        self.remote = RemoteBudget(self.budget)
        build = _ForkOnWorker(self.trace.run_id, self.graph, self.scorer, self.case, self.temperature, self.seed,
                              self.remote)
        source = self.trace.dir
        return OnRay(build=build, runs=lambda case: [source], home=self.store)

    def ray_code(self) -> list[str]:
        """The graph's file, whose folder travels to Ray workers."""
        return [self.graph.file] if self.graph.file else []

    def sync_budget(self) -> None:
        """After a round on Ray: the calls the workers made, into the driver's budget and its log."""
        if self.remote is not None and isinstance(self.budget, Budget):
            self.budget.record(self.remote.spent() - self.budget.spent, "ray")

    async def __call__(self, case: Case, runtime: Runtime, *, repeat: int, seed: int) -> SolverOutput:
        spec = case.input
        spend = Spend()
        drawn = sample_seed(self.trace, spec["index"], spec["sample"], self.seed)
        where = f"{spec['index']} {spec['sample']}"

        def live_model(role: str) -> ChatModel:
            return Resampled(self.base.unrecorded_model(role), drawn, self.temperature, spend, self.budget, where)

        # memories count tokens as a live run would
        live = Runtime.from_models({}, prompts=self.base.prompts, fallback=live_model, counter_source=self.base)
        try:
            result = await replay_run(self.trace, store=self.store, live=live, live_from=spec["step"],
                                      live_from_call=spec["call_index"], graph=self.graph, library=self.base.prompts)
        except Exception:
            if not spend.cut:
                raise
            result = None
        cost = {"live_calls": spend.calls, "tokens": spend.tokens}
        run = {"run_id": getattr(result, "run_id", None), "trace_dir": getattr(result, "trace_dir", None),
               "prompt_tokens": spend.prompt_tokens, "completion_tokens": spend.completion_tokens}
        if spend.cut:  # kept with its cost, never counted as an outcome
            return SolverOutput(output={"score": None, "cut": True, **cost}, **run)
        score = await score_result(self.scorer, self.case, self.output(result), result)
        return SolverOutput(output={"score": score, **cost}, **run)


@dataclass(frozen=True)
class _ForkOnWorker:
    """Builds a blame's solver on a Ray worker (the recorded run is loaded from the worker's store,
    where the first job shipped it)."""

    run_id: str
    graph: Graph[Any]
    scorer: Scorer
    case: Case
    temperature: float | None
    seed: int
    budget: RemoteBudget

    def __call__(self, runtime: Runtime) -> _WorkerFork:
        return _WorkerFork(self, runtime)


class _WorkerFork:
    def __init__(self, how: _ForkOnWorker, runtime: Runtime) -> None:
        self.how, self.runtime = how, runtime
        self.solver: ForkSolver | None = None

    async def __call__(self, case: Case, runtime: Runtime, *, repeat: int, seed: int) -> SolverOutput:
        if self.solver is None:
            assert runtime.traces is not None
            how = self.how
            self.solver = ForkSolver(runtime.traces.load(how.run_id), how.graph, runtime, runtime.traces, how.scorer,
                                     how.case, how.temperature, how.seed, how.budget)
        return await self.solver(case, runtime, repeat=repeat, seed=seed)


_CASE = re.compile(r"call(\d+)-s(\d+)")


@dataclass
class Tally:
    """What the samples of one call gave."""

    n: int = 0
    """Samples scored (cut and errored ones apart)."""
    s: float = 0.0
    live: int = 0
    tokens: int = 0
    cut: int = 0
    errors: int = 0
    traces: list[str] = field(default_factory=list)
    taken: dict[int, str] = field(default_factory=dict)
    """Sample number -> 'ok', 'cut' or 'error'."""

    @property
    def estimate(self) -> Estimate:
        return wilson_ci(round(self.s), self.n)


class Sampler:
    """Brings calls up to a number of scored samples, as the budget allows: each request is one
    round of the eval runner (resumable), admitted cheapest first while the budget has room for
    the recorded cost of each sample."""

    def __init__(self, *, solver: ForkSolver, store: EvalStore, live: Runtime, candidates: Sequence[Candidate],
                 budget: Budget, config: dict[str, Any], concurrency: int, seed: int, progress: bool,
                 console: Console | None, executor: Executor | None = None) -> None:
        self.solver, self.store, self.live, self.candidates, self.budget = solver, store, live, candidates, budget
        self.executor = executor
        self.config, self.concurrency, self.seed, self.progress, self.console = config, concurrency, seed, progress, console
        self.stopped = False
        """A wanted sample did not fit in the budget."""
        self.tallies = self._read()

    def tally(self, pos: int) -> Tally:
        return self.tallies.get(self.candidates[pos].index, Tally())

    async def ensure(self, want: dict[int, int]) -> bool:
        """Run samples until each position `pos` has `want[pos]` scored samples (a sample that
        errored or was cut is replaced by the next number; a call whose samples errored as often as
        it wants samples is given up). False when the budget stopped it."""
        todo: list[tuple[int, int, Candidate]] = []
        for pos, count in want.items():
            c = self.candidates[pos]
            t = self.tally(pos)
            have, j = t.n, 0
            while have < count and t.errors < count:
                if j not in t.taken:
                    todo.append((j, c.cost, c))
                    have += 1
                j += 1
        if not todo:
            return not self.stopped
        todo.sort(key=lambda x: (x[0], x[1], x[2].index))  # round by round, the cheapest first
        room = self.budget.left
        admitted = []
        for j, cost, c in todo:
            if room is not None:
                if cost > room:
                    self.stopped = True
                    continue
                room -= cost
            admitted.append(Case(id=f"call{c.index:04d}-s{j:03d}", metadata={"category": f"call {c.index}"},
                                 input={"index": c.index, "step": c.step, "call_index": c.call_index, "sample": j}))
        if admitted:
            await self._run(admitted)
        return not self.stopped

    async def _run(self, cases: list[Case]) -> None:
        def stream() -> Iterator[Case]:
            return iter(cases)

        bench = Benchmark(name="blame", cases=stream, solver=self.solver, scorers=[Outcome()], config=self.config)
        await run_eval(bench, self.live, store=self.store, concurrency=self.concurrency, resume=True, seed=self.seed,
                       retry_errors=False, progress=self.progress, console=self.console, executor=self.executor)
        self.solver.sync_budget()
        self.tallies = self._read()
        if any(t.cut for t in self.tallies.values()) and self.budget.left == 0:
            self.stopped = True

    def _read(self) -> dict[int, Tally]:
        by: dict[int, Tally] = {}
        if not self.store.path.exists():
            return by
        for r in self.store.records():
            m = _CASE.fullmatch(r.case_id)
            if m is None:
                continue
            t = by.setdefault(int(m[1]), Tally())
            out = r.output if isinstance(r.output, dict) else {}
            if r.status != "ok":
                t.errors += 1
                t.taken[int(m[2])] = "error"
                continue
            t.live += int(out.get("live_calls", 0))
            t.tokens += int(out.get("tokens", 0))
            if out.get("cut"):
                t.cut += 1
                t.taken[int(m[2])] = "cut"
                continue
            t.taken[int(m[2])] = "ok"
            t.n += 1
            t.s += float(out["score"])
            if r.run_id:
                t.traces.append(r.run_id)
        return by


def candidates_of(trace: Trace, roles: Sequence[str] | None, steps: tuple[int, int] | None,
                  nodes: dict[int, str]) -> list[Candidate]:
    """The run's answered model calls in run order, step by step and call by call within a step
    (parallel branches are numbered steps in a fixed order: the order they were sent), so that
    each fork point's recorded prefix holds the previous one's. Those of `roles` and `steps`."""
    from rolegraph.traces import ModelCall

    by_place: dict[tuple[int, int], ModelCall] = {}
    for c in trace.of_kind(ModelCall):
        if c.step is not None and c.response is not None:
            by_place.setdefault((c.step, c.call_index), c)  # one point per place: each a strict prefix of the next
    calls = [by_place[k] for k in sorted(by_place)]
    out = []
    for i, c in enumerate(calls):
        step = c.step or 0
        if roles and c.role not in roles:
            continue
        if steps and not steps[0] <= step <= steps[1]:
            continue
        out.append(Candidate(i, step, c.call_index, nodes.get(step, "?"), c.role, len(calls) - i))
    return out


def scoring_case(trace: Trace, target: Any) -> Case:
    """The case a blamed run's outcomes are scored against: its input, and `target`."""
    return Case(id=trace.run_id, input=trace.started.manifest.input, target=target)
