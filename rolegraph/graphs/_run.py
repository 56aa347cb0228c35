"""Running any graph the same way: recorded, checkpointed (so an interrupted run can resume),
and replayable."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Collection, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

import aiosqlite
import ormsgpack
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from rolegraph.graphs._serde import WIDE_INT, wide_msgpack
from rolegraph.traces import Manifest, Redactor, set_output

if TYPE_CHECKING:
    from rolegraph.graphs._api import Graph, RunPlan
    from rolegraph.runtime import Runtime
    from rolegraph.traces import Trace

CHECKPOINTS = "checkpoints.sqlite"
SQLITE_PRAGMAS = (
    # 1 KiB pages on a new file (a no-op on resume): a one-call run's file is 13 KB, not 20
    "PRAGMA page_size = 1024",
    # WAL with synchronous=NORMAL: a commit is an append to the log, with no fsync. A killed
    # process loses nothing it committed (the log is in the OS's cache and read back on open);
    # only a power cut or an OS crash can lose the last commits. The rollback journal that
    # LangGraph gets by default fsyncs three times per commit, and it commits twice per step.
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
)
DURABILITY = "sync"
"""LangGraph's durability mode for recorded runs: each step's checkpoint is committed before the
next step starts, so a kill loses at most the step in flight (whose model calls the trace still
answers on resume). LangGraph's default, "async", may also lose the step before it."""


@lru_cache(maxsize=256)
def state_types(root: Any) -> frozenset[type]:
    """The classes a checkpoint of state `root` can hold: the state type and every pydantic model,
    dataclass and enum reachable through its field annotations (generics and unions included).
    Computed once per state type (a run's checkpointer asks for it)."""
    import dataclasses
    import enum
    import typing

    from pydantic import BaseModel

    found: set[type] = set()
    todo = [root]
    while todo:
        tp = todo.pop()
        todo.extend(typing.get_args(tp))
        if not isinstance(tp, type) or tp in found or tp.__module__ == "builtins":
            continue
        if issubclass(tp, BaseModel):
            found.add(tp)
            todo.extend(f.annotation for f in tp.model_fields.values())
        elif dataclasses.is_dataclass(tp) or issubclass(tp, enum.Enum):
            found.add(tp)
            if dataclasses.is_dataclass(tp):
                todo.extend(typing.get_type_hints(tp).values())
        elif typing.is_typeddict(tp):
            todo.extend(typing.get_type_hints(tp).values())
    return frozenset(found)


class RedactingSerde:
    """Checkpoint serializer that keeps secrets out of the checkpoint database too. `types` (the
    graph's state classes, see `state_types`) are registered with LangGraph's msgpack allowlist, so
    a resume neither warns about them now nor breaks when LangGraph blocks unregistered types.
    A value LangGraph's msgpack refuses (an integer outside 64 bits, from a model's answer) is
    written in the same format by `wide_msgpack`, so every value a model can produce is kept."""

    def __init__(self, redactor: Redactor, types: Collection[type] | None = None) -> None:
        allowed = sorted({(t.__module__, t.__qualname__) for t in types or ()} | ({WIDE_INT} if types else set()))
        # none known: LangGraph's default (allow, warn), since None would block all but its own types
        self.inner = JsonPlusSerializer(allowed_msgpack_modules=allowed) if allowed else JsonPlusSerializer()
        self.redactor = redactor

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        try:
            kind, data = self.inner.dumps_typed(obj)
        except ormsgpack.MsgpackEncodeError:
            kind, data = "msgpack", wide_msgpack(obj)
        return kind, self.redactor.mask_bytes(data)

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        return self.inner.loads_typed(data)


@contextlib.asynccontextmanager
async def _current(runtime: Runtime) -> AsyncIterator[None]:
    with runtime.activate():
        yield


async def run_graph(graph: Graph[Any], manifest: Manifest, runtime: Runtime, *, resume: Trace | None = None,
                    checkpoint: bool = True, plan: RunPlan[Any] | None = None) -> Any:
    """Run (or, with `resume`, continue) one recorded, checkpointed run of `graph` from `manifest`,
    as `plan` decided it (default: `graph.plan(manifest)`). `checkpoint=False` skips the
    checkpointer (replays: rerunning one is cheaper than resuming)."""
    stream = RunStream(graph, manifest, runtime, resume=resume, checkpoint=checkpoint, plan=plan)
    async for _ in stream:
        pass
    return stream.result


