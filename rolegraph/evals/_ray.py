"""The Ray executor: (case, repeat) pairs run on Ray actors — each with its own event loop and
runtime, many pairs at once — while the driver streams cases, bounds what is in flight and
writes every result itself, so the result store keeps its exactly-once semantics.

Traces come home with the results: a worker records into a temporary trace store of its own (its
node's temp dir) and returns each pair's record together with its run folder's files; the driver
adds them to its own store and index (`TraceStore.add_run`) before it writes the result, so every
result's run opens on the driver, whatever the workers' disks. No shared file system or object
store is needed. A pair that needs recorded runs (a resumed evaluation adopting a pair's earlier
run, a blame's or fork-compare's source trace) gets them shipped in with the job, once per worker.
A worker that dies mid-pair returns nothing; the driver runs the pair again on another worker.

User code travels through Ray's runtime_env: the folder of the graph's file is the job's
`working_dir` (so its module imports on every node by name) and the runtime's prompt folders are
`py_modules`. API keys are never in the job: each node reads them from its own environment.

On a cluster: start Ray (`ray start --head` on one machine, `ray start --address=HEAD:6379` on
the others), then `rolegraph eval ... --executor ray --ray-address HEAD:6379` from a machine of
the cluster. Every machine needs rolegraph installed, the same rolegraph.toml endpoints reachable,
and the API keys the config names in its environment.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import importlib.util
import itertools
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rolegraph.errors import UserError
from rolegraph.evals._core import Benchmark, Case, EvalRecord, Solver
from rolegraph.evals._runner import run_one, takes_pair

if TYPE_CHECKING:
    from rolegraph.runtime import Runtime
    from rolegraph.traces import TraceStore

log = logging.getLogger("rolegraph.evals")
RETRIES = 3
"""How often a pair is run again after the worker running it was lost (then it is an error record)."""
PROMPTS_MODULE = "rolegraph_prompts_"
"""The name prefix a prompt folder travels under as a Ray `py_modules` entry."""


def runtime_spec(runtime: Runtime) -> dict[str, Any]:
    """What a worker needs to rebuild the runtime: its configuration, not its live objects (nor its
    keys: a worker reads those from its own environment), and whether it records traces."""
    if runtime._given:
        raise UserError("the Ray executor needs a runtime built from configuration (Runtime.load), "
                        "not one wired with in-process models")
    config = runtime.config.model_dump(mode="json")
    config["traces"]["dir"] = "runs"  # a worker records into a temporary store of its own, never the driver's path
    return {"config": config, "prompt_dirs": [_module_name(d) for d in runtime.prompts.dirs[:-1]],
            "traces": runtime.traces is not None}


@dataclass(frozen=True)
class ShippedRun:
    """A run folder's files, carried between a worker's trace store and the driver's."""

    run_id: str
    files: dict[str, bytes]

    @property
    def size(self) -> int:
        return sum(len(data) for data in self.files.values())


@dataclass(frozen=True)
class OnRay:
    """How a solver that holds things of the driver's (a runtime, a trace store, open files) runs on
    Ray workers: a solver says so with an `on_ray()` method returning this."""

    build: Callable[[Runtime], Solver]
    """Makes the solver on a worker from the worker's runtime, whose trace store holds the runs shipped
    in (pickled to the worker once)."""
    runs: Callable[[Case], Sequence[Path]] = lambda case: ()
    """Driver side: the run folders a case needs on its worker."""
    home: TraceStore | None = None
    """Where the runs a worker records come home (default: the runtime's trace store)."""


@dataclass(frozen=True)
class _Job:
    case: Case
    repeat: int
    seed: int
    timeout_s: float | None
    pair: str | None
    needs: tuple[str, ...]
    """Run ids the worker's store must hold before the pair runs."""
    runs: tuple[ShippedRun, ...]
    """Those of them this worker has not been sent before."""


@dataclass(frozen=True)
class _Done:
    record: EvalRecord | None
    runs: tuple[ShippedRun, ...] = ()
    missing: tuple[str, ...] = ()
    """Runs the job needs that the worker lacks (the pair did not run: send them)."""


@dataclass
class _Slot:
    actor: Any
    sent: set[str] = field(default_factory=set)


