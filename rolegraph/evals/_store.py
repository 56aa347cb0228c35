"""Eval results in SQLite (WAL): one row per (case, repeat), written once. A writer thread
commits results as they arrive (several per transaction under load), so the event loop never
waits on the disk; a killed process loses at most the results not yet committed, which a
resume then runs again: exactly one result per (case, repeat), none lost, none duplicated."""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rolegraph.errors import UserError
from rolegraph.evals._core import EvalRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    case_id TEXT NOT NULL, repeat INTEGER NOT NULL, status TEXT NOT NULL, record TEXT NOT NULL,
    PRIMARY KEY (case_id, repeat)
);
"""


class EvalStore:
    """One evaluation run's results: `<root>/<eval_id>/results.sqlite`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.executescript(SCHEMA)

    @property
    def dir(self) -> Path:
        return self.path.parent

    @property
    def eval_id(self) -> str:
        return self.dir.name

    @classmethod
    def open(cls, ref: str | Path, root: str | Path = "evals") -> EvalStore:
        """An existing run by directory, id, or 'last'."""
        p = Path(ref)
        if (p / "results.sqlite").exists():
            return cls(p / "results.sqlite")
        base = Path(root)
        if str(ref) in ("last", "latest"):
            found = sorted(base.glob("*/results.sqlite"), key=lambda f: f.stat().st_mtime)
            if not found:
                raise UserError(f"no evaluations in {base}")
            return cls(found[-1])
        if (base / str(ref) / "results.sqlite").exists():
            return cls(base / str(ref) / "results.sqlite")
        raise UserError(f"no evaluation '{ref}' in {base}")

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=60)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        return con

    # -- metadata ------------------------------------------------------------------------

    def set_meta(self, **values: Any) -> None:
        with self._connect() as con:
            con.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                            [(k, json.dumps(v, default=str)) for k, v in values.items()])

    def meta(self) -> dict[str, Any]:
        with self._connect() as con:
            return {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM meta")}

    # -- results -------------------------------------------------------------------------

    def done(self) -> set[tuple[str, int]]:
        """(case, repeat) pairs that already have a result."""
        with self._connect() as con:
            return {(c, r) for c, r in con.execute("SELECT case_id, repeat FROM results")}

    def count(self) -> int:
        with self._connect() as con:
            return int(con.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def records(self) -> Iterator[EvalRecord]:
        """Every result, streamed in (case, repeat) order."""
        con = self._connect()
        try:
            for (raw,) in con.execute("SELECT record FROM results ORDER BY case_id, repeat"):
                yield EvalRecord.model_validate_json(raw)
        finally:
            con.close()

    def writer(self) -> ResultWriter:
        return ResultWriter(self)


class ResultWriter:
    """A background thread that inserts results as they come (INSERT OR IGNORE: a pair that
    somehow finished twice is still stored once)."""

    def __init__(self, store: EvalStore) -> None:
        self.store = store
        # bounded: when results come faster than the disk takes them, the runner waits (flat memory)
        self._queue: queue.Queue[EvalRecord | None] = queue.Queue(maxsize=2000)
        self._error: BaseException | None = None
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="rolegraph-eval-writer", daemon=True)
        self._thread.start()

    def put(self, record: EvalRecord) -> None:
        if self._error is not None:
            raise self._error
        record.finished_at = record.finished_at or time.time()
        self._queue.put(record)

    def _run(self) -> None:
        con = self.store._connect()
        try:
            stop = False
            while not stop:
                batch = [self._queue.get()]
                while True:  # take whatever else is waiting: one transaction for all of it
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                rows = []
                for item in batch:
                    if item is None:
                        stop = True
                        continue
                    rows.append((item.case_id, item.repeat, item.status, item.model_dump_json()))
                if rows:
                    with con:
                        con.executemany("INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?)", rows)
                    self.written += len(rows)
        except BaseException as exc:  # noqa: BLE001 - surfaced to the runner on the next put() or close()
            self._error = exc
        finally:
            con.close()

    def close(self) -> None:
        """Flush everything queued and stop the thread."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
