"""Buffer, episodic notes and rolling-summary memories. Each keeps its items in memory and, given
a MemoryStore, persists them so a later run reopens the same memory."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from rolegraph.memory._base import ByteEstimate, MemoryItem, MemoryStore, TokenCounter, fit, tokens_of

Summarizer = Callable[[str, list[str]], Awaitable[str]]
"""(the summary so far, the items to fold in, rendered) -> the new summary."""


def _words(text: str) -> set[str]:
    return {w for w in "".join(c.lower() if c.isalnum() else " " for c in text).split() if len(w) > 2}


class _Stored:
    kind = "base"

    def __init__(self, name: str, scope: str = "", *, store: MemoryStore | None = None,
                 counter: TokenCounter | None = None) -> None:
        self.name, self.scope, self.store = name, scope, store
        self.counter: TokenCounter = counter or ByteEstimate()
        self._items: list[MemoryItem] = store.load(self.kind, name, scope) if store else []

    def items(self) -> list[MemoryItem]:
        return list(self._items)

    async def add(self, item: MemoryItem) -> MemoryItem:
        self._items.append(item)
        if self.store is not None:
            self.store.put(self.kind, self.name, self.scope, item)
        return item

    async def recall(self, query: str, k: int = 5) -> list[MemoryItem]:
        """Items sharing the most words with `query` (newest first among equals)."""
        q = _words(query)
        scored = [(len(q & _words(i.content)), n, i) for n, i in enumerate(self._items)]
        scored = [s for s in scored if s[0] > 0]
        scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
        return [i for _, _, i in scored[:k]]

    async def window(self, budget_tokens: int) -> list[MemoryItem]:
        return fit(self._items, budget_tokens, self.counter)


class BufferMemory(_Stored):
    """The last `k` items (SPIN-Bench's reasoning history: the last k moves and their reasons)."""

    kind = "buffer"

    def __init__(self, name: str, scope: str = "", *, k: int = 10, **kw: Any) -> None:
        super().__init__(name, scope, **kw)
        self.k = k

    def items(self) -> list[MemoryItem]:
        return self._items[-self.k:]

    async def window(self, budget_tokens: int) -> list[MemoryItem]:
        return fit(self.items(), budget_tokens, self.counter)


class NotesMemory(_Stored):
    """Typed notes a role writes about an episode ("player 2 has two red cards") for later turns.
    A note's `subject` and `episode` live in its metadata; recall favours the subject."""

    kind = "notes"

    @staticmethod
    def make_note(subject: str, text: str, *, episode: str = "", turn: int | None = None,
                  role: str = "") -> MemoryItem:
        return MemoryItem(role=role, content=f"{subject}: {text}",
                          metadata={"subject": subject, "episode": episode, "turn": turn})

    async def note(self, subject: str, text: str, *, episode: str = "", turn: int | None = None,
                   role: str = "") -> MemoryItem:
        return await self.add(self.make_note(subject, text, episode=episode, turn=turn, role=role))

    def about(self, subject: str) -> list[MemoryItem]:
        return [i for i in self._items if i.metadata.get("subject") == subject]


class SummaryMemory(_Stored):
    """A rolling summary written by the summarizer it is handed (the runtime hands it one that asks
    the "summarizer" role with prompts/memory/summary.j2), refreshed when the window overflows:
    older items fold into the summary, recent ones stay verbatim."""

    kind = "summary"

    def __init__(self, name: str, scope: str = "", *, summarizer: Summarizer, keep_recent_share: float = 0.5,
                 **kw: Any) -> None:
        super().__init__(name, scope, **kw)
        self.summarizer = summarizer
        self.keep_recent_share = keep_recent_share
        self.summary: str = self.store.state(self.kind, name, scope, "summary", "") if self.store else ""
        self._folded: int = self.store.state(self.kind, name, scope, "folded", 0) if self.store else 0
        self.refreshes = 0

    def _summary_item(self) -> list[MemoryItem]:
        return [MemoryItem(role="summary", content=self.summary, id=f"summary-{self._folded}")] if self.summary else []

    async def window(self, budget_tokens: int) -> list[MemoryItem]:
        pending = self._items[self._folded:]
        if tokens_of([*self._summary_item(), *pending], self.counter) > budget_tokens:
            recent = fit(pending, int(budget_tokens * self.keep_recent_share), self.counter)
            older = pending[: len(pending) - len(recent)]
            if older:
                await self._refresh(older)
        pending = self._items[self._folded:]
        head = self._summary_item()
        room = budget_tokens - tokens_of(head, self.counter)
        if room < 0:  # the summary alone is over budget: show what fits of the recent items
            return fit(pending, budget_tokens, self.counter)
        return [*head, *fit(pending, room, self.counter)]

    async def _refresh(self, older: Sequence[MemoryItem]) -> None:
        self.summary = (await self.summarizer(self.summary, [i.render() for i in older])).strip()
        self._folded += len(older)
        self.refreshes += 1
        if self.store is not None:
            self.store.set_state(self.kind, self.name, self.scope, "summary", self.summary)
            self.store.set_state(self.kind, self.name, self.scope, "folded", self._folded)
