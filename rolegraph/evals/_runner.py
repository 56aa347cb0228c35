"""The eval runner: streams cases, runs (case, repeat) pairs concurrently up to a limit, each with
a timeout, writes each result as it finishes, skips finished pairs on resume, shows progress."""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import time
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic_core import to_jsonable_python
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from rolegraph.errors import ModelUnreachable, UserError
from rolegraph.evals._core import RECORD_VERSION, Benchmark, Case, EvalRecord, SolverOutput
from rolegraph.evals._store import EvalStore
from rolegraph.traces import runs_started

if TYPE_CHECKING:
    from rolegraph.runtime import Runtime
    from rolegraph.traces import RunContext


@dataclass
class EvalSummary:
    eval_id: str
    dir: Path
    total: int
    ran: int
    skipped: int
    errors: int
    """Errors and timeouts among the pairs run now."""
    duration_s: float
    errors_kept: int = 0
    """Errors and timeouts already in the store and not retried (resume without retry_errors)."""
    retried: int = 0
    """Errors and timeouts from before that were run again (resume with retry_errors)."""
    adopted: int = 0
    """Pairs run now whose result was rebuilt from the run an earlier, killed try of this same
    evaluation left (replayed offline or resumed), not run afresh."""


def new_eval_id(name: str) -> str:
    import os

    return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{name}-{os.urandom(3).hex()}"


def _pairs(benchmark: Benchmark, repeats: int, limit: int | None, done: set[tuple[str, int]]) -> Iterator[tuple[Case, int]]:
    for case in itertools.islice(benchmark.cases(), limit):
        for repeat in range(repeats):
            if (case.id, repeat) not in done:
                yield case, repeat


async def run_one(benchmark: Benchmark, case: Case, repeat: int, runtime: Runtime, *, seed: int,
                  timeout_s: float | None, pair: str | None = None) -> EvalRecord:
    """Solve and score one (case, repeat); failures become records, never exceptions, except
    an unreachable model server, which stops the whole evaluation. A timeout or an error keeps the
    id of the run it cut off (its trace holds the calls made, a cancelled one included). `pair` is
    the evaluation pair's key (`<evaluation uid>/<case id>/<repeat>`), given to a solver that takes it."""
    started = time.perf_counter()
    base = {"case_id": case.id, "repeat": repeat, "target": to_jsonable_python(case.target, fallback=str),
            "category": case.category}
    with runs_started() as runs:
        try:
            async with asyncio.timeout(timeout_s):
                extra = {"pair": pair} if takes_pair(benchmark.solver) else {}
                solved = await benchmark.solver(case, runtime, repeat=repeat, seed=seed + repeat, **extra)
                if not isinstance(solved, SolverOutput):  # a graph's RunResult (from graph.solver())
                    solved = _from_result(benchmark.solver, solved)
                scores = {s.name: await s(case, solved.output) for s in benchmark.scorers}
        except TimeoutError:
            return EvalRecord(**base, status="timeout", error=f"timed out after {timeout_s} s",
                              latency_s=time.perf_counter() - started, **_cut_off_run(runs))
        except ModelUnreachable:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded as this case's failure; the run goes on
            return EvalRecord(**base, status="error", error=f"{type(exc).__name__}: {exc}",
                              latency_s=time.perf_counter() - started, **_cut_off_run(runs))
    # every field is built here from typed values: skip re-validating them (this is the hot path)
    return EvalRecord.model_construct(**base, status="ok", output=to_jsonable_python(solved.output, fallback=str),
                                      scores=scores, error=None, run_id=solved.run_id, trace_dir=solved.trace_dir,
                                      latency_s=time.perf_counter() - started, prompt_tokens=solved.prompt_tokens,
                                      completion_tokens=solved.completion_tokens, format_version=RECORD_VERSION,
                                      kind="result", finished_at=0.0, adopted=solved.adopted)