class _Worker:
    """A Ray actor: one runtime recording into a temporary trace store on its node, one event loop,
    many pairs at once."""

    def __init__(self, benchmark: Benchmark, spec: dict[str, Any], build: Callable[[Runtime], Solver] | None) -> None:
        from rolegraph.config import RuntimeConfig
        from rolegraph.prompts import PromptLibrary
        from rolegraph.runtime import Runtime
        from rolegraph.traces import TraceStore

        root = self.root = Path(tempfile.mkdtemp(prefix="rolegraph-ray-"))
        prompts = PromptLibrary(*(_module_folder(name) for name in spec["prompt_dirs"]))
        config = RuntimeConfig.model_validate({**spec["config"], "traces": {**spec["config"]["traces"],
                                                                            "dir": str(root / "runs")}})
        self.store = TraceStore(root / "runs", snapshot_every=config.traces.snapshot_every) if spec["traces"] else None
        self.runtime = Runtime(config, prompts=prompts, traces=self.store)
        self.benchmark = benchmark if build is None else replace(benchmark, solver=build(self.runtime))
        self.received: dict[str, str] = {}
        """Run id -> the hash of its log as shipped in (a run that comes back unchanged is not sent home)."""

    async def run(self, job: _Job) -> _Done:
        if self.store is not None:
            for shipped in job.runs:
                self.store.add_run(shipped.run_id, shipped.files)
                self.received[shipped.run_id] = _digest(shipped.files["events.jsonl"])
            missing = tuple(r for r in job.needs if r not in self.received)
            if missing:
                return _Done(None, missing=missing)
        record = await run_one(self.benchmark, job.case, job.repeat, self.runtime, seed=job.seed,
                               timeout_s=job.timeout_s, pair=job.pair)
        back: tuple[ShippedRun, ...] = ()
        run_id = record.run_id
        if self.store is not None and run_id and (self.store.root / run_id / "events.jsonl").is_file():
            files = self.store.run_files(run_id)
            if self.received.get(run_id) != _digest(files["events.jsonl"]):
                back = (ShippedRun(run_id, files),)
        return _Done(record, back)

    def clean(self) -> None:
        """Remove this worker's temporary trace store: its runs went home with their results."""
        shutil.rmtree(self.root, ignore_errors=True)


@functools.cache
def _lost() -> tuple[type[BaseException], ...]:
    """Ray's errors that mean the worker (or its node) is gone, not that the pair failed."""
    from ray import exceptions as rx

    return tuple(getattr(rx, name) for name in ("RayActorError", "WorkerCrashedError", "ObjectLostError",
                                                "ActorUnavailableError", "NodeDiedError") if hasattr(rx, name))


