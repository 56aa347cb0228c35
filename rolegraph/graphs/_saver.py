"""The checkpointer of recorded runs: LangGraph checkpoints in SQLite whose size grows with what a
run produces, not with the square of its length (a channel is written when its version changes; a
list that grew is written as the items it gained, with a full copy now and then)."""

from __future__ import annotations

import asyncio
import json
import random
from collections import OrderedDict
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import aiosqlite
import ormsgpack
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.checkpoint.sqlite.utils import search_where

T = TypeVar("T")

FORMAT = 1
"""The format of a checkpoint file this saver writes (SQLite's `user_version`)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS rg_threads (
    id INTEGER PRIMARY KEY,
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    UNIQUE (thread_id, checkpoint_ns)
);
CREATE TABLE IF NOT EXISTS rg_checkpoints (
    thread INTEGER NOT NULL,
    checkpoint_id TEXT NOT NULL,
    parent_checkpoint_id TEXT,
    type TEXT,
    checkpoint BLOB,
    metadata BLOB,
    PRIMARY KEY (thread, checkpoint_id)
);
CREATE TABLE IF NOT EXISTS rg_blobs (
    thread INTEGER NOT NULL,
    channel TEXT NOT NULL,
    version TEXT NOT NULL,
    type TEXT NOT NULL,
    value BLOB,
    base TEXT,
    items INTEGER,
    PRIMARY KEY (thread, channel, version)
);
CREATE TABLE IF NOT EXISTS rg_writes (
    thread INTEGER NOT NULL,
    checkpoint_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    task_path TEXT NOT NULL DEFAULT '',
    idx INTEGER NOT NULL,
    channel TEXT NOT NULL,
    type TEXT,
    value BLOB,
    PRIMARY KEY (thread, checkpoint_id, task_id, idx)
);
"""
# rg_threads: each (thread, namespace) once; the other tables name it by its number, so a run's
# long thread id is not repeated in every row and index entry.
# rg_blobs: one row per (channel, version). `base` NULL: `value` is the whole encoded value.
# `base` set: the value is the list at version `base` followed by the encoded items in `value`,
# `items` long in all.

_CHAIN = """
WITH RECURSIVE chain(channel, version, type, value, base, items, depth) AS (
    SELECT channel, version, type, value, base, items, 0 FROM rg_blobs
    WHERE thread = ? AND (channel, version) IN (VALUES {pairs})
    UNION ALL
    SELECT b.channel, b.version, b.type, b.value, b.base, b.items, c.depth + 1
    FROM rg_blobs b JOIN chain c ON b.thread = ? AND b.channel = c.channel
        AND b.version = c.base
)
SELECT channel, type, value, items, depth, base FROM chain
"""

_WRITES = "SELECT task_id, channel, type, value, task_path, idx FROM rg_writes WHERE thread = ? AND checkpoint_id = ?"


def _array_header(encoded: bytes) -> int:
    """The length of the msgpack array header `encoded` starts with, or 0 when it is no array."""
    first = encoded[0] if encoded else 0
    return 1 if 0x90 <= first <= 0x9F else 3 if first == 0xDC else 5 if first == 0xDD else 0


def _items(encoded: bytes) -> int:
    """The number of items of the msgpack array `encoded`."""
    first = encoded[0]
    return first & 0x0F if first <= 0x9F else int.from_bytes(encoded[1:3] if first == 0xDC else encoded[1:5], "big")


def _array_of(items: int, body: bytes) -> bytes:
    """A msgpack array of `items` items whose encodings, one after another, are `body`."""
    if items < 16:
        return bytes([0x90 | items]) + body
    if items < 1 << 16:
        return b"\xdc" + items.to_bytes(2, "big") + body
    return b"\xdd" + items.to_bytes(4, "big") + body


@dataclass
class _Tip:
    """The last version of one channel this saver wrote or read, kept so the next version of a
    list can be written as the items it gained."""

    version: str
    body: bytes | None  # the encoded items, when the value is a msgpack array
    items: int
    chain: int  # appended parts since the last full copy