class RunStream:
    """One recorded run, driven as a LangGraph stream: iterate it for the chunks of `stream_mode`
    (LangGraph's shapes: a chunk for one mode, `(mode, chunk)` for a list of modes, with the
    namespace first when `subgraphs`); `result` is the run's result once the iteration ends. The
    run is recorded exactly as `run_graph` records it (the same trace, the same replay): a plain
    run is this stream with no mode asked for."""

    def __init__(self, graph: Graph[Any], manifest: Manifest, runtime: Runtime, *,
                 stream_mode: str | Sequence[str] | None = None, subgraphs: bool = False,
                 resume: Trace | None = None, checkpoint: bool = True, plan: RunPlan[Any] | None = None) -> None:
        self.graph, self.manifest, self.runtime = graph, manifest, runtime
        self.modes: tuple[str, ...] = () if stream_mode is None else (
            (stream_mode,) if isinstance(stream_mode, str) else tuple(stream_mode))
        self._single = isinstance(stream_mode, str)
        self.subgraphs = subgraphs
        self._resume, self._checkpoint, self._plan = resume, checkpoint, plan
        self._result: Any = None
        self._iter: AsyncIterator[Any] | None = None

    @property
    def result(self) -> Any:
        """The run's result (the graph's result type); an error until the stream has ended."""
        if self._result is None:
            from rolegraph.errors import UserError

            raise UserError("the run's result is there once its stream has been read to the end")
        return self._result

    def __aiter__(self) -> AsyncIterator[Any]:
        if self._iter is None:
            self._iter = self._chunks()
        return self._iter

    async def _chunks(self) -> AsyncIterator[Any]:
        graph, manifest, resume = self.graph, self.manifest, self._resume
        plan = self._plan if self._plan is not None else graph.plan(manifest)
        compiled, initial, limit = plan.compiled, plan.initial, plan.recursion_limit
        runtime = self.runtime.with_prompt_dirs(graph.prompt_dirs)
        # "values" is always asked for: its last chunk at the top level is the run's final state
        modes = list(dict.fromkeys(("values", *self.modes)))
        async with runtime.record(manifest, resume=resume) as run, _current(runtime):
            config: dict[str, Any] = {"recursion_limit": limit, "configurable": {"thread_id": run.run_id}}
            final: Any = None
            failure: BaseException | None = None

            async def drive(g: Any, start: Any, **kwargs: Any) -> AsyncIterator[Any]:
                nonlocal final
                async for part in g.astream(start, config=config, context=runtime, stream_mode=modes,
                                            subgraphs=self.subgraphs, **kwargs):
                    ns, mode, chunk = part if self.subgraphs else ((), *part)
                    if mode == "values" and not ns:
                        final = chunk
                    if mode in self.modes:
                        yield self._shape(ns, mode, chunk)

            try:
                if run.writer is None or not self._checkpoint:
                    async for part in drive(compiled, initial):
                        yield part
                else:
                    async with aiosqlite.connect(str(run.writer.dir / CHECKPOINTS)) as conn:
                        for pragma in SQLITE_PRAGMAS:
                            await conn.execute(pragma)
                        saver = AsyncSqliteSaver(conn, serde=RedactingSerde(
                            run.writer.store.redactor, types=state_types(cast(Any, graph.state_type))))
                        g = compiled.copy(update={"checkpointer": saver})
                        # a run killed before its first checkpoint resumes from its input
                        start = initial if resume is None or await saver.aget_tuple(cast(Any, config)) is None else None
                        try:
                            async for part in drive(g, start, durability=DURABILITY):
                                yield part
                        except graph.recorded_failures as exc:
                            failure = exc
                            snapshot = await g.aget_state(config)  # the state the failure left, for the finish hook
                            final = snapshot.values or None
            except graph.recorded_failures as exc:
                failure = exc
            result = plan.finish(final, failure, run.run_id)
            if run.writer is not None:
                result.trace_dir = str(run.writer.dir)
            result.prompt_tokens = run.totals.prompt_tokens
            result.completion_tokens = run.totals.completion_tokens
            exclude = set(graph.output_exclude) | ({"error"} if result.error is None else set())
            set_output(run, result.model_dump(mode="json", exclude=exclude))
        self._result = result

    def _shape(self, ns: tuple[str, ...], mode: str, chunk: Any) -> Any:
        """A chunk in the shape LangGraph's own `astream` gives for the modes asked."""
        body = chunk if self._single else (mode, chunk)
        if not self.subgraphs:
            return body
        return (ns, body) if self._single else (ns, mode, chunk)