class RayExecutor:
    """`run_eval(..., executor=RayExecutor(workers=2))`; `address=None` starts a local Ray. Used for
    several runs in a row (a blame's rounds), `async with executor.hold():` keeps its workers."""

    def __init__(self, *, address: str | None = None, workers: int | None = None, per_worker: int = 32,
                 num_cpus: int | None = None, retries: int = RETRIES) -> None:
        self.address, self.workers, self.per_worker, self.num_cpus = address, workers, per_worker, num_cpus
        self.retries = retries
        self._slots: list[_Slot] = []
        self._cycle: Any = None
        self._started_ray = False
        self._holds = 0
        self._solver: Any = None
        self._parts: OnRay | None = None
        self._home: TraceStore | None = None
        self._adopts = False
        self._make: Callable[[], Any] | None = None
        self._staged: list[Path] = []
        self.shipped_bytes = 0
        """Bytes of run files that came home (a measure of what the traces cost on the wire)."""
        self.lost = 0
        """Pairs run again because their worker was lost."""

    def hold(self) -> _Hold:
        """Keep the workers (and Ray) between runs until the block ends."""
        return _Hold(self)

    async def start(self, benchmark: Benchmark, runtime: Runtime) -> None:
        if self._slots and benchmark.solver is self._solver:
            return  # held from the run before, for the same solver
        if self._slots:
            self._kill_actors()
        try:
            import ray
        except ImportError:
            raise UserError("the Ray executor needs ray: pip install 'rolegraph[ray]'") from None
        spec = runtime_spec(runtime)
        code = _code_of(benchmark.solver)
        if not ray.is_initialized():
            env = self._runtime_env(code, runtime)
            if self.address:
                ray.init(address=self.address, runtime_env=env, log_to_driver=False)
            else:
                # "local": a Ray of its own, never one another process started (or left a stale address of)
                ray.init(address="local", num_cpus=self.num_cpus or os.cpu_count() or 2, include_dashboard=False,
                         runtime_env=env, log_to_driver=False, _node_ip_address="127.0.0.1")  # it stays on loopback
            self._started_ray = True
        elif code or spec["prompt_dirs"]:
            log.info("Ray was started before the executor: the graph's folder and prompt folders travel only if "
                     "its runtime_env carries them")
        _register_graph_serializer()
        on_ray = getattr(benchmark.solver, "on_ray", None)  # (it may start actors of its own: after ray.init)
        self._parts = on_ray() if callable(on_ray) else None
        self._solver = benchmark.solver
        self._home = self._parts.home if self._parts is not None and self._parts.home is not None else runtime.traces
        self._adopts = self._parts is None and takes_pair(benchmark.solver) and runtime.traces is not None
        shipped = benchmark if self._parts is None else replace(benchmark, solver=None)  # type: ignore[arg-type]
        shipped = replace(shipped, cases=tuple)  # the cases stay here: each job carries its own
        args = (ray.put(shipped), spec, ray.put(self._parts.build) if self._parts is not None else None)
        actor = ray.remote(num_cpus=0.5, max_concurrency=self.per_worker,  # type: ignore[call-overload]
                           scheduling_strategy="SPREAD")(_Worker)
        self._make = lambda: actor.remote(*args)
        n = self.workers or max(1, int(ray.available_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]
        self._slots = [_Slot(self._make()) for _ in range(n)]
        self._cycle = itertools.cycle(range(n))

    def submit(self, case: Case, repeat: int, *, seed: int, timeout_s: float | None,
               pair: str | None = None) -> Awaitable[EvalRecord]:
        return self._run(case, repeat, seed=seed, timeout_s=timeout_s, pair=pair)

    async def _run(self, case: Case, repeat: int, *, seed: int, timeout_s: float | None, pair: str | None) -> EvalRecord:
        needs = self._needs(case, pair)
        error: BaseException | None = None
        tries = 0
        while tries <= self.retries:
            i = next(self._cycle)
            slot = self._slots[i]
            job = _Job(case, repeat, seed, timeout_s, pair, tuple(p.name for p in needs),
                       tuple(_pack(p) for p in needs if p.name not in slot.sent))
            slot.sent.update(job.needs)
            try:
                done: _Done = await asyncio.wrap_future(slot.actor.run.remote(job).future())
            except _lost() as exc:
                error, tries = exc, tries + 1
                self.lost += 1
                self._replace(i, slot)
                continue
            if done.missing:  # sent to this worker while another job carrying them was still on its way
                slot.sent.difference_update(done.missing)
                continue
            assert done.record is not None
            return self._come_home(done)
        return EvalRecord(case_id=case.id, repeat=repeat, status="error", category=case.category,
                          error=f"its Ray worker was lost {tries} times (last: {type(error).__name__}: {error})")

    def _needs(self, case: Case, pair: str | None) -> list[Path]:
        """The driver's run folders this pair needs on its worker: the solver's, and for a graph solver
        the runs an earlier try of the evaluation left for the pair (which it may adopt)."""
        needs = list(self._parts.runs(case)) if self._parts is not None else []
        if self._adopts and pair is not None and self._home is not None:
            needs += [self._home.root / info.run_id for info in self._home.runs_for_pair(pair)
                      if info.status in ("ok", "incomplete")]
        return [p for p in needs if (p / "events.jsonl").is_file()]

    def _come_home(self, done: _Done) -> EvalRecord:
        """The runs a worker recorded, into the driver's store and index, before their result is written."""
        record = done.record
        assert record is not None
        for shipped in done.runs:
            self.shipped_bytes += shipped.size
            if self._home is not None:
                self._home.add_run(shipped.run_id, shipped.files)
        if self._home is not None and record.run_id and (self._home.root / record.run_id / "events.jsonl").is_file():
            record = record.model_copy(update={"trace_dir": str(self._home.root / record.run_id)})
        return record

    def _replace(self, i: int, slot: _Slot) -> None:
        import ray

        if self._slots[i] is not slot or self._make is None:
            return  # another pair on the same worker replaced it already
        ray.kill(slot.actor, no_restart=True)
        self._slots[i] = _Slot(self._make())

    def _runtime_env(self, code: Sequence[str], runtime: Runtime) -> dict[str, Any]:
        """The job's runtime_env: the graph file's folder as working_dir (excluding the trace
        folder, if inside it), the runtime's prompt folders as py_modules, each under a name of its
        own (`PROMPTS_MODULE` + a hash of its path)."""
        env: dict[str, Any] = {}
        folders = list(dict.fromkeys(str(Path(f).resolve().parent) for f in code if not _installed(f)))
        if len(folders) > 1:
            raise UserError(f"the graphs of this job live in {len(folders)} folders ({', '.join(folders)}); a Ray "
                            "job ships one folder: put the graph files in one folder")
        if folders:
            env["working_dir"] = folders[0]
            excludes = [".git", "__pycache__", ".venv", "*.sqlite", "*.sqlite-*"]
            if runtime.traces is not None and runtime.traces.root.resolve().is_relative_to(folders[0]):
                excludes.append("/" + runtime.traces.root.resolve().relative_to(folders[0]).as_posix())
            env["excludes"] = excludes
        modules = []
        for d in runtime.prompts.dirs[:-1]:
            if not Path(d).is_dir():
                continue
            staged = Path(tempfile.mkdtemp(prefix="rolegraph-prompts-")) / _module_name(d)
            shutil.copytree(d, staged)
            self._staged.append(staged.parent)
            modules.append(str(staged))
        if modules:
            env["py_modules"] = modules
        return env

    def _kill_actors(self) -> None:
        import ray

        try:  # each worker's temporary store on its node; a worker already gone leaves its node's temp dir as it is
            ray.get([slot.actor.clean.remote() for slot in self._slots], timeout=30)
        except Exception as exc:  # noqa: BLE001 - cleaning up is best effort
            log.debug("a Ray worker's temporary trace store was left: %s", exc)
        for slot in self._slots:
            ray.kill(slot.actor)
        self._slots = []

    async def close(self) -> None:
        if self._holds:
            return
        import ray

        self._kill_actors()
        self._solver = None
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False
        for staged in self._staged:
            shutil.rmtree(staged, ignore_errors=True)
        self._staged = []


class _Hold:
    def __init__(self, executor: RayExecutor) -> None:
        self.executor = executor

    async def __aenter__(self) -> RayExecutor:
        self.executor._holds += 1
        return self.executor

    async def __aexit__(self, *exc: object) -> None:
        self.executor._holds -= 1
        await self.executor.close()


def _code_of(solver: Any) -> list[str]:
    """The files of the graphs a solver runs (`ray_code()`, else its graph's file)."""
    ray_code = getattr(solver, "ray_code", None)
    if callable(ray_code):
        return [str(f) for f in ray_code()]
    file = getattr(getattr(solver, "graph", None), "file", None)
    return [file] if file else []


def _pack(run_dir: Path) -> ShippedRun:
    from rolegraph.traces import TraceStore

    return ShippedRun(run_dir.name, TraceStore(run_dir.parent).run_files(run_dir.name))


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _module_name(folder: str | Path) -> str:
    """The name a prompt folder travels under: unique to its path on the driver."""
    return PROMPTS_MODULE + hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:12]


