"""Running any graph the same way: recorded, checkpointed (so an interrupted run can resume),
and replayable."""

from __future__ import annotations

import asyncio
import contextlib
import typing
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

import aiosqlite
import ormsgpack
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.types import StreamMode

from rolegraph._langgraph import final_values
from rolegraph.graphs._human import Questions, paused_result
from rolegraph.graphs._saver import open_saver
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


BUFFER = 64
"""Chunks a streamed run makes ahead of its reader before it waits for the reader."""
STOPPED = "the stream's reader stopped before the run ended"
"""Why a run whose stream was closed early ended: its trace's error says this."""


class _Raised:
    """The error the run's task ended with, handed to the reader to raise."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


async def _ignore(chunk: Any) -> None:
    return None


def _modes(stream_mode: str | Sequence[str] | None) -> tuple[str, ...]:
    """The stream modes asked for, each one LangGraph has (it would skip one it does not know, silently)."""
    modes = () if stream_mode is None else (stream_mode,) if isinstance(stream_mode, str) else tuple(stream_mode)
    known = typing.get_args(StreamMode)
    unknown = [m for m in modes if m not in known]
    if unknown:
        from rolegraph.errors import UserError

        raise UserError(f"stream_mode {unknown[0]!r} is not one of LangGraph's: {', '.join(known)}")
    return modes


@contextlib.asynccontextmanager
async def _current(runtime: Runtime) -> AsyncIterator[None]:
    with runtime.activate():
        yield


async def run_graph(graph: Graph[Any], manifest: Manifest, runtime: Runtime, *, resume: Trace | None = None,
                    checkpoint: bool = True, plan: RunPlan[Any] | None = None) -> Any:
    """Run (or, with `resume`, continue) one recorded, checkpointed run of `graph` from `manifest`,
    as `plan` decided it (default: `graph.plan(manifest)`). `checkpoint=False` skips the
    checkpointer (replays: rerunning one is cheaper than resuming)."""
    return await RunStream(graph, manifest, runtime, resume=resume, checkpoint=checkpoint, plan=plan).drain()


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
        self.modes: tuple[str, ...] = _modes(stream_mode)
        self._single = isinstance(stream_mode, str)
        self.subgraphs = subgraphs
        self._resume, self._checkpoint, self._plan = resume, checkpoint, plan
        self._result: Any = None
        self._claimed = False
        self._task: asyncio.Task[None] | None = None
        self.run_id: str | None = None
        """The run's id, once it has started."""

    @property
    def result(self) -> Any:
        """The run's result (the graph's result type); an error until the stream has ended."""
        if self._result is None:
            from rolegraph.errors import UserError

            if self._task is not None and self._task.cancelled():
                raise UserError(f"the stream of run {self.run_id} was closed before the run ended, so it has no "
                                "result; its trace records where it stopped")
            raise UserError("the run's result is there once its stream has been read to the end")
        return self._result

    # -- reading ---------------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Any]:
        self._claim()
        return self._handed()

    async def drain(self) -> Any:
        """Run to the end with no reader (what `run_graph` does): the chunks go nowhere, so the run is
        driven right here, without a task or a queue, and its result returned."""
        self._claim()
        await self._drive(_ignore)
        return self.result

    def _claim(self) -> None:
        if self._claimed:
            from rolegraph.errors import UserError

            raise UserError("a run's stream is read once: call graph.astream(...) again for another run")
        self._claimed = True

    async def _handed(self) -> AsyncIterator[Any]:
        """The chunks, made by the run in a task of its own and handed over a queue of at most `BUFFER`
        chunks (the run waits while the reader is that far behind). The run's context (its trace, the
        node in progress, the current runtime) stays in that task: none of it is set in the reader's
        loop body. A reader that stops early (`break`, an exception, `aclose()`) cancels the run, and
        its trace records that it was stopped."""
        queue: asyncio.Queue[Any] = asyncio.Queue()
        space = asyncio.Semaphore(BUFFER)

        async def put(chunk: Any) -> None:
            await space.acquire()
            queue.put_nowait(chunk)

        def ended(task: asyncio.Task[None]) -> None:  # always heard, however the run ended
            error = asyncio.CancelledError() if task.cancelled() else task.exception()
            queue.put_nowait(_END if error is None else _Raised(error))

        self._task = asyncio.create_task(self._drive(put), name=f"rolegraph run stream of {self.graph.name}")
        self._task.add_done_callback(ended)
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                if isinstance(item, _Raised):
                    raise item.error
                space.release()
                yield item
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Stop the run if it is still going (its trace then ends with the reason) and wait until it has."""
        task = self._task
        if task is not None and not task.done():
            task.cancel(STOPPED)
            await asyncio.wait([task])

    async def __aenter__(self) -> RunStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _drive(self, emit: Callable[[Any], Awaitable[None]]) -> None:
        """Run and record the whole run, handing each chunk of the modes asked for to `emit`; the result
        goes to `_result`. LangGraph's stream is closed however this ends (a stopped reader included)."""
        graph, manifest, resume = self.graph, self.manifest, self._resume
        plan = self._plan if self._plan is not None else graph.plan(manifest)
        compiled, initial, limit = plan.compiled, plan.initial, plan.recursion_limit
        runtime = self.runtime.with_prompt_dirs(graph.prompt_dirs)
        # "values" is always asked for: its last chunk at the top level is the run's final state;
        # "updates" too: its top-level chunks carry the questions (`interrupt()`) the run stops at
        modes = list(dict.fromkeys(("values", "updates", *self.modes)))
        async with runtime.record(manifest, resume=resume) as run, _current(runtime):
            self.run_id = run.run_id
            config: dict[str, Any] = {"recursion_limit": limit, "configurable": {"thread_id": run.run_id}}
            final: Any = None
            failure: BaseException | None = None
            questions = Questions(run, runtime.replay)

            async def drive(g: Any, start: Any, **kwargs: Any) -> None:
                nonlocal final
                async with contextlib.aclosing(g.astream(start, config=config, context=runtime, stream_mode=modes,
                                                         subgraphs=self.subgraphs, **kwargs)) as parts:
                    async for part in parts:
                        ns, mode, chunk = part if self.subgraphs else ((), *part)
                        if mode == "values" and not ns:
                            final = final_values(chunk)
                        elif mode == "updates" and not ns:
                            questions.saw(chunk)
                        if mode in self.modes:
                            await emit(self._shape(ns, mode, chunk))

            try:
                if run.writer is None or not self._checkpoint:
                    g, start = questions.checkpointed(compiled), initial
                    while start is not None:  # a replay answering the questions its run asked goes on
                        await drive(g, start)
                        start = questions.next_start()
                else:
                    async with aiosqlite.connect(str(run.writer.dir / CHECKPOINTS)) as conn:
                        for pragma in SQLITE_PRAGMAS:
                            await conn.execute(pragma)
                        saver = await open_saver(conn, RedactingSerde(
                            run.writer.store.redactor, types=state_types(cast(Any, graph.state_type))))
                        g = compiled.copy(update={"checkpointer": saver})
                        # a run killed before its first checkpoint resumes from its input
                        start = initial if resume is None or await saver.aget_tuple(cast(Any, config)) is None else None
                        if resume is not None and start is None:
                            start = questions.resumed()  # the answers to the questions it waits on, if any
                        try:
                            while True:  # each stop at questions that something answers goes on
                                await drive(g, start, durability=DURABILITY)
                                start = questions.next_start()
                                if start is None:
                                    break
                        except graph.recorded_failures as exc:
                            failure = exc
                            snapshot = await g.aget_state(config)  # the state the failure left, for the finish hook
                            final = snapshot.values or None
            except graph.recorded_failures as exc:
                failure = exc
            if run.pending and failure is None:
                result = paused_result(plan, final, run.run_id, run.pending)
            else:
                run.pending = []
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
