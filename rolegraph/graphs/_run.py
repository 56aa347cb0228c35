"""Running any graph the same way: recorded, checkpointed (so an interrupted run can resume),
and replayable. A graph module supplies a GraphSpec; this module does the rest."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiosqlite
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from rolegraph.traces import Manifest, Redactor, set_output

if TYPE_CHECKING:
    from rolegraph.runtime import Runtime
    from rolegraph.traces import Trace

CHECKPOINTS = "checkpoints.sqlite"


class RedactingSerde:
    """Checkpoint serializer that keeps secrets out of the checkpoint database too."""

    def __init__(self, redactor: Redactor) -> None:
        self.inner = JsonPlusSerializer()
        self.redactor = redactor

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        kind, data = self.inner.dumps_typed(obj)
        return kind, self.redactor.mask_bytes(data)

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        return self.inner.loads_typed(data)


@dataclass(frozen=True)
class Prepared:
    graph: Any
    """A compiled LangGraph (no checkpointer: one is attached per run)."""
    initial: Any
    recursion_limit: int = 25


OUTPUT_EXCLUDE = frozenset({"state", "trace_id", "trace_dir", "prompt_tokens", "completion_tokens"})


@dataclass(frozen=True)
class GraphSpec:
    """How to run one graph from a manifest, and how to turn its end into a result."""

    name: str
    prepare: Callable[[Manifest, Runtime, Any], Prepared]
    """(manifest, runtime, a prebuilt graph or None) -> what to invoke."""
    finish: Callable[[Manifest, Any, BaseException | None, str], Any]
    """(manifest, final state or None, the recorded failure or None, run id) -> result."""
    recorded_failures: tuple[type[BaseException], ...] = ()
    """Errors that end a run with a result (recorded as a failure) rather than propagate."""
    output_exclude: frozenset[str] = OUTPUT_EXCLUDE
    """Result fields left out of the trace's recorded output."""


async def run_graph(spec: GraphSpec, manifest: Manifest, runtime: Runtime, *, graph: Any = None,
                    resume: Trace | None = None, checkpoint: bool = True) -> Any:
    """Run (or, with `resume`, continue) one recorded, checkpointed run of `spec`'s graph.
    `checkpoint=False` skips the checkpointer (replays: rerunning one is cheaper than resuming)."""
    prepared = spec.prepare(manifest, runtime, graph)
    async with runtime.record(manifest, resume=resume) as run:
        config: dict[str, Any] = {"recursion_limit": prepared.recursion_limit,
                                  "configurable": {"thread_id": run.run_id}}
        try:
            if run.writer is None or not checkpoint:
                raw = await prepared.graph.ainvoke(prepared.initial, config=config, context=runtime)
            else:
                async with aiosqlite.connect(str(run.writer.dir / CHECKPOINTS)) as conn:
                    saver = AsyncSqliteSaver(conn, serde=RedactingSerde(run.writer.store.redactor))
                    g = prepared.graph.copy(update={"checkpointer": saver})
                    raw = await g.ainvoke(None if resume is not None else prepared.initial, config=config,
                                          context=runtime)
        except spec.recorded_failures as exc:
            result = spec.finish(manifest, None, exc, run.run_id)
        else:
            result = spec.finish(manifest, raw, None, run.run_id)
        if run.writer is not None and hasattr(result, "trace_dir"):
            result.trace_dir = str(run.writer.dir)
        if hasattr(result, "prompt_tokens"):
            result.prompt_tokens = run.totals.prompt_tokens
            result.completion_tokens = run.totals.completion_tokens
        set_output(run, result.model_dump(mode="json", exclude=set(spec.output_exclude)))
    return result
