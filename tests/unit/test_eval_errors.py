"""Errors and timeouts in evaluations: kept apart from wrong answers in every score, retried on
resume (or kept, if asked), and one writer per store."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rolegraph import Runtime, UserError
from rolegraph.evals import Benchmark, Case, EvalStore, Match, SolverOutput, run_eval
from rolegraph.evals._report import summarize


class FlakySolver:
    """Right on every case, except those named in `fail` (an error) or `hang` (a timeout)."""

    def __init__(self, fail: set[str] = frozenset(), hang: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.fail, self.hang = set(fail), set(hang)
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, case: Case, runtime: Runtime, *, repeat: int, seed: int) -> SolverOutput:
        self.calls.append((case.id, repeat))
        if case.id in self.hang:
            await asyncio.sleep(10)
        if case.id in self.fail:
            raise RuntimeError("the server went away")
        return SolverOutput(output=case.target)


def bench(solver: FlakySolver, n: int = 4) -> Benchmark:
    def cases() -> Iterator[Case]:
        for i in range(n):
            yield Case(id=f"c{i}", input=i, target=i)

    return Benchmark(name="flaky", cases=cases, solver=solver, scorers=[Match("accuracy")])


async def test_resume_retries_errors_and_timeouts_and_ends_with_one_result_per_pair(tmp_path: Path) -> None:
    store = EvalStore(tmp_path / "e" / "results.sqlite")
    first = FlakySolver(fail={"c1"}, hang={"c2"})
    s1 = await run_eval(bench(first), Runtime.from_models({}), store=store, repeats=2, timeout_s=0.05, progress=False)
    assert s1.errors == 4 and store.status_counts() == {"ok": 4, "error": 2, "timeout": 2}

    kept = FlakySolver()
    s2 = await run_eval(bench(kept), Runtime.from_models({}), store=store, repeats=2, resume=True,
                        retry_errors=False, progress=False)
    assert kept.calls == [] and (s2.ran, s2.errors_kept) == (0, 4)

    healed = FlakySolver()
    s3 = await run_eval(bench(healed), Runtime.from_models({}), store=store, repeats=2, resume=True, progress=False)
    assert sorted(healed.calls) == [("c1", 0), ("c1", 1), ("c2", 0), ("c2", 1)]  # the ok pairs are not rerun
    assert (s3.ran, s3.errors, s3.retried, s3.skipped) == (4, 0, 4, 4)
    records = list(store.records())
    pairs = [(r.case_id, r.repeat) for r in records]
    assert len(pairs) == len(set(pairs)) == 8 and {r.status for r in records} == {"ok"}


def test_a_late_result_never_replaces_an_ok_one(tmp_path: Path) -> None:
    from rolegraph.evals._core import EvalRecord

    store = EvalStore(tmp_path / "e" / "results.sqlite")
    w = store.writer()
    w.put(EvalRecord(case_id="c", repeat=0, status="ok", output=1))
    w.flush()
    w.put(EvalRecord(case_id="c", repeat=0, status="error", error="late duplicate"))
    w.close()
    assert [r.status for r in store.records()] == ["ok"]


async def test_scores_are_over_ok_results_with_errors_beside_them(tmp_path: Path) -> None:
    store = EvalStore(tmp_path / "e" / "results.sqlite")
    await run_eval(bench(FlakySolver(fail={"c1"}), n=2), Runtime.from_models({}), store=store, progress=False)
    summary = summarize(store)
    acc = summary["scorers"]["accuracy"]
    assert (acc["mean"]["value"], acc["mean"]["n"], acc["errors"]) == (1.0, 1, 1)
    assert summary["errors"] == 1 and summary["status"] == {"ok": 1, "error": 1}
    assert store.case_scores("accuracy") == {"c0": 1.0}  # the MCQ CLI's per-case scores: no 0 for the error


async def test_repeats_with_an_error_are_left_out_of_pass_at_k(tmp_path: Path) -> None:
    store = EvalStore(tmp_path / "e" / "results.sqlite")
    await run_eval(bench(FlakySolver(fail={"c1"}), n=2), Runtime.from_models({}), store=store, repeats=2,
                   progress=False)
    acc = summarize(store)["scorers"]["accuracy"]
    assert acc["mean"]["n"] == 2 and acc["errors"] == 2 and acc["pass_at_k"] == {1: 1.0, 2: 1.0}


async def test_a_second_writer_on_a_live_store_is_refused(tmp_path: Path) -> None:
    store = EvalStore(tmp_path / "e" / "results.sqlite")
    solver = FlakySolver()
    with store.lock():  # another process writing this store (flock is per open file, so this stands in)
        with pytest.raises(UserError, match=r"being written by another process \(pid \d+\)"):
            await run_eval(bench(solver), Runtime.from_models({}), store=store, resume=True, progress=False)
        with pytest.raises(UserError, match="being written"), EvalStore(store.path).lock():
            pass
    assert solver.calls == [] and store.count() == 0 and store.meta() == {}
    await run_eval(bench(solver), Runtime.from_models({}), store=store, progress=False)  # released: runs
    assert store.count() == 4


async def test_a_stale_lock_from_a_dead_pid_is_taken_over(tmp_path: Path) -> None:
    store = EvalStore(tmp_path / "e" / "results.sqlite")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (store.dir / "results.lock").write_text(f"{dead.pid}\n")  # left by a writer killed with -9
    summary = await run_eval(bench(FlakySolver()), Runtime.from_models({}), store=store, progress=False)
    assert summary.ran == 4 and store.count() == 4
    assert (store.dir / "results.lock").read_text() == ""  # released after the run


async def test_a_dead_server_stops_the_eval_with_one_error_and_nothing_left_open(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import gc

    from rolegraph import ModelUnreachable
    from rolegraph.models import ChatRequest, Message, OpenAICompatModel, RetryPolicy
    from rolegraph.models.servers.embedded import free_port

    class Asks:
        async def __call__(self, case: Case, runtime: Runtime, *, repeat: int, seed: int) -> SolverOutput:
            reply = await runtime.model("default").chat(ChatRequest(messages=(Message(role="user", content="hi"),)))
            return SolverOutput(output=reply.text)

    async def no_wait(_: float) -> None:
        return None

    model = OpenAICompatModel(f"http://127.0.0.1:{free_port()}/v1", "m", dialect="openai", sleep=no_wait,
                              retry=RetryPolicy(attempts=2))
    runtime = Runtime.from_models({"default": model})
    flaky = bench(FlakySolver(), n=8)
    store = EvalStore(tmp_path / "e" / "results.sqlite")
    with pytest.raises(ModelUnreachable):
        try:
            await run_eval(Benchmark(name="x", cases=flaky.cases, solver=Asks(), scorers=flaky.scorers), runtime,
                           store=store, concurrency=4, progress=False)
        finally:
            await runtime.aclose()
    gc.collect()
    await asyncio.sleep(0)
    noise = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert not [m for m in noise if "never retrieved" in m or "Unclosed" in m], noise
