"""Blame at a fraction of the cost, right on any graph shape: bisection names the planted fault of
6-, 30- and 100-call pipelines with a fraction of the sweep's live calls; the budget is a hard
bound (resumes included); a run with two drops is seen and swept; a killed bisection resumes with
every sample taken once; on a Send fan-out the calls are in run order, each fork point's prefix
holds the previous one's, and the faulty branch is named; the command line and the page show the cost."""

from __future__ import annotations

import asyncio
import operator
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import pytest
from langgraph.types import Send
from pydantic import BaseModel

import rolegraph as rg
from rolegraph.evals import EvalStore
from rolegraph.evals.blame import blame
from rolegraph.models import ChatRequest, FunctionModel, Message
from rolegraph.traces import Trace, TraceStore

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "blame"))
from chain import Chain, chain, wrong  # noqa: E402 - the example's folder first
from chain import worker as chain_worker  # noqa: E402
from planted import STEPS, Task, over_http, planted  # noqa: E402
from planted import worker as planted_worker  # noqa: E402

K = 8


def sweep_calls(n: int, samples: int = K) -> int:
    """What the full sweep spends on an n-call run: call i's samples make n - i live calls each."""
    return samples * n * (n + 1) // 2


async def failed(store: TraceStore, graph: Any, task: BaseModel, worker: Any, accept: Any = None) -> Trace:
    async with rg.Runtime.from_models({"default": FunctionModel(worker)}, traces=store) as rt:
        for seed in range(400):
            result = await graph.run(task, runtime=rt, seed=seed)
            if not result.success and (accept is None or accept(result)):
                return store.load(result.run_id or "")
    raise AssertionError("no failed run in 400 seeds")


# -- bisection -------------------------------------------------------------------------------


@pytest.mark.parametrize(("length", "fault", "divisor"), [(6, 2, 1), (6, 4, 1), (30, 7, 3), (30, 23, 3), (100, 71, 10)])
async def test_bisection_names_the_planted_fault_with_a_fraction_of_the_sweeps_calls(
        tmp_path: Path, length: int, fault: int, divisor: int) -> None:
    store = TraceStore(tmp_path / "runs")
    if length == STEPS:
        trace = await failed(store, planted, Task(fault=fault), planted_worker)
        live = FunctionModel(planted_worker)
    else:
        trace = await failed(store, chain, Chain(length=length, fault=fault), chain_worker)
        live = FunctionModel(chain_worker)
    async with rg.Runtime.from_models({"default": live}) as rt:
        report = await blame(trace, live=rt, out=tmp_path / "blame", method="bisect", progress=False)
    assert report.method == "bisect" and report.outcome == 0.0
    assert report.decisive == fault and report.separated and report.located
    # the stated bound of one run: no more than the sweep's calls on 6 calls, a third on 30, a tenth on 100
    assert report.live_calls == len(live.requests) <= sweep_calls(length) // divisor
    assert report.tokens == sum(s.tokens for s in report.steps) > 0
    assert sum(1 for s in report.steps if s.samples) < length / 2 or length == STEPS
    assert (tmp_path / "blame" / "live-calls.log").read_text().count("\n") == report.live_calls


# -- the budget ------------------------------------------------------------------------------


class Loop(BaseModel):
    rounds: int = 8


class LoopState(Loop):
    answers: list[str] = []


class LoopDone(rg.RunResult):
    success: bool
    answers: list[str]


async def ask(state: LoopState, runtime: rg.Runtime) -> dict[str, Any]:
    i = len(state.answers)
    reply = await runtime.model("worker").chat(ChatRequest(messages=(Message(role="user", content=f"round {i}"),)))
    return {"answers": [*state.answers, reply.text]}


def _again(state: LoopState) -> str:
    return "ask" if state.answers[-1] == "again" and len(state.answers) < state.rounds else rg.END


@rg.graph(input=Loop, state=LoopState, result=LoopDone, recursion_limit=30,
          finish=lambda s: {"success": s.answers[-1] == "ok", "answers": s.answers})
def retry_loop(g: rg.StateGraph) -> None:
    """Asks until the answer is not "again": a re-sampled run may make more calls than the recorded one."""
    g.add_node(ask)
    g.add_edge(rg.START, "ask")
    g.add_conditional_edges("ask", _again, ["ask", rg.END])