def _module_folder(name: str) -> str:
    """On a worker: where Ray unpacked the prompt folder shipped as `name` (py_modules)."""
    spec = importlib.util.find_spec(name)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise UserError(f"a prompt folder of the driver's runtime did not reach this worker ({name} is not on its "
                        "path): start Ray through the executor, or give ray.init a runtime_env with its py_modules")
    return str(locations[0])


def _installed(file: str) -> bool:
    """Whether a graph's file is part of an installed package (every node imports it by name)."""
    path = Path(file).resolve()
    roots = [Path(p).resolve() for p in sys.path if p and "-packages" in p]
    roots.append(Path(__file__).resolve().parents[1])  # rolegraph's own graphs
    return any(path.is_relative_to(root) for root in roots)


def _register_graph_serializer() -> None:
    """A graph goes to a worker by its import reference (its module imported there, from the job's
    working_dir for a graph file), so that what its module computes from its own place (its prompt
    folders, its file) is the worker's; by value when the reference does not import there."""
    import ray.util

    from rolegraph.graphs import Graph

    ray.util.register_serializer(Graph, serializer=_graph_out, deserializer=_graph_in)


def _graph_out(graph: Any) -> tuple[str, str, dict[str, Any]]:
    return graph.ref, graph.name, graph.__getstate__()


def _graph_in(data: tuple[str, str, dict[str, Any]]) -> Any:
    from rolegraph.graphs import Graph, load_graph

    ref, name, state = data
    if not ref.endswith(":") and ref.partition(":")[0] != "__main__":
        try:
            found = load_graph(ref)
            if found.name == name:
                return found
        except (ImportError, AttributeError, UserError):
            pass
    graph = Graph.__new__(Graph)
    graph.__dict__.update(state)
    return graph