def takes_pair(solver: object) -> bool:
    """Whether a solver's call takes the `pair` keyword (the Solver protocol's; a solver written
    without it is called without it)."""
    call = solver if inspect.isfunction(solver) or inspect.ismethod(solver) else type(solver).__call__
    return _takes_pair(call)


@functools.lru_cache(maxsize=64)
def _takes_pair(call: Any) -> bool:
    try:
        params = inspect.signature(call).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "pair" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _cut_off_run(runs: list[RunContext]) -> dict[str, Any]:
    """A failed pair's record fields from the first run its solver started (none: no fields)."""
    if not runs:
        return {}
    run = runs[0]
    return {"run_id": run.run_id, "trace_dir": str(run.writer.dir) if run.writer is not None else None,
            "prompt_tokens": run.totals.prompt_tokens, "completion_tokens": run.totals.completion_tokens}


def _from_result(solver: object, result: object) -> SolverOutput:
    """A graph run's result as a solver output: the solver's `output(result)` picks what is scored."""
    pick = getattr(solver, "output", None)
    run_id = getattr(result, "run_id", None)
    return SolverOutput(output=pick(result) if callable(pick) else result, run_id=run_id,
                        trace_dir=getattr(result, "trace_dir", None), prompt_tokens=getattr(result, "prompt_tokens", 0),
                        completion_tokens=getattr(result, "completion_tokens", 0),
                        adopted=run_id is not None and run_id in getattr(solver, "adopted", ()))


class Executor(Protocol):
    """Where (case, repeat) pairs run: in this event loop, or on Ray workers."""

    async def start(self, benchmark: Benchmark, runtime: Runtime) -> None: ...

    def submit(self, case: Case, repeat: int, *, seed: int, timeout_s: float | None,
               pair: str | None = None) -> Awaitable[EvalRecord]: ...

    async def close(self) -> None: ...


class AsyncioExecutor:
    """The default: every pair is a task in this process's event loop."""

    async def start(self, benchmark: Benchmark, runtime: Runtime) -> None:
        self.benchmark, self.runtime = benchmark, runtime

    def submit(self, case: Case, repeat: int, *, seed: int, timeout_s: float | None,
               pair: str | None = None) -> Awaitable[EvalRecord]:
        return run_one(self.benchmark, case, repeat, self.runtime, seed=seed, timeout_s=timeout_s, pair=pair)

    async def close(self) -> None:
        return None


async def run_eval(benchmark: Benchmark, runtime: Runtime, *, store: EvalStore, concurrency: int = 8,
                   repeats: int = 1, timeout_s: float | None = None, limit: int | None = None, seed: int = 0,
                   resume: bool = False, retry_errors: bool = True, progress: bool = True,
                   console: Console | None = None, executor: Executor | None = None) -> EvalSummary:
    """Run `benchmark` into `store`. With `resume`, pairs already in the store are skipped, except
    errors and timeouts when `retry_errors` (their new record replaces the old one). Results are
    written here, by this process, whichever executor ran them; a second process writing the same
    store is refused (UserError) before it runs anything."""
    if concurrency < 1 or repeats < 1:
        raise UserError("concurrency and repeats must be at least 1")
    with store.lock():
        return await _run_locked(benchmark, runtime, store=store, concurrency=concurrency, repeats=repeats,
                                 timeout_s=timeout_s, limit=limit, seed=seed, resume=resume,
                                 retry_errors=retry_errors, progress=progress, console=console, executor=executor)


