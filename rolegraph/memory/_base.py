"""Memory's shared parts: the item record, the Memory protocol, token counting that never
undercounts, and the SQLite store every kind of memory persists its items to."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from rolegraph.traces import Redactor

#: Tokens a chat template adds around one message (role markers, separators); counted per item.
ITEM_OVERHEAD_TOKENS = 4


class MemoryItem(BaseModel):
    """One remembered thing: who wrote it, what it says, when, and typed metadata."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:16])
    role: str = ""
    content: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    timestamp: float = Field(default_factory=time.time)

    def render(self) -> str:
        return f"{self.role}: {self.content}" if self.role else self.content


@runtime_checkable
class Memory(Protocol):
    """What a graph remembers, scoped by run, role or a name it chooses."""

    name: str
    scope: str

    async def add(self, item: MemoryItem) -> MemoryItem: ...

    async def recall(self, query: str, k: int = 5) -> list[MemoryItem]: ...

    async def window(self, budget_tokens: int) -> list[MemoryItem]: ...

    def items(self) -> list[MemoryItem]: ...


class TokenCounter(Protocol):
    def count(self, text: str) -> int: ...


class ByteEstimate:
    """UTF-8 bytes: a byte-level BPE token covers at least one byte, so this never undercounts."""

    def count(self, text: str) -> int:
        return len(text.encode()) + ITEM_OVERHEAD_TOKENS


class LlamaTokens:
    """Exact counts from a GGUF model's own tokenizer (vocabulary only, no weights loaded)."""

    def __init__(self, gguf: str | Path) -> None:
        self._tok = _vocab(str(gguf))

    def count(self, text: str) -> int:
        return len(self._tok.tokenize(text.encode(), add_bos=False, special=False)) + ITEM_OVERHEAD_TOKENS


def _quiet(level: int, text: bytes, user_data: Any) -> None:
    return None


@lru_cache(maxsize=1)
def _quiet_log() -> Any:
    """A no-op log callback, kept alive by the cache: llama.cpp holds on to the pointer."""
    import llama_cpp

    return llama_cpp.llama_log_callback(_quiet)


@lru_cache(maxsize=4)
def _vocab(path: str) -> Any:
    import atexit
    import ctypes

    import llama_cpp

    # verbose=False does not reach llama.cpp's own log ("n_ctx_seq > n_ctx_train ..." on every
    # load); only the tokenizer runs in this process, so its log is silenced here
    llama_cpp.llama_log_set(_quiet_log(), ctypes.c_void_p(0))
    vocab = llama_cpp.Llama(path, vocab_only=True, verbose=False)
    atexit.register(vocab.close)  # before interpreter teardown, or its __del__ fails noisily
    return vocab


def fit(items: Sequence[MemoryItem], budget: int, counter: TokenCounter, *, newest_first: bool = True) -> list[MemoryItem]:
    """The longest run of items (newest first by default) whose rendered tokens fit `budget`,
    returned in their original order."""
    chosen, used = [], 0
    ordered = list(reversed(items)) if newest_first else list(items)
    for item in ordered:
        cost = counter.count(item.render())
        if used + cost > budget:
            break
        chosen.append(item)
        used += cost
    return list(reversed(chosen)) if newest_first else chosen


def tokens_of(items: Iterable[MemoryItem], counter: TokenCounter) -> int:
    return sum(counter.count(i.render()) for i in items)


class MemoryStore:
    """All memories of a runtime in one SQLite file (WAL); each memory is (kind, name, scope)."""

    def __init__(self, path: str | Path, *, redactor: Redactor | None = None) -> None:
        self.path = Path(path)
        self.redactor = redactor or Redactor()
        """Applied to every item and state value written (the Runtime passes its own)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._con = sqlite3.connect(self.path, check_same_thread=False)
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("CREATE TABLE IF NOT EXISTS items (kind TEXT, name TEXT, scope TEXT, seq INTEGER, "
                          "id TEXT, item TEXT, PRIMARY KEY (kind, name, scope, id))")
        self._con.execute("CREATE TABLE IF NOT EXISTS state (kind TEXT, name TEXT, scope TEXT, key TEXT, value TEXT, "
                          "PRIMARY KEY (kind, name, scope, key))")
        self._con.commit()

    def put(self, kind: str, name: str, scope: str, item: MemoryItem) -> None:
        with self._lock, self._con:
            seq = self._con.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM items WHERE kind=? AND name=? AND scope=?",
                                    (kind, name, scope)).fetchone()[0]
            self._con.execute("INSERT OR REPLACE INTO items VALUES (?,?,?,?,?,?)",
                              (kind, name, scope, seq, item.id, self.redactor(item.model_dump_json())))

    def load(self, kind: str, name: str, scope: str) -> list[MemoryItem]:
        with self._lock:
            rows = self._con.execute("SELECT item FROM items WHERE kind=? AND name=? AND scope=? ORDER BY seq",
                                     (kind, name, scope)).fetchall()
        return [MemoryItem.model_validate_json(r[0]) for r in rows]

    def set_state(self, kind: str, name: str, scope: str, key: str, value: Any) -> None:
        with self._lock, self._con:
            self._con.execute("INSERT OR REPLACE INTO state VALUES (?,?,?,?,?)",
                              (kind, name, scope, key, self.redactor(json.dumps(value))))

    def state(self, kind: str, name: str, scope: str, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._con.execute("SELECT value FROM state WHERE kind=? AND name=? AND scope=? AND key=?",
                                    (kind, name, scope, key)).fetchone()
        return json.loads(row[0]) if row else default

    def close(self) -> None:
        with self._lock:
            self._con.close()