def loop_worker(request: ChatRequest) -> str:
    return random.Random(request.seed).choice(["again", "again", "again", "ok", "bad"])


@pytest.mark.parametrize("method", ["bisect", "sweep"])
@pytest.mark.parametrize("budget", [1, 37, 150])
async def test_the_budget_is_never_exceeded_and_says_what_it_left(tmp_path: Path, method: str, budget: int) -> None:
    store = TraceStore(tmp_path / "runs")
    trace = await failed(store, chain, Chain(length=30, fault=12), chain_worker)
    live = FunctionModel(chain_worker)
    async with rg.Runtime.from_models({"default": live}) as rt:
        report = await blame(trace, live=rt, out=tmp_path / "blame", samples=K, method=method,  # type: ignore[arg-type]
                             budget_calls=budget, progress=False)
        assert len(live.requests) == report.live_calls <= budget
        assert report.budget_reached and report.budget_calls == budget
        assert any("budget of" in n for n in report.notes)
        # a resume under the same budget spends nothing more; the old name --max-calls is the same bound
        again = await blame(trace, live=rt, out=tmp_path / "blame", samples=K, method=method,  # type: ignore[arg-type]
                            max_calls=budget, progress=False)
    assert len(live.requests) == again.live_calls == report.live_calls


async def test_a_sample_longer_than_recorded_is_cut_at_the_budget(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "runs")
    trace = await failed(store, retry_loop, Loop(), loop_worker, accept=lambda r: len(r.answers) <= 3)
    assert 1 <= len(trace.of_kind(rg.traces.ModelCall)) <= 3
    for budget in (3, 10, 25):
        live = FunctionModel(loop_worker)
        async with rg.Runtime.from_models({"default": live}) as rt:
            report = await blame(trace, live=rt, out=tmp_path / f"blame-{budget}", samples=K, method="sweep",
                                 budget_calls=budget, graph=retry_loop, progress=False)
        assert len(live.requests) == report.live_calls <= budget
        assert report.budget_reached


# -- two drops -------------------------------------------------------------------------------


@pytest.mark.parametrize(("length", "fault", "second", "how"), [(12, 2, 6, "swept"), (24, 4, 10, "searched")])
async def test_a_run_with_two_drops_is_detected_and_its_range_swept_or_searched(
        tmp_path: Path, length: int, fault: int, second: int, how: str) -> None:
    """p is about 0.97 up to the first fault, 0.3 up to the second, then 0: after the first drop is
    located, the samples show p still above the recorded outcome, so the rest is swept (a short
    range) or searched again (a long one), and the larger drop is named."""
    store = TraceStore(tmp_path / "runs")
    task = Chain(length=length, fault=fault, q=0.05, second=second, q2=0.7)
    trace = await failed(store, chain, task, chain_worker, accept=lambda r: wrong(r.answers[fault]))
    async with rg.Runtime.from_models({"default": FunctionModel(chain_worker)}) as rt:
        report = await blame(trace, live=rt, out=tmp_path / "blame", method="bisect", progress=False)
    seen = [n for n in report.notes if "several drops" in n]
    assert len(seen) == 1 and seen[0].endswith(f"the calls between them were {how}"), report.notes
    assert report.decisive == fault and report.located and report.separated
    sampled = {s.index for s in report.steps if s.samples}
    if how == "swept":  # every call after the first drop was sampled
        assert set(range(fault + 1, length)) <= sampled
    else:  # the second drop was located too: both sides of it sampled
        assert {second, second + 1} <= sampled and len(sampled) < length


# -- resume after SIGKILL -----------------------------------------------------------------------

KILLED = """
import asyncio, sys, time
import rolegraph as rg
from rolegraph.evals.blame import blame
from rolegraph.models import FunctionModel
from rolegraph.traces import TraceStore
sys.path.insert(0, "examples/blame")
from chain import worker

def slow(request):
    time.sleep(0.01)
    return worker(request)

async def main():
    trace = TraceStore(sys.argv[1]).load(sys.argv[2])
    async with rg.Runtime.from_models({"default": FunctionModel(slow)}) as rt:
        await blame(trace, live=rt, out=sys.argv[3], method="bisect", concurrency=2, progress=False)
asyncio.run(main())
"""


