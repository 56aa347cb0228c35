"""Counterfactual blame on a six-step graph with a planted fault: the step whose wrong answer
dooms the run is named, and follows when the fault moves; replayed prefixes make no live call; a
killed blame resumes to exactly K samples per call; the page renders in Chromium."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

import rolegraph as rg
from rolegraph.evals import EvalStore
from rolegraph.evals.blame import blame, default_scorer, write_blame_page
from rolegraph.models import FunctionModel
from rolegraph.traces import Trace, TraceStore

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "blame"))
from planted import STEPS, Done, Task, over_http, planted, worker  # noqa: E402 - the example's folder first

CHROMIUM = shutil.which("chromium")


async def failed_run(store: TraceStore, fault: int) -> Trace:
    """A recorded run of `planted` that failed (its faulty step answered wrongly)."""
    async with rg.Runtime.from_models({"default": FunctionModel(worker)}, traces=store) as rt:
        for seed in range(200):
            result = await planted.run(Task(fault=fault), runtime=rt, seed=seed)
            if not result.success:
                return store.load(result.run_id or "")
    raise AssertionError("no failed run in 200 seeds")


@pytest.mark.parametrize("fault", [2, 4])
async def test_blame_names_the_planted_step_and_follows_it(tmp_path: Path, fault: int) -> None:
    store = TraceStore(tmp_path / "runs")
    trace = await failed_run(store, fault)
    live = FunctionModel(worker)
    async with rg.Runtime.from_models({"default": live}) as rt:
        report = await blame(trace, live=rt, out=tmp_path / "blame", samples=8, progress=False)
    assert report.outcome == 0.0 and report.decisive == fault
    assert [s.samples for s in report.steps] == [8] * STEPS
    assert all(s.p == 0.0 for s in report.steps[fault + 1:])  # the fault is in the kept prefix
    assert report.steps[fault].p > 0.4
    # every call before the fork point came from the trace: call i costs (6 - i) live calls per sample
    assert len(live.requests) == report.live_calls == 8 * sum(STEPS - i for i in range(STEPS))
    assert (tmp_path / "blame" / "blame.json").exists()


async def test_adaptive_mode_spends_fewer_calls_and_still_names_the_step(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "runs")
    trace = await failed_run(store, 3)
    async with rg.Runtime.from_models({"default": FunctionModel(worker)}) as rt:
        report = await blame(trace, live=rt, out=tmp_path / "blame", samples=16, adaptive=True, progress=False)
    assert report.decisive == 3
    assert report.live_calls < 16 * sum(STEPS - i for i in range(STEPS))
    assert all(s.samples == 4 for s in report.steps[4:])  # 0 of 4: decided at once


def test_default_scorer_reads_a_success_field_or_asks_for_one() -> None:
    assert default_scorer(Done(success=True, answers=[])) == 1.0
    with pytest.raises(rg.UserError, match="--scorer"):
        default_scorer(rg.StateResult())


KILLED = """
import asyncio, sys, time
import rolegraph as rg
from rolegraph.evals.blame import blame
from rolegraph.models import FunctionModel
from rolegraph.traces import TraceStore
import sys
sys.path.insert(0, "examples/blame")
from planted import worker

def slow(request):
    time.sleep(0.02)
    return worker(request)

async def main():
    trace = TraceStore(sys.argv[1]).load(sys.argv[2])
    async with rg.Runtime.from_models({"default": FunctionModel(slow)}) as rt:
        await blame(trace, live=rt, out=sys.argv[3], samples=6, concurrency=2, progress=False)
asyncio.run(main())
"""


async def test_a_killed_blame_resumes_to_exactly_k_samples_per_call(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "runs")
    trace = await failed_run(store, 2)
    out = tmp_path / "blame"
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(store.root), trace.run_id, str(out)], cwd=ROOT)
    deadline = time.time() + 60
    while time.time() < deadline and (not (out / "results.sqlite").exists() or _count(out) < 5):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _count(out)
    assert 5 <= partial < 6 * STEPS
    async with rg.Runtime.from_models({"default": FunctionModel(worker)}) as rt:
        report = await blame(trace, live=rt, out=out, samples=6, progress=False)
    ids = [r.case_id for r in EvalStore(out / "results.sqlite").records()]
    assert len(ids) == len(set(ids)) == 6 * STEPS
    assert [s.samples for s in report.steps] == [6] * STEPS


def _count(out: Path) -> int:
    try:
        return EvalStore(out / "results.sqlite").count()
    except Exception:  # noqa: BLE001 - not created yet
        return 0


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium); .ci/run installs it")
async def test_the_blame_page_renders_one_bar_per_call_in_chromium(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "runs")
    trace = await failed_run(store, 1)
    async with rg.Runtime.from_models({"default": FunctionModel(worker)}) as rt:
        report = await blame(trace, live=rt, out=tmp_path / "blame", samples=3, progress=False)
    page = write_blame_page(report, tmp_path / "blame", runs=TraceStore(tmp_path / "blame" / "runs"))
    assert (tmp_path / "blame" / "traces").is_dir() and len(list((tmp_path / "blame" / "traces").glob("*.html"))) > 0
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                              "--disable-component-update", "--disable-sync", "--no-first-run",
                              f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom",
                              page.resolve().as_uri()], capture_output=True, text=True, timeout=120, check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-rendered="ok"' in dom.stdout and 'data-errors="0"' in dom.stdout
    assert f'data-bars="{STEPS}"' in dom.stdout and dom.stdout.count('class="bar decisive"') == 1


async def test_fork_compare_pairs_two_arms_on_each_cases_prefix(tmp_path: Path) -> None:
    from rolegraph.config import EndpointConfig, RoleConfig, RuntimeConfig
    from rolegraph.evals import Benchmark, Case, Score, run_eval
    from rolegraph.evals.fork_compare import fork_compare
    from rolegraph.models.servers.loadtest import LoadTestServer

    async def success(case: Case, output: Any) -> Score:
        return Score(value=float(output["success"]))

    success.name = "success"  # type: ignore[attr-defined]
    cases = [Case(id=f"c{i}", input={"fault": 1 + i % 4, "q": 0.5}) for i in range(6)]
    bench = Benchmark(name="planted", cases=lambda: cases, solver=planted.solver(), scorers=[success])
    async with LoadTestServer(delay_s=0.0, reply=over_http) as server:
        config = RuntimeConfig(endpoints={"stub": EndpointConfig(base_url=server.base_url, dialect="openai")},
                               roles={"default": RoleConfig(endpoint="stub", model="stub")})
        async with rg.Runtime(config, traces=TraceStore(tmp_path / "runs")) as rt:
            await run_eval(bench, rt, store=EvalStore(tmp_path / "ev" / "results.sqlite"), progress=False)
            before = server.requests
            report = await fork_compare(tmp_path / "ev", live=rt, at="decider", model="careful", samples=4,
                                        scorer=lambda result: result.success, progress=False)
    assert report.cases == 6 and report.changed_mean == 1.0 and report.recorded_mean < 0.8
    assert report.low > 0 and report.mcnemar_p is not None and report.mcnemar_p < 0.05
    assert report.flipped and all(f.recorded_traces and f.changed_traces for f in report.flipped)
    # forked at the decider's call: the steps before it are answered from the trace
    faults = [1 + i % 4 for i in range(6)]
    assert server.requests - before == 2 * 4 * sum(STEPS - f for f in faults)
    assert (tmp_path / "ev" / "fork-compare" / "fork-compare.json").exists()