class DeltaSqliteSaver(BaseCheckpointSaver[float]):
    """An async SQLite checkpointer for LangGraph whose file grows with what a run produces.

    Each channel's value is stored once per version (a channel that did not change costs nothing),
    and a list whose new value extends its last stored one (an `operator.add` list, `add_messages`
    appending) is stored as the items it gained, or, when those items are exactly the step's writes
    (stored anyway, as pending writes), as a reference to them. The prefix is checked on the encoded
    bytes, so a list changed in place is stored whole and every read is exact. A full copy is written
    after `full_every` appended parts: a read fetches the value's own bytes (the last full copy and the
    parts appended since), in at most `full_every + 1` rows of one query.

    Every checkpoint `aput` returns is committed. `serde` encodes every value (pass one that keeps
    secrets out). Pass the open connection; the caller closes it."""

    def __init__(self, conn: aiosqlite.Connection, *, serde: SerializerProtocol | None = None,
                 full_every: int = 512, tips: int = 256) -> None:
        super().__init__(serde=serde)
        self.conn = conn
        self.full_every = full_every
        self.lock = asyncio.Lock()
        self.loop = asyncio.get_running_loop()
        self.is_setup = False
        self._tips: OrderedDict[tuple[str, str, str], _Tip] = OrderedDict()
        self._threads: dict[tuple[str, str], int] = {}
        # the writes put on a checkpoint, by (thread, checkpoint id), until its child is put:
        # (task_path, task_id, idx, channel, type, encoded value)
        self._writes: OrderedDict[tuple[int, str], list[tuple[str, str, int, str, str, bytes]]] = OrderedDict()
        self._max_tips = tips

    async def setup(self) -> None:
        """Create the tables of a new file (a no-op on one that has them)."""
        async with self.lock:
            if self.is_setup:
                return
            await self.conn.execute("PRAGMA journal_mode = WAL")
            await self.conn.executescript(SCHEMA)
            await self.conn.execute(f"PRAGMA user_version = {FORMAT}")
            await self.conn.commit()
            self.is_setup = True

    def get_next_version(self, current: float | None, channel: None) -> float:
        """A version that no other branch of the thread has: the next whole number and a random
        fraction below one half (a fork from an older checkpoint must not reuse a version whose
        value differs). A float: nine bytes in a checkpoint, where LangGraph's Postgres saver's
        strings take fifty."""
        number = 0 if current is None else int(str(current).split(".")[0])
        return number + 1 + random.random() / 2

    async def _thread(self, thread_id: str, ns: str, *, create: bool) -> int | None:
        """The number that names (thread, namespace) in the tables; None for one never written."""
        key = (thread_id, ns)
        if key not in self._threads:
            if create:
                await self.conn.execute("INSERT OR IGNORE INTO rg_threads (thread_id, checkpoint_ns) VALUES (?, ?)", key)
            cursor = await self.conn.execute("SELECT id FROM rg_threads WHERE thread_id = ? AND checkpoint_ns = ?", key)
            row = await cursor.fetchone()
            await cursor.close()
            if row is None:
                return None
            self._threads[key] = row[0]
        return self._threads[key]

    # reading

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        await self.setup()
        thread_id = str(config["configurable"]["thread_id"])
        ns = config["configurable"].get("checkpoint_ns", "")
        async with self.lock:
            thread = await self._thread(thread_id, ns, create=False)
            if thread is None:
                return None
            if checkpoint_id := get_checkpoint_id(config):
                cursor = await self.conn.execute(
                    "SELECT checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata FROM rg_checkpoints "
                    "WHERE thread = ? AND checkpoint_id = ?", (thread, checkpoint_id))
            else:
                cursor = await self.conn.execute(
                    "SELECT checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata FROM rg_checkpoints "
                    "WHERE thread = ? ORDER BY checkpoint_id DESC LIMIT 1", (thread,))
            row = await cursor.fetchone()
            await cursor.close()
            if row is None:
                return None
            return await self._tuple(thread_id, ns, thread, *row)

    async def alist(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
                    before: RunnableConfig | None = None, limit: int | None = None) -> AsyncIterator[CheckpointTuple]:
        await self.setup()
        where, params = search_where(config, filter, before)
        query = (f"SELECT thread_id, checkpoint_ns, thread, checkpoint_id, parent_checkpoint_id, type, checkpoint, "
                 f"metadata FROM rg_checkpoints JOIN rg_threads ON thread = id {where} ORDER BY checkpoint_id DESC")
        if limit is not None:
            query += " LIMIT ?"
            params = (*params, limit)
        async with self.lock:
            cursor = await self.conn.execute(query, params)
            rows = list(await cursor.fetchall())
            await cursor.close()
        for thread_id, ns, *rest in rows:
            async with self.lock:
                found = await self._tuple(thread_id, ns, *rest)
            yield found

    async def _tuple(self, thread_id: str, ns: str, thread: int, checkpoint_id: str, parent_id: str | None, type_: str,
                     data: bytes, metadata: bytes | None) -> CheckpointTuple:
        checkpoint = cast(Checkpoint, self.serde.loads_typed((type_, data)))
        checkpoint["channel_values"] = await self._values(thread_id, ns, thread, checkpoint["channel_versions"])
        cursor = await self.conn.execute(_WRITES, (thread, checkpoint_id))
        writes = sorted(await cursor.fetchall(), key=lambda r: writes_sort_key(r[4], r[0], r[5]))
        await cursor.close()

        def at(cid: str) -> RunnableConfig:
            return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": cid}}

        return CheckpointTuple(
            at(checkpoint_id), checkpoint,
            cast(CheckpointMetadata, json.loads(metadata) if metadata is not None else {}),
            at(parent_id) if parent_id else None,
            [(task_id, channel, self.serde.loads_typed((t, value))) for task_id, channel, t, value, _, _ in writes])

    async def _values(self, thread_id: str, ns: str, thread: int, versions: ChannelVersions) -> dict[str, Any]:
        """The channel values at `versions`, each rebuilt from its full copy and the parts appended to it."""
        if not versions:
            return {}
        pairs = [(channel, str(version)) for channel, version in versions.items()]
        cursor = await self.conn.execute(_CHAIN.format(pairs=", ".join(["(?, ?)"] * len(pairs))),
                                         (thread, *[x for pair in pairs for x in pair], thread))
        rows = await cursor.fetchall()
        await cursor.close()
        chains: dict[str, list[tuple[int, str, bytes | None, int | None, str | None]]] = {}
        for channel, type_, value, items, depth, base in rows:
            chains.setdefault(channel, []).append((depth, type_, value, items, base))
        values: dict[str, Any] = {}
        for channel, version in pairs:
            chain = sorted(chains.get(channel, ()), key=lambda row: -row[0])  # the full copy first
            if not chain or chain[-1][1] == "empty":
                continue
            _, type_, head, _, base = chain[0]
            if base is not None:
                raise ValueError(f"checkpoint file damaged: channel {channel!r} lacks version {base}, "
                                 "which its later versions extend")
            if len(chain) == 1:
                values[channel] = self.serde.loads_typed((type_, head or b""))
                self._remember(thread_id, ns, channel, version, type_, head or b"")
                continue
            start = _array_header(head or b"")
            parts = [await self._written(thread, part or b"") if t == "writes" else part or b""
                     for _, t, part, _, _ in chain[1:]]
            body = b"".join([(head or b"")[start:], *parts])
            items = chain[-1][3] or 0
            values[channel] = self.serde.loads_typed((type_, _array_of(items, body)))
            self._keep((thread_id, ns, channel), _Tip(version, body, items, len(chain) - 1))
        return values

    async def _written(self, thread: int, refs: bytes) -> bytes:
        """The encoded items of the writes a "writes" row names (the items a list gained in a step)."""
        parent, keys = ormsgpack.unpackb(refs)
        found = b""
        for task_id, idx in keys:
            cursor = await self.conn.execute("SELECT value FROM rg_writes WHERE thread = ? AND checkpoint_id = ? AND "
                                             "task_id = ? AND idx = ?", (thread, parent, task_id, idx))
            row = await cursor.fetchone()
            await cursor.close()
            if row is None:
                raise ValueError(f"checkpoint file damaged: the write {task_id}/{idx} on checkpoint {parent}, "
                                 "part of a later list, is missing")
            found += row[0][_array_header(row[0]):]
        return found

    # writing

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
                   new_versions: ChannelVersions) -> RunnableConfig:
        await self.setup()
        thread_id = str(config["configurable"]["thread_id"])
        ns = config["configurable"].get("checkpoint_ns", "")
        values = checkpoint["channel_values"]
        bare = cast(Checkpoint, {**checkpoint, "channel_values": {}})
        type_, data = self.serde.dumps_typed(bare)
        meta = json.dumps(get_checkpoint_metadata(config, metadata), ensure_ascii=False).encode("utf-8", "ignore")
        async with self.lock:
            thread = await self._thread(thread_id, ns, create=True)
            assert thread is not None  # made above
            # every channel whose version this saver has not stored yet: those in `new_versions`, and
            # any other it has not seen (a fork from an older checkpoint; ignored if already there)
            parent = config["configurable"].get("checkpoint_id")
            written = self._writes.pop((thread, parent), []) if parent else []
            blobs = [self._blob(thread_id, ns, channel, str(version), values, parent, written)
                     for channel, version in checkpoint["channel_versions"].items()]
            await self.conn.executemany(
                "INSERT OR IGNORE INTO rg_blobs (thread, channel, version, type, value, base, items) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", [(thread, *b) for b in blobs if b is not None])
            await self.conn.execute(
                "INSERT OR REPLACE INTO rg_checkpoints (thread, checkpoint_id, parent_checkpoint_id, type, checkpoint, "
                "metadata) VALUES (?, ?, ?, ?, ?, ?)",
                (thread, checkpoint["id"], config["configurable"].get("checkpoint_id"), type_, data, meta))
            await self.conn.commit()
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}}

    def _blob(self, thread_id: str, ns: str, channel: str, version: str, values: dict[str, Any], parent: str | None,
              written: list[tuple[str, str, int, str, str, bytes]]) -> tuple[Any, ...] | None:
        """The row that stores `channel` at `version`: None when it is stored already, the items a
        list gained when its last stored version is a prefix of it (a reference to the step's
        writes when they are those items, byte for byte), else the whole value."""
        key = (thread_id, ns, channel)
        tip = self._tips.get(key)
        if tip is not None and tip.version == version:
            return None
        if channel not in values:
            self._keep(key, _Tip(version, None, 0, 0))
            return (channel, version, "empty", None, None, None)
        type_, data = self.serde.dumps_typed(values[channel])
        start = _array_header(data) if type_ == "msgpack" else 0
        if start and tip is not None and tip.body is not None and data.startswith(tip.body, start):
            # the check above compares from the first item: the previous items, encoded alike
            part = data[start + len(tip.body):]
            items = _items(data)
            if tip.chain < self.full_every:  # (a full copy plus its parts is the value: no bytes are read twice)
                self._keep(key, _Tip(version, data[start:], items, tip.chain + 1))
                mine = sorted(w for w in written if w[3] == channel)
                if part and mine and all(w[4] == "msgpack" and _array_header(w[5]) for w in mine) and part == b"".join(
                        w[5][_array_header(w[5]):] for w in mine):
                    refs = ormsgpack.packb([parent, [[w[1], w[2]] for w in mine]])
                    return (channel, version, "writes", refs, tip.version, items)
                return (channel, version, type_, part, tip.version, items)
        self._remember(thread_id, ns, channel, version, type_, data)
        return (channel, version, type_, data, None, None)

    def _remember(self, thread_id: str, ns: str, channel: str, version: str, type_: str, data: bytes) -> None:
        """A full copy of `channel` at `version`, as the tip the next version's items are appended to."""
        start = _array_header(data) if type_ == "msgpack" else 0
        items = _items(data) if start else 0
        self._keep((thread_id, ns, channel), _Tip(version, data[start:] if start else None, items, 0))

    def _keep(self, key: tuple[str, str, str], tip: _Tip) -> None:
        self._tips[key] = tip
        self._tips.move_to_end(key)
        while len(self._tips) > self._max_tips:
            self._tips.popitem(last=False)

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                          task_path: str = "") -> None:
        await self.setup()
        verb = "REPLACE" if all(w[0] in WRITES_IDX_MAP for w in writes) else "IGNORE"
        configurable = config["configurable"]
        encoded = [(WRITES_IDX_MAP.get(channel, idx), channel, *self.serde.dumps_typed(value))
                   for idx, (channel, value) in enumerate(writes)]
        async with self.lock:
            thread = await self._thread(str(configurable["thread_id"]), str(configurable.get("checkpoint_ns", "")),
                                        create=True)
            assert thread is not None  # made above
            cursor = await self.conn.executemany(
                f"INSERT OR {verb} INTO rg_writes (thread, checkpoint_id, task_id, task_path, idx, channel, type, value) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(thread, str(configurable["checkpoint_id"]), task_id, task_path, *row) for row in encoded])
            stored = cursor.rowcount == len(encoded)  # none was there already (with other bytes, perhaps)
            await cursor.close()
            await self.conn.commit()
            if verb == "IGNORE" and stored:  # writes to channels, as stored: a list's next items may be these
                key = (thread, str(configurable["checkpoint_id"]))
                kept = self._writes.setdefault(key, [])
                kept.extend((task_path, task_id, idx, channel, t, v) for idx, channel, t, v in encoded
                            if not any(k[1] == task_id and k[2] == idx for k in kept))
                self._writes.move_to_end(key)
                while len(self._writes) > self._max_tips:
                    self._writes.popitem(last=False)

    async def adelete_thread(self, thread_id: str) -> None:
        await self.setup()
        async with self.lock:
            for table in ("rg_checkpoints", "rg_blobs", "rg_writes"):
                await self.conn.execute(f"DELETE FROM {table} WHERE thread IN (SELECT id FROM rg_threads "
                                        "WHERE thread_id = ?)", (str(thread_id),))
            await self.conn.execute("DELETE FROM rg_threads WHERE thread_id = ?", (str(thread_id),))
            await self.conn.commit()
            for gone in [k for k in self._threads if k[0] == str(thread_id)]:
                del self._threads[gone]
            for key in [k for k in self._tips if k[0] == str(thread_id)]:
                del self._tips[key]

    # LangGraph's synchronous interface, for a graph run from another thread

    def _wait(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            if asyncio.get_running_loop() is self.loop:
                coro.close()
                raise asyncio.InvalidStateError("DeltaSqliteSaver's synchronous methods are for other threads; "
                                                "in its event loop use the async ones (aget_tuple, ainvoke, ...)")
        except RuntimeError:
            pass
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._wait(self.aget_tuple(config))

    def list(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
             before: RunnableConfig | None = None, limit: int | None = None) -> Iterator[CheckpointTuple]:
        async def collect() -> list[CheckpointTuple]:
            return [t async for t in self.alist(config, filter=filter, before=before, limit=limit)]

        yield from self._wait(collect())

    def put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
            new_versions: ChannelVersions) -> RunnableConfig:
        return self._wait(self.aput(config, checkpoint, metadata, new_versions))

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                   task_path: str = "") -> None:
        self._wait(self.aput_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        self._wait(self.adelete_thread(thread_id))


async def open_saver(conn: aiosqlite.Connection, serde: SerializerProtocol) -> BaseCheckpointSaver[Any]:
    """The checkpointer for the file open on `conn`: `DeltaSqliteSaver`, or LangGraph's
    `AsyncSqliteSaver` for a file it wrote (a run recorded before this format, resumed or checked)."""
    cursor = await conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('checkpoints', "
                                "'rg_checkpoints')")
    tables = {name for (name,) in await cursor.fetchall()}
    await cursor.close()
    if "checkpoints" in tables and "rg_checkpoints" not in tables:
        return AsyncSqliteSaver(conn, serde=serde)
    return DeltaSqliteSaver(conn, serde=serde)
