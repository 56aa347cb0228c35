"""The eval runner: exactly one result per (case, repeat) across kills and resumes, the
concurrency limit over real HTTP, reports a browser can open, paired comparisons."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rolegraph import Runtime
from rolegraph.config import EndpointConfig, RoleConfig, RuntimeConfig
from rolegraph.evals import Benchmark, Case, EvalStore, Match, SolverOutput, run_eval, write_report
from rolegraph.evals.mcq import mcq_benchmark
from rolegraph.models.servers.loadtest import LoadTestServer
from tests.conftest import SAMPLE_MCQS

ROOT = Path(__file__).resolve().parents[2]
N_CASES, REPEATS = 60, 2


class SleepySolver:
    """Answers after a short random pause: the stand-in for a model call."""

    async def __call__(self, case: Case, runtime: Runtime, *, repeat: int, seed: int) -> SolverOutput:
        await asyncio.sleep(random.uniform(0.005, 0.03))
        if case.id == "c7" and repeat == 1:
            raise ValueError("a solver bug on one case")
        return SolverOutput(output=int(case.id[1:]) % 3)


def toy_benchmark() -> Benchmark:
    def cases() -> Iterator[Case]:
        for i in range(N_CASES):
            yield Case(id=f"c{i}", input=i, target=i % 3 if i % 5 else -1, metadata={"category": f"g{i % 3}"})

    return Benchmark(name="toy", cases=cases, solver=SleepySolver(), scorers=[Match("accuracy")])


SCRIPT = """
import asyncio, sys
from rolegraph import Runtime
from rolegraph.evals import EvalStore, run_eval
from tests.unit.test_eval_runner import toy_benchmark, REPEATS
store = EvalStore(sys.argv[1])
asyncio.run(run_eval(toy_benchmark(), Runtime.from_models({}), store=store, concurrency=2, repeats=REPEATS,
                     resume=True, progress=False))
