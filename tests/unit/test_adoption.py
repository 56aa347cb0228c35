"""An evaluation's numbers are its own: a run recorded by one evaluation is never reported by
another, and a resumed evaluation adopts its own earlier runs only when everything that decides a
run (endpoint, model, sampling, prompt, code, input, seed) is unchanged. Over real HTTP."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rolegraph import Runtime
from rolegraph.config import EndpointConfig, RoleConfig, RuntimeConfig
from rolegraph.evals import EvalStore, run_eval
from rolegraph.evals.mcq import mcq_benchmark
from rolegraph.models.servers.loadtest import LoadTestServer
from rolegraph.prompts import PromptLibrary
from rolegraph.traces import TraceStore
from tests.conftest import SAMPLE_MCQS

LIMIT = 4


def _runtime(url: str, runs: Path, *, model: str = "model-A", temperature: float | None = None,
             prompts: Path | None = None) -> Runtime:
    config = RuntimeConfig(endpoints={"stub": EndpointConfig(base_url=url, dialect="openai")},
                           roles={"default": RoleConfig(endpoint="stub", model=model, temperature=temperature)})
    return Runtime(config, traces=TraceStore(runs), prompts=PromptLibrary(prompts) if prompts else None)


async def _evaluate(runtime: Runtime, store: EvalStore, *, resume: bool = False) -> object:
    async with runtime:
        return await run_eval(mcq_benchmark(SAMPLE_MCQS), runtime, store=store, limit=LIMIT, resume=resume,
                              progress=False)


def _forget_results(store: EvalStore) -> None:
    """What a kill after the runs finished and before their results were committed leaves."""
    with sqlite3.connect(store.path) as con:
        con.execute("DELETE FROM results")


async def test_a_second_evaluation_never_reports_the_first_ones_results(tmp_path: Path) -> None:
    runs = tmp_path / "runs"  # shared, as the default `runs/` is
    # both evaluations' folders have the same name, as every `rolegraph eval mcq` suite's do
    first = EvalStore(tmp_path / "A" / "mcq-question" / "results.sqlite")
    second = EvalStore(tmp_path / "B" / "mcq-question" / "results.sqlite")
    async with LoadTestServer(delay_s=0, reply="The answer is (a)") as a, \
            LoadTestServer(delay_s=0, reply="The answer is (b)") as b:
        await _evaluate(_runtime(a.base_url, runs), first)
        summary = await _evaluate(_runtime(b.base_url, runs, model="model-B"), second)
    assert a.requests == LIMIT and b.requests == LIMIT  # B asked its own server every question
    assert summary.adopted == 0  # type: ignore[attr-defined]
    assert {r.output for r in first.records()} == {0} and {r.output for r in second.records()} == {1}
    assert not any(r.adopted for r in second.records())
    assert first.uid() != second.uid()
    b_runs = {r.run_id for r in second.records()}
    assert len(b_runs) == LIMIT and not b_runs & {r.run_id for r in first.records()}


async def test_resume_adopts_its_own_runs_only_while_nothing_that_decides_them_changed(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    store = EvalStore(tmp_path / "e" / "mcq-question" / "results.sqlite")
    prompts = tmp_path / "prompts"
    (prompts / "mcq").mkdir(parents=True)
    (prompts / "mcq" / "answer.j2").write_text(
        "{% block user %}{{ question }}\n\n{{ options }}\nEnd with 'The answer is (X)'.{% endblock %}")
    async with LoadTestServer(delay_s=0, reply="The answer is (a)") as server, \
            LoadTestServer(delay_s=0, reply="The answer is (a)") as other:
        await _evaluate(_runtime(server.base_url, runs), store)
        first = {r.case_id: r.run_id for r in store.records()}
        assert server.requests == LIMIT

        _forget_results(store)
        same = await _evaluate(_runtime(server.base_url, runs), store, resume=True)
        assert server.requests == LIMIT and same.adopted == LIMIT  # type: ignore[attr-defined]
        records = list(store.records())
        assert all(r.adopted for r in records) and {r.case_id: r.run_id for r in records} == first

        changes = {"model": {"model": "model-B"}, "temperature": {"temperature": 0.7},
                   "prompt": {"prompts": prompts}}
        for what, change in changes.items():
            _forget_results(store)
            before = server.requests
            summary = await _evaluate(_runtime(server.base_url, runs, **change), store,  # type: ignore[arg-type]
                                      resume=True)
            assert summary.adopted == 0, what  # type: ignore[attr-defined]
            assert server.requests - before == LIMIT, what
            assert not any(r.adopted for r in store.records()), what

        _forget_results(store)  # the same model name and settings on another server
        summary = await _evaluate(_runtime(other.base_url, runs), store, resume=True)
        assert summary.adopted == 0 and other.requests == LIMIT  # type: ignore[attr-defined]


async def test_a_store_keeps_one_uid_across_resumes(tmp_path: Path) -> None:
    store = EvalStore(tmp_path / "e" / "results.sqlite")
    uid = store.uid()
    assert len(uid) == 32 and EvalStore(store.path).uid() == uid
    assert EvalStore(tmp_path / "f" / "results.sqlite").uid() != uid
