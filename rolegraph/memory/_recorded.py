"""Memories as the runtime hands them out: every write and read is a trace event, and a replay
answers each read from the trace, so every role sees exactly the memory it had."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rolegraph.errors import ReplayMismatch
from rolegraph.memory._base import Memory, MemoryItem
from rolegraph.traces import MemoryRead, MemoryWrite, Replay, current_node, current_run

if TYPE_CHECKING:
    pass


class RecordedMemory:
    """Wraps a Memory: records reads and writes; answers reads from `replay`'s trace when set (in a
    fork, only the reads of the node steps before the fork point: its replayed part)."""

    def __init__(self, inner: Memory, kind: str, replay: Replay | None = None) -> None:
        self.inner, self.kind, self.replay = inner, kind, replay
        self.name, self.scope = inner.name, inner.scope
        self._recorded: dict[tuple[str | None, int], MemoryRead] | None = None

    def __getattr__(self, attr: str) -> Any:  # note(), about(), summary, ... of the inner memory
        return getattr(self.inner, attr)

    def items(self) -> list[MemoryItem]:
        return self.inner.items()

    async def add(self, item: MemoryItem | str, **fields: Any) -> MemoryItem:
        if isinstance(item, str):
            item = MemoryItem(content=item, **fields)
        stored = await self.inner.add(item)
        run, node = current_run(), current_node()
        if run is not None and run.writer is not None:
            run.emit(MemoryWrite(memory=self.name, memory_kind=self.kind, scope=self.scope,
                                 item=stored.model_dump(mode="json"), node_key=node.key if node else None))
        return stored

    async def note(self, subject: str, text: str, *, episode: str = "", turn: int | None = None,
                   role: str = "") -> MemoryItem:
        """A notes memory's note(), recorded like any other write."""
        from rolegraph.memory._kinds import NotesMemory

        return await self.add(NotesMemory.make_note(subject, text, episode=episode, turn=turn, role=role))

    async def recall(self, query: str, k: int = 5) -> list[MemoryItem]:
        return await self._read("recall", {"query": query, "k": k}, lambda: self.inner.recall(query, k))

    async def window(self, budget_tokens: int, **kw: Any) -> list[MemoryItem]:
        return await self._read("window", {"budget_tokens": budget_tokens, "query": kw.get("query")},
                                lambda: self.inner.window(budget_tokens, **kw))

    async def _read(self, op: str, args: dict[str, Any], live: Any) -> list[MemoryItem]:
        node = current_node()
        index = 0
        if node is not None:
            index = node.memory_reads
            node.memory_reads += 1
        key = node.key if node else None
        replayed = False
        replay = self.replay
        # outside any node step, a fork's reads are live (its fork point is a step)
        if replay is not None and (replay.live_from is None or (node is not None and replay.answers(node.step))):
            if self._recorded is None:
                self._recorded = {(e.node_key, e.read_index): e for e in replay.trace.of_kind(MemoryRead)
                                  if (e.memory, e.scope) == (self.name, self.scope)}
            recorded = self._recorded.get((key, index))
            if recorded is None:
                raise ReplayMismatch(f"replay: the trace has no memory read #{index} in {key} ({self.name}.{op})")
            if (recorded.memory, recorded.op) != (self.name, op):
                raise ReplayMismatch(f"replay: memory read #{index} in {key} was {recorded.memory}.{recorded.op}, "
                                     f"now {self.name}.{op}")
            items = [MemoryItem.model_validate(i) for i in recorded.items]
            replayed = True
            calls = recorded.model_calls
            if node is not None:  # the calls the recorded read made are not made again: skip their numbers
                node.calls += calls
        else:
            before = node.calls if node is not None else 0
            items = await live()
            calls = node.calls - before if node is not None else 0
        run = current_run()
        if run is not None and run.writer is not None:
            run.emit(MemoryRead(memory=self.name, memory_kind=self.kind, scope=self.scope, op=op,
                                items=[i.model_dump(mode="json") for i in items], node_key=key, read_index=index,
                                model_calls=calls, replayed=replayed, **args))
        return items


@dataclass(frozen=True)
class MemoryFeed:
    """Feeds a memory into an agent's prompt variable `var` before each run."""

    var: str
    memory: str
    kind: str = "buffer"
    mode: str = "window"
    """'window' (what fits budget_tokens) or 'recall' (the k items nearest the input `query_from`)."""
    budget_tokens: int = 512
    k: int = 5
    query_from: str | None = None
    scope_from: str | None = None
    """An input whose value is the memory's scope (e.g. the player), else the empty scope."""

    async def read(self, runtime: Any, inputs: dict[str, Any]) -> str:
        scope = str(inputs.get(self.scope_from, "")) if self.scope_from else ""
        mem = runtime.memory(self.memory, kind=self.kind, scope=scope)
        if self.mode == "recall":
            query = str(inputs.get(self.query_from, "")) if self.query_from else ""
            items = await mem.recall(query, self.k)
        else:
            items = await mem.window(self.budget_tokens)
        return "\n".join(i.render() for i in items)
