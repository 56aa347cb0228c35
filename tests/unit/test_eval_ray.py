"""The Ray executor: a local Ray started in the test, cases run on Ray worker processes against a
real HTTP server, results written once by the driver, resumable like the asyncio executor."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rolegraph import Runtime
from rolegraph.config import EndpointConfig, RoleConfig, RuntimeConfig, TracesSettings
from rolegraph.evals import EvalStore, run_eval
from rolegraph.evals.mcq import mcq_benchmark
from rolegraph.models.servers.loadtest import LoadTestServer
from tests.conftest import SAMPLE_MCQS

ray = pytest.importorskip("ray", reason="the Ray executor needs the [ray] extra (make setup installs it)")


async def test_ray_executor_runs_cases_on_workers_exactly_once(tmp_path: Path) -> None:
    from rolegraph.evals._ray import RayExecutor

    async with LoadTestServer(delay_s=0.02, reply="The answer is (c)") as server:
        config = RuntimeConfig(endpoints={"stub": EndpointConfig(base_url=server.base_url, dialect="openai")},
                               roles={"default": RoleConfig(endpoint="stub", model="stub")},
                               traces=TracesSettings(dir=str(tmp_path / "runs")))
        runtime = Runtime.load(_write(tmp_path, config))
        store = EvalStore(tmp_path / "ray" / "results.sqlite")
        executor = RayExecutor(workers=2, num_cpus=2)
        first = await run_eval(mcq_benchmark(SAMPLE_MCQS), runtime, store=store, concurrency=6, limit=10,
                               progress=False, executor=executor)
        assert first.ran == 10 and store.count() == 10
        # resume with more cases: only the new ones run, on fresh workers
        executor = RayExecutor(workers=2, num_cpus=2)
        second = await run_eval(mcq_benchmark(SAMPLE_MCQS), runtime, store=store, concurrency=6, resume=True,
                                progress=False, executor=executor)
    assert (second.skipped, second.ran) == (10, 12)
    records = list(store.records())
    assert len(records) == len({(r.case_id, r.repeat) for r in records}) == 22
    assert all(r.status == "ok" and r.output == 2 for r in records)
    assert server.requests == 22 and server.max_in_flight <= 6
    # each case was recorded as a trace by a worker process, into the runtime's trace store
    pids = {_pid(r.run_id, tmp_path) for r in records}
    assert os.getpid() not in pids and len(pids) >= 1


def _write(tmp_path: Path, config: RuntimeConfig) -> Path:
    """The config as a rolegraph.toml, read back by Runtime.load as a user's would be."""
    ep = config.endpoints["stub"]
    text = (f'[endpoints.stub]\nbase_url = "{ep.base_url}"\ndialect = "openai"\n'
            f'[roles.default]\nendpoint = "stub"\nmodel = "stub"\n[traces]\ndir = "{config.traces.dir}"\n')
    path = tmp_path / "rolegraph.toml"
    path.write_text(text)
    return path


def _pid(run_id: str | None, tmp_path: Path) -> int:
    import sqlite3

    con = sqlite3.connect(tmp_path / "runs" / "index.sqlite")
    (pid,) = con.execute("SELECT pid FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    return int(pid)


def test_the_executor_flags_name_asyncio_or_ray_and_nothing_else() -> None:
    from rolegraph.errors import UserError
    from rolegraph.evals import RayExecutor
    from rolegraph.evals._shell import make_executor

    assert make_executor("asyncio", None) is None
    made = make_executor("ray", "head:6379")
    assert isinstance(made, RayExecutor) and made.address == "head:6379"
    with pytest.raises(UserError, match="unknown executor 'dask': use asyncio or ray"):
        make_executor("dask", None)
    with pytest.raises(UserError, match="--ray-address goes with --executor ray"):
        make_executor("asyncio", "head:6379")