async def test_a_killed_bisection_resumes_with_every_sample_taken_once(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "runs")
    trace = await failed(store, chain, Chain(length=30, fault=9), chain_worker)
    async with rg.Runtime.from_models({"default": FunctionModel(chain_worker)}) as rt:
        whole = await blame(trace, live=rt, out=tmp_path / "whole", method="bisect", progress=False)
    expected = sorted(r.case_id for r in EvalStore(tmp_path / "whole" / "results.sqlite").records())
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(store.root), trace.run_id, str(out)], cwd=ROOT)
    deadline = time.time() + 60
    while time.time() < deadline and _count(out) < 9:
        await asyncio.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _count(out)
    assert 9 <= partial < len(expected)
    live = FunctionModel(chain_worker)
    async with rg.Runtime.from_models({"default": live}) as rt:
        report = await blame(trace, live=rt, out=out, method="bisect", progress=False)
    ids = [r.case_id for r in EvalStore(out / "results.sqlite").records()]
    assert len(ids) == len(set(ids)) and sorted(ids) == expected  # each sample once, the same ones
    assert report.decisive == whole.decisive == 9
    assert [s.samples for s in report.steps] == [s.samples for s in whole.steps]
    # the resume ran only what the kill left; every call made, the killed try's too, is counted
    assert len(live.requests) < whole.live_calls <= report.live_calls


def _count(out: Path) -> int:
    try:
        return EvalStore(out / "results.sqlite").count()
    except Exception:  # noqa: BLE001 - not created yet
        return 0


# -- a Send fan-out --------------------------------------------------------------------------


class Fan(BaseModel):
    branches: int = 3


class FanState(BaseModel):
    branches: int = 3
    notes: Annotated[list[str], operator.add] = []


class FanDone(rg.RunResult):
    success: bool


async def plan(state: FanState, runtime: rg.Runtime) -> dict[str, Any]:
    await runtime.model("worker").chat(ChatRequest(messages=(Message(role="user", content="plan"),)))
    return {}


def fan_out(state: FanState) -> list[Send]:
    return [Send("branch", {"i": i}) for i in range(state.branches)]


async def branch(state: dict[str, Any], runtime: rg.Runtime) -> dict[str, Any]:
    notes = []
    for k in range(2):
        reply = await runtime.model("worker").chat(
            ChatRequest(messages=(Message(role="user", content=f"branch {state['i']} call {k}"),)))
        notes.append(f"{state['i']}:{k}:{reply.text}")
    return {"notes": notes}


async def join(state: FanState, runtime: rg.Runtime) -> dict[str, Any]:
    await runtime.model("worker").chat(ChatRequest(messages=(Message(role="user", content="join"),)))
    return {}


@rg.graph(input=Fan, state=FanState, result=FanDone, finish=lambda s: {"success": "1:0:wrong" not in s.notes})
def fan(g: rg.StateGraph) -> None:
    """A plan, three parallel branches of two calls each (branch 1's first call is the fault), a join."""
    g.add_node(plan)
    g.add_node(branch)
    g.add_node(join)
    g.add_edge(rg.START, "plan")
    g.add_conditional_edges("plan", fan_out, ["branch"])
    g.add_edge("branch", "join")
    g.add_edge("join", rg.END)


async def fan_worker(request: ChatRequest) -> str:
    await asyncio.sleep(random.random() * 0.005)  # the branches finish in any order
    text = request.messages[-1].content or ""
    if text == "branch 1 call 0":
        return "wrong" if random.Random(request.seed).random() < 0.25 else "right"
    return "right"


FAN_CALLS = 8
FAULT = 3
"""plan (step 0) is call 0; branch 0 (step 1) calls 1-2; branch 1 (step 2) calls 3-4; ..."""


async def test_blame_on_a_send_fan_out_orders_calls_by_run_and_names_the_faulty_branch(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "runs")
    trace = await failed(store, fan, Fan(), fan_worker)
    finished = [(c.step, c.call_index) for c in trace.of_kind(rg.traces.ModelCall)]
    for method in ("sweep", "bisect"):
        async with rg.Runtime.from_models({"default": FunctionModel(fan_worker)}) as rt:
            report = await blame(trace, live=rt, out=tmp_path / method, samples=K, method=method,  # type: ignore[arg-type]
                                 graph=fan, progress=False)
        assert [(s.step, s.call_index) for s in report.steps] == sorted(finished)  # run order, not finishing order
        assert report.decisive == FAULT and report.separated
        # every point's recorded prefix holds the previous one's: a sample from call i runs the 8 - i after it
        assert all(s.live_calls == s.samples * (FAN_CALLS - s.index) for s in report.steps)


