"""A case cut off by the evaluation's timeout keeps its trace: the record names the run, and the run's
trace holds the model call the timeout cancelled (error "cancelled") with the transport retries made
before it, the run finished as an error."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import rolegraph as rg
from rolegraph import Agent, Runtime
from rolegraph.evals import Benchmark, Case, EvalStore, run_eval
from rolegraph.models import ChatRequest, FunctionModel, OpenAICompatModel, RetryPolicy
from rolegraph.models.servers.embedded import free_port
from rolegraph.prompts import PromptLibrary
from rolegraph.traces import ErrorEvent, ModelCall, TraceStore

slow_writer = Agent(name="writer", prompt="slow/write", output=str)


class Question(BaseModel):
    q: str


class State(BaseModel):
    q: str
    draft: str = ""


async def write(state: State, runtime: rg.Runtime) -> dict[str, Any]:
    return {"draft": await slow_writer.run(runtime, q=state.q)}


@rg.graph(input=Question, state=State, name="slow_eval", agents=[slow_writer])
def slow_graph(g: rg.StateGraph) -> None:
    g.add_node(write)
    g.add_edge(rg.START, "write")
    g.add_edge("write", rg.END)


@pytest.fixture
def library(tmp_path: Path) -> PromptLibrary:
    (tmp_path / "prompts" / "slow").mkdir(parents=True)
    (tmp_path / "prompts" / "slow" / "write.j2").write_text("Write about {{ q }}")
    return PromptLibrary(tmp_path / "prompts")


async def _evaluate(tmp_path: Path, runtime: Runtime) -> Any:
    cases = [Case(id="c1", input=Question(q="slow"))]
    bench = Benchmark(name="slow", cases=lambda: iter(cases), solver=slow_graph.solver(), scorers=[])
    store = EvalStore(tmp_path / "evals" / "e1" / "results.sqlite")
    async with runtime:
        # the model never answers, so the timeout always ends the case; 1.5 s leaves a busy machine time
        # to start the run (and make the refused connections) first
        summary = await run_eval(bench, runtime, store=store, timeout_s=1.5, progress=False)
    assert summary.ran == 1 and summary.errors == 1
    [record] = store.records()
    return record


async def test_a_timed_out_case_keeps_its_trace_and_the_cancelled_call(tmp_path: Path, library: PromptLibrary) -> None:
    async def never(request: ChatRequest) -> str:
        await asyncio.Event().wait()  # answers after the case's timeout, i.e. never
        return "late"

    store = TraceStore(tmp_path / "runs")
    record = await _evaluate(tmp_path, Runtime.from_models({"default": FunctionModel(never)}, prompts=library,
                                                           traces=store))
    assert record.status == "timeout" and record.run_id is not None
    assert record.trace_dir == str(store.load(record.run_id).dir)
    trace = store.load(record.run_id)
    assert trace.status == "error" and trace.complete
    [call] = trace.of_kind(ModelCall)
    assert call.error == "cancelled" and call.response is None and call.agent == "writer"
    assert "CancelledError" in [e.type for e in trace.of_kind(ErrorEvent)]


async def test_a_timed_out_case_keeps_the_transport_retries_made_before_it(
        tmp_path: Path, library: PromptLibrary) -> None:
    waits = 0

    async def sleep(seconds: float) -> None:  # two waits go by at once; the third outlasts the case
        nonlocal waits
        waits += 1
        if waits > 2:
            await asyncio.Event().wait()

    refused = OpenAICompatModel(f"http://127.0.0.1:{free_port()}/v1", "m", dialect="openai", sleep=sleep,
                                retry=RetryPolicy(attempts=5))
    store = TraceStore(tmp_path / "runs")
    record = await _evaluate(tmp_path, Runtime.from_models({"default": refused}, prompts=library, traces=store))
    assert record.status == "timeout" and record.run_id is not None
    [call] = store.load(record.run_id).of_kind(ModelCall)
    assert call.error == "cancelled"
    assert [r.attempt for r in call.retries] == [1, 2, 3]  # each refused connection, noted before its wait