async def _run_locked(benchmark: Benchmark, runtime: Runtime, *, store: EvalStore, concurrency: int, repeats: int,
                      timeout_s: float | None, limit: int | None, seed: int, resume: bool, retry_errors: bool,
                      progress: bool, console: Console | None, executor: Executor | None) -> EvalSummary:
    store.redactor.add(*runtime.redactor.values)  # a 401 body echoing a key must not reach the results
    meta = store.meta()
    if meta and not resume:
        raise UserError(f"{store.dir} already holds results; pass --resume to continue it")
    if meta and meta.get("benchmark") != benchmark.name:
        raise UserError(f"{store.dir} holds results of '{meta.get('benchmark')}', not '{benchmark.name}'")
    if not meta:
        store.set_meta(benchmark=benchmark.name, config=benchmark.config, repeats=repeats, limit=limit, seed=seed,
                       created=time.time())
    uid = store.uid()  # this evaluation's own id: the runs it may adopt on resume are tagged with it
    done = store.done(retry_errors=retry_errors) if resume else set()
    earlier_errors = sum(n for status, n in store.status_counts().items() if status != "ok") if resume else 0
    errors_kept, retried = (0, earlier_errors) if retry_errors else (earlier_errors, 0)
    total = sum(1 for _ in itertools.islice(benchmark.cases(), limit)) * repeats
    store.set_meta(total=total)  # what a progress view counts towards
    todo = total - len(done)
    executor = executor or AsyncioExecutor()
    await executor.start(benchmark, runtime)
    writer = store.writer()
    started = time.perf_counter()
    errors = adopted = 0
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]}/s"), TextColumn("[red]{task.fields[errors]} errors"),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=console or Console(stderr=True),
                   disable=not progress, transient=False)
    with bar:
        task = bar.add_task(benchmark.name, total=total, completed=len(done), rate="-", errors=errors_kept)
        pending: set[asyncio.Future[EvalRecord]] = set()
        # finished futures arrive on a queue: O(1) per completion, where asyncio.wait would
        # re-register a callback on every pending future each time one finishes
        finished_q: asyncio.Queue[asyncio.Future[EvalRecord]] = asyncio.Queue()
        pairs = _pairs(benchmark, repeats, limit, done)
        finished = 0
        completed: list[asyncio.Future[EvalRecord]] = []
        try:
            while True:
                while len(pending) < concurrency:
                    nxt = next(pairs, None)
                    if nxt is None:
                        break
                    # a graph solver tags its run with the pair, and a resume adopts the run a killed
                    # try of this evaluation left for it instead of redoing it
                    fut = asyncio.ensure_future(executor.submit(nxt[0], nxt[1], seed=seed, timeout_s=timeout_s,
                                                                pair=f"{uid}/{nxt[0].id}/{nxt[1]}"))
                    fut.add_done_callback(finished_q.put_nowait)
                    pending.add(fut)
                if not pending:
                    break
                completed = [await finished_q.get()]
                while not finished_q.empty():
                    completed.append(finished_q.get_nowait())
                pending.difference_update(completed)
                for t in completed:
                    record = t.result()
                    writer.put(record)
                    finished += 1
                    errors += record.status != "ok"
                    adopted += record.adopted
                if progress:
                    elapsed = time.perf_counter() - started
                    bar.update(task, advance=len(completed), rate=f"{finished / elapsed:.1f}" if elapsed else "-",
                               errors=errors + errors_kept)
        finally:
            for t in pending:
                t.cancel()
            # let the cancelled calls unwind before the caller closes the HTTP clients under them
            await asyncio.gather(*pending, return_exceptions=True)
            while not finished_q.empty():
                completed.append(finished_q.get_nowait())
            for t in completed:  # a stopping error's siblings: read, or asyncio logs each one again
                if not t.cancelled():
                    t.exception()
            writer.close()
            await executor.close()
            if adopted:
                (console or Console(stderr=True)).print(
                    f"adopted {adopted} finished run{'s' if adopted != 1 else ''} from this evaluation's earlier try "
                    "(same graph, code, models, prompts, options, input and seed; rebuilt with no model call)")
    return EvalSummary(store.eval_id, store.dir, total, finished, total - todo, errors, time.perf_counter() - started,
                       errors_kept=errors_kept, retried=retried, adopted=adopted)