async def test_a_fan_out_blame_keeps_max_calls_and_claims_separation_only_with_enough_samples(tmp_path: Path) -> None:
    store = TraceStore(tmp_path / "runs")
    trace = await failed(store, fan, Fan(), fan_worker)
    live = FunctionModel(fan_worker)
    async with rg.Runtime.from_models({"default": live}) as rt:
        bounded = await blame(trace, live=rt, out=tmp_path / "bounded", samples=K, method="sweep", max_calls=20,
                              graph=fan, progress=False)
        assert len(live.requests) == bounded.live_calls <= 20 and bounded.budget_reached
        two = await blame(trace, live=rt, out=tmp_path / "two", samples=2, method="sweep", graph=fan, progress=False)
    assert not two.separated and "Fewer than 4 samples" in two.evidence


async def test_the_report_the_json_and_the_page_show_what_blame_cost(tmp_path: Path) -> None:
    import json

    from rich.console import Console

    from rolegraph.evals.blame import write_blame_page

    store = TraceStore(tmp_path / "runs")
    trace = await failed(store, chain, Chain(length=12, fault=8), chain_worker)
    async with rg.Runtime.from_models({"default": FunctionModel(chain_worker)}) as rt:
        report = await blame(trace, live=rt, out=tmp_path / "blame", method="bisect", budget_calls=5000, progress=False)
    saved = json.loads((tmp_path / "blame" / "blame.json").read_text())
    assert saved["live_calls"] == report.live_calls > 0 and saved["tokens"] == report.tokens > 0
    assert saved["method"] == "bisect" and saved["budget_calls"] == 5000 and saved["budget_reached"] is False
    console = Console(record=True, width=160)
    report.print(console)
    assert f"cost: {report.live_calls} live model calls of a budget of 5000, {report.tokens:,} tokens" in console.export_text()
    page = write_blame_page(report, tmp_path / "blame").read_text()
    assert f'data-live-calls="{report.live_calls}" data-tokens="{report.tokens}"' in page
    unsampled = sum(1 for s in report.steps if not s.samples)
    assert unsampled > 0 and page.count("not sampled") == unsampled


async def test_the_command_line_blames_with_a_budget_a_scorer_and_a_target(tmp_path: Path) -> None:
    from rolegraph.config import EndpointConfig, RoleConfig, RuntimeConfig
    from rolegraph.models.servers.loadtest import LoadTestServer

    (tmp_path / "scorers.py").write_text("def kept(output, target):\n    return output['success'] == target\n")
    async with LoadTestServer(delay_s=0.0, reply=over_http) as server:
        (tmp_path / "rolegraph.toml").write_text(
            f'[endpoints.stub]\nbase_url = "{server.base_url}"\ndialect = "openai"\n\n'
            '[roles.default]\nendpoint = "stub"\nmodel = "stub"\n\n[roles.decider]\nendpoint = "stub"\nmodel = "stub"\n')
        config = RuntimeConfig(endpoints={"stub": EndpointConfig(base_url=server.base_url, dialect="openai")},
                               roles={"default": RoleConfig(endpoint="stub", model="stub")})
        async with rg.Runtime(config, traces=TraceStore(tmp_path / "runs")) as rt:
            for seed in range(200):
                result = await planted.run(Task(fault=3), runtime=rt, seed=seed)
                if not result.success:
                    break
        before = server.requests
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rolegraph", "blame", result.run_id or "", "--runs", str(tmp_path / "runs"),
            "--config", str(tmp_path / "rolegraph.toml"), "--max-calls", "60", "--scorer",
            f"{tmp_path / 'scorers.py'}:kept", "--target", "true", "--out", str(tmp_path / "blame"),
            cwd=tmp_path, env={**os.environ, "COLUMNS": "200"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await proc.communicate()
        spent = server.requests - before
    assert proc.returncode == 0, err.decode()[-2000:]
    text = out.decode()
    assert f"cost: {spent} live model calls of a budget of 60" in text and spent <= 60
    assert "the budget of 60 live calls ran out" in text and (tmp_path / "blame" / "blame.html").exists()