"""


def test_killed_five_times_then_resumed_gives_exactly_one_result_per_pair(tmp_path: Path) -> None:
    db = tmp_path / "toy" / "results.sqlite"
    rng = random.Random(1)
    for kill in range(5):
        before = EvalStore(db).count() if db.exists() else 0
        proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(db)], cwd=ROOT)
        if kill == 0:
            time.sleep(rng.uniform(0.05, 0.4))  # in start-up
        else:  # while running or writing: a few results after this try's first, however fast the machine
            deadline, wanted = time.monotonic() + 60, before + rng.randint(1, 12)
            while time.monotonic() < deadline and (EvalStore(db).count() if db.exists() else 0) < wanted:
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.02))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    partial = EvalStore(db).count() if db.exists() else 0
    assert partial < N_CASES * REPEATS  # the kills really interrupted it
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(db)], cwd=ROOT, timeout=120, check=False)
    assert done.returncode == 0
    store = EvalStore(db)
    records = list(store.records())
    pairs = [(r.case_id, r.repeat) for r in records]
    assert len(pairs) == len(set(pairs)) == N_CASES * REPEATS
    assert {(f"c{i}", k) for i in range(N_CASES) for k in range(REPEATS)} == set(pairs)
    failed = [r for r in records if r.status == "error"]
    assert [(r.case_id, r.repeat) for r in failed] == [("c7", 1)] and "solver bug" in (failed[0].error or "")


async def test_resume_refuses_to_mix_benchmarks_and_needs_the_flag(tmp_path: Path) -> None:
    store = EvalStore(tmp_path / "a" / "results.sqlite")
    await run_eval(toy_benchmark(), Runtime.from_models({}), store=store, limit=3, progress=False)
    from rolegraph import UserError

    with pytest.raises(UserError, match="pass --resume"):
        await run_eval(toy_benchmark(), Runtime.from_models({}), store=store, progress=False)
    summary = await run_eval(toy_benchmark(), Runtime.from_models({}), store=store, limit=5, resume=True,
                             progress=False)
    assert (summary.skipped, summary.ran, store.count()) == (3, 2, 5)


async def test_concurrency_limit_holds_over_real_http(tmp_path: Path) -> None:
    async with LoadTestServer(delay_s=0.05, reply="Reasoning. The answer is (b)") as server:
        config = RuntimeConfig(endpoints={"stub": EndpointConfig(base_url=server.base_url, dialect="openai")},
                               roles={"default": RoleConfig(endpoint="stub", model="stub")})
        runtime = Runtime(config)
        store = EvalStore(tmp_path / "mcq" / "results.sqlite")
        summary = await run_eval(mcq_benchmark(SAMPLE_MCQS), runtime, store=store, concurrency=5, progress=False)
        await runtime.aclose()
    assert summary.ran == 22 and server.requests == 22
    assert server.max_in_flight == 5  # reached, never exceeded
    records = list(store.records())
    assert all(r.status == "ok" and r.output == 1 for r in records)
    assert sum(r.scores["accuracy"].value for r in records) == sum(1 for r in records if r.target == 1)


CHROMIUM = shutil.which("chromium")


async def test_report_json_and_html(tmp_path: Path) -> None:
    store = EvalStore(tmp_path / "toy" / "results.sqlite")
    await run_eval(toy_benchmark(), Runtime.from_models({}), store=store, repeats=3, progress=False)
    page = write_report(store)
    data = json.loads((page.parent / "report.json").read_text())
    acc = data["scorers"]["accuracy"]
    # targets: i % 3 except every fifth case (-1, never right); c7 repeat 1 failed
    assert data["cases"] == N_CASES and data["repeats"] == 3 and data["status"] == {"ok": 179, "error": 1}
    assert acc["mean"]["value"] == pytest.approx((48 * 3 - 1) / 179, abs=1e-6)  # c7 is right on its 2 other repeats
    assert acc["pass_at_k"]["1"] is not None and acc["flip_rate"] is not None
    assert set(acc["categories"]) == {"g0", "g1", "g2"}
    html = page.read_text()
    assert html.count("<svg") >= 3 and 'id="case-count">60<' in html
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium); the HTML was checked as text only")
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                              "--disable-component-update", "--disable-sync", "--no-first-run",
                              f"--user-data-dir={profile}", "--enable-logging=stderr", "--dump-dom", page.as_uri()],
                             capture_output=True, text=True, timeout=120, check=False)
    assert dom.returncode == 0
    assert re.search(r'id="case-count">60<', dom.stdout) and dom.stdout.count("<svg") >= 3
    assert not [line for line in dom.stderr.splitlines() if "CONSOLE" in line]


def test_compare_cli(tmp_path: Path) -> None:
    async def two() -> None:
        for name in ("a", "b"):
            await run_eval(toy_benchmark(), Runtime.from_models({}), store=EvalStore(tmp_path / name / "results.sqlite"),
                           progress=False)

    asyncio.run(two())
    result = subprocess.run([sys.executable, "-m", "rolegraph", "eval", "compare", str(tmp_path / "a"),
                             str(tmp_path / "b")], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
                            env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "on 60 shared cases" in result.stdout and "0.000 [0.000, 0.000]" in result.stdout


class PairSolver:
    """Keeps the evaluation pair each call was given."""

    def __init__(self) -> None:
        self.pairs: list[str | None] = []

    async def __call__(self, case: Case, runtime: Runtime, *, repeat: int, seed: int,
                       pair: str | None = None) -> SolverOutput:
        self.pairs.append(pair)
        return SolverOutput(output=0)


class ElsewhereExecutor:
    """Runs each pair in a fresh context, as a Ray worker does: nothing set in the driver's context
    reaches the solver, only the submit call's arguments."""

    async def start(self, benchmark: Benchmark, runtime: Runtime) -> None:
        self.benchmark, self.runtime = benchmark, runtime

    def submit(self, case: Case, repeat: int, *, seed: int, timeout_s: float | None,
               pair: str | None = None) -> Any:
        import contextvars

        from rolegraph.evals import run_one

        coro = run_one(self.benchmark, case, repeat, self.runtime, seed=seed, timeout_s=timeout_s, pair=pair)
        return asyncio.get_running_loop().create_task(coro, context=contextvars.Context())

    async def close(self) -> None:
        return None


async def test_the_evaluation_pair_is_the_solvers_argument_wherever_the_pair_runs(tmp_path: Path) -> None:
    store = EvalStore(tmp_path / "p" / "results.sqlite")
    solver = PairSolver()
    bench = Benchmark(name="p", cases=lambda: iter([Case(id="a", input=1), Case(id="b", input=2)]), solver=solver,
                      scorers=[Match("accuracy")])
    await run_eval(bench, Runtime.from_models({}), store=store, repeats=2, progress=False,
                   executor=ElsewhereExecutor())
    uid = store.uid()
    assert sorted(p or "" for p in solver.pairs) == [f"{uid}/a/0", f"{uid}/a/1", f"{uid}/b/0", f"{uid}/b/1"]
    # a solver written without the parameter is called without it
    summary = await run_eval(toy_benchmark(), Runtime.from_models({}), store=EvalStore(tmp_path / "t" / "r.sqlite"),
                             limit=2, progress=False, executor=ElsewhereExecutor())
    assert summary.ran == 2 and summary.errors == 0
