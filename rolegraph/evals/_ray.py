"""The Ray executor: (case, repeat) pairs run on Ray actors — each with its own event loop and
runtime, many pairs at once — while the driver streams cases, bounds what is in flight and
writes every result itself, so the result store keeps its exactly-once semantics.

On a cluster: start Ray (`ray start --head` on one machine, `ray start --address=HEAD:6379` on
the others), then `rolegraph eval mcq ... --executor ray --ray-address HEAD:6379`. Every machine
needs rolegraph installed, the same rolegraph.toml endpoints reachable, and the API keys the
config names in its environment (keys are never shipped with the job).
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rolegraph.errors import UserError
from rolegraph.evals._core import Benchmark, Case, EvalRecord
from rolegraph.evals._runner import run_one

if TYPE_CHECKING:
    from rolegraph.runtime import Runtime


def runtime_spec(runtime: Runtime) -> dict[str, Any]:
    """What a worker needs to rebuild the runtime: its configuration, not its live objects."""
    if runtime._given:
        raise UserError("the Ray executor needs a runtime built from configuration (Runtime.load), "
                        "not one wired with in-process models")
    return {"config": runtime.config.model_dump(mode="json"),
            "prompt_dirs": [str(d) for d in runtime.prompts.dirs[:-1]],
            "traces": str(runtime.traces.root.resolve()) if runtime.traces is not None else None}


class _Worker:
    """A Ray actor: one runtime and one event loop, serving many pairs concurrently."""

    def __init__(self, benchmark: Benchmark, spec: dict[str, Any]) -> None:
        from rolegraph.config import RuntimeConfig
        from rolegraph.prompts import PromptLibrary
        from rolegraph.runtime import Runtime
        from rolegraph.traces import TraceStore

        self.benchmark = benchmark
        self.runtime = Runtime(RuntimeConfig.model_validate(spec["config"]), prompts=PromptLibrary(*spec["prompt_dirs"]),
                               traces=TraceStore(spec["traces"]) if spec["traces"] else None)

    async def run(self, case: Case, repeat: int, seed: int, timeout_s: float | None, pair: str | None = None) -> EvalRecord:
        return await run_one(self.benchmark, case, repeat, self.runtime, seed=seed, timeout_s=timeout_s, pair=pair)


class RayExecutor:
    """`run_eval(..., executor=RayExecutor(workers=2))`; `address=None` starts a local Ray."""

    def __init__(self, *, address: str | None = None, workers: int | None = None, per_worker: int = 32,
                 num_cpus: int | None = None) -> None:
        self.address, self.workers, self.per_worker, self.num_cpus = address, workers, per_worker, num_cpus
        self._actors: list[Any] = []
        self._cycle: Any = None
        self._started_ray = False

    async def start(self, benchmark: Benchmark, runtime: Runtime) -> None:
        try:
            import ray
        except ImportError:
            raise UserError("the Ray executor needs ray: pip install 'rolegraph[ray]'") from None
        spec = runtime_spec(runtime)
        if not ray.is_initialized():
            root = str(Path(__file__).resolve().parents[2])
            env = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}}
            if self.address:
                ray.init(address=self.address, runtime_env=env, log_to_driver=False)
            else:
                ray.init(num_cpus=self.num_cpus or os.cpu_count() or 2, include_dashboard=False, runtime_env=env,
                         log_to_driver=False, _node_ip_address="127.0.0.1")  # a local Ray stays on loopback
            self._started_ray = True
        n = self.workers or max(1, int(ray.available_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]
        actor = ray.remote(num_cpus=0.5, max_concurrency=self.per_worker)(_Worker)  # type: ignore[call-overload]
        self._actors = [actor.remote(benchmark, spec) for _ in range(n)]
        self._cycle = itertools.cycle(self._actors)

    def submit(self, case: Case, repeat: int, *, seed: int, timeout_s: float | None,
               pair: str | None = None) -> Awaitable[EvalRecord]:
        ref = next(self._cycle).run.remote(case, repeat, seed, timeout_s, pair)
        return asyncio.wrap_future(ref.future())

    async def close(self) -> None:
        import ray

        for a in self._actors:
            ray.kill(a)
        self._actors = []
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False
