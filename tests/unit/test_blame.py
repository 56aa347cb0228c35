"""Counterfactual blame on a six-step graph with a planted fault: the step whose wrong answer
dooms the run is named, and follows when the fault moves; replayed prefixes make no live call; a
killed blame resumes to exactly K samples per call; the page renders in Chromium."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import rolegraph as rg
from rolegraph.evals import EvalStore
from rolegraph.evals.blame import blame, default_scorer, write_blame_page
from rolegraph.models import ChatRequest, FunctionModel, Message
from rolegraph.traces import Trace, TraceStore

ROOT = Path(__file__).resolve().parents[2]
STEPS = 6
CHROMIUM = shutil.which("chromium")


class Task(BaseModel):
    fault: int
    q: float = 0.2
    """How often the faulty step answers wrongly."""


class State(BaseModel):
    fault: int
    q: float
    seed: int = 0
    answers: list[str] = []


class Done(rg.RunResult):
    success: bool
    answers: list[str]


def _step(i: int) -> Any:
    async def node(state: State, runtime: rg.Runtime) -> dict[str, Any]:
        request = ChatRequest(messages=(Message(role="user", content=f"step {i} fault {state.fault} q {state.q}"),),
                              seed=state.seed * 100 + i)
        reply = await runtime.model("worker").chat(request)
        return {"answers": [*state.answers, reply.text]}

    node.__name__ = f"step{i}"
    return node


def _finish(state: State) -> dict[str, Any]:
    return {"success": state.answers[state.fault] != "wrong", "answers": state.answers}


@rg.graph(input=Task, state=State, result=Done, finish=_finish, roles=["worker"])
def planted(g: rg.StateGraph) -> None:
    nodes = [g.add_node(_step(i)) and f"step{i}" for i in range(STEPS)]
    g.add_edge(rg.START, nodes[0])
    for a, b in zip(nodes, nodes[1:], strict=False):
        g.add_edge(a, b)
    g.add_edge(nodes[-1], rg.END)


def worker(request: ChatRequest) -> str:
    """Right or wrong by the request's seed; wrong at the faulty step with probability q, and
    'unsure' (harmless) elsewhere now and then."""
    m = re.match(r"step (\d+) fault (\d+) q ([\d.]+)", request.messages[-1].content or "")
    assert m is not None
    step, fault, q = int(m[1]), int(m[2]), float(m[3])
    rng = random.Random(request.seed)
    if step == fault:
        return "wrong" if rng.random() < q else "right"
    return "unsure" if rng.random() < 0.3 else "right"


async def failed_run(store: TraceStore, fault: int) -> Trace:
    """A recorded run of `planted` that failed (its faulty step answered wrongly)."""
    async with rg.Runtime.from_models({"worker": FunctionModel(worker)}, traces=store) as rt:
        for seed in range(200):
            result = await planted.run(Task(fault=fault), runtime=rt, seed=seed)
            if not result.success:
                return store.load(result.trace_id or "")
    raise AssertionError("no failed run in 200 seeds")


@pytest.mark.parametrize("fault", [2, 4])
async def test_blame_names_the_planted_step_and_follows_it(tmp_path: Path, fault: int) -> None:
    store = TraceStore(tmp_path / "runs")
    trace = await failed_run(store, fault)
    live = FunctionModel(worker)
    async with rg.Runtime.from_models({"worker": live}) as rt:
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
    async with rg.Runtime.from_models({"worker": FunctionModel(worker)}) as rt:
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
from tests.unit.test_blame import worker

def slow(request):
    time.sleep(0.02)
    return worker(request)

async def main():
    trace = TraceStore(sys.argv[1]).load(sys.argv[2])
    async with rg.Runtime.from_models({"worker": FunctionModel(slow)}) as rt:
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
    async with rg.Runtime.from_models({"worker": FunctionModel(worker)}) as rt:
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
    async with rg.Runtime.from_models({"worker": FunctionModel(worker)}) as rt:
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
