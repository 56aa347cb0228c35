"""Tool calls in traces: run a tool (or take its recorded answer when replaying) and write a
ToolInvocation event, large payloads going to the run's blob store."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from rolegraph.traces._events import ToolInvocation
from rolegraph.traces._recorder import current_node, current_run


class ToolSource(Protocol):
    """Answers tool calls from a recording (see ReplayTools)."""

    def answer(self, name: str, node_key: str | None, step: int | None, index: int, value: Any) -> tuple[bool, Any]: ...


async def record_tool(name: str, fn: Callable[[Any], Awaitable[Any]], value: Any,
                      replay: ToolSource | None = None) -> Any:
    """Run a tool (or take its recorded answer from `replay`) and write a ToolInvocation event
    (large payloads go to the blob store)."""
    run, node = current_run(), current_node()
    index = 0
    if node is not None:
        index = node.tools
        node.tools += 1
    started = time.perf_counter()
    error, output, replayed = None, None, False
    try:
        if replay is not None:
            replayed, output = replay.answer(name, node.key if node else None, node.step if node else None, index, value)
        if not replayed:
            output = await fn(value)
        return output
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if run is not None and not (node is not None and node.silent):
            run.totals.tool_calls += 1
            if run.writer is not None:
                run.emit(ToolInvocation(name=name, node_key=node.key if node else None, step=node.step if node else None,
                                  call_index=index, input=run.writer.payload(value),
                                  output=run.writer.payload(output), duration_s=time.perf_counter() - started,
                                  error=error, replayed=replayed))
