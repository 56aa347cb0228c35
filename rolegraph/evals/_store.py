"""Eval results in SQLite (WAL): one row per (case, repeat), written once, in small transactions
within 50 ms of finishing. A killed process loses at most the results not yet committed, which a
resume then runs again: exactly one result per (case, repeat), none lost, none duplicated. One
writer at a time: `lock()` holds `results.lock` (an flock, naming the holder's pid)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolegraph.errors import UserError
from rolegraph.evals._core import EvalRecord
from rolegraph.traces import Redactor

FLUSH_EVERY_S = 0.05
MAX_BATCH = 200

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    case_id TEXT NOT NULL, repeat INTEGER NOT NULL, status TEXT NOT NULL, record TEXT NOT NULL,
    PRIMARY KEY (case_id, repeat)
);
"""


class EvalStore:
    """One evaluation run's results: `<root>/<eval_id>/results.sqlite`."""

    def __init__(self, path: str | Path, *, redactor: Redactor | None = None) -> None:
        self.path = Path(path)
        self.redactor = redactor or Redactor()
        """Applied to every result and metadata value written; `run_eval` adds its runtime's keys."""
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
                            [(k, self.redactor(json.dumps(v, default=str))) for k, v in values.items()])

    def meta(self) -> dict[str, Any]:
        with self._connect() as con:
            return {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM meta")}

    def uid(self) -> str:
        """This evaluation's unique id, made once when first asked and kept in its metadata. Runs
        are tagged with it, so a resume adopts only the runs of this evaluation's earlier tries,
        never those of another evaluation that shares the trace store (folder names repeat)."""
        with self._connect() as con:
            row = con.execute("SELECT value FROM meta WHERE key = 'uid'").fetchone()
            if row is not None:
                return str(json.loads(row[0]))
            uid = uuid.uuid4().hex
            con.execute("INSERT OR IGNORE INTO meta VALUES ('uid', ?)", (json.dumps(uid),))
            return str(json.loads(con.execute("SELECT value FROM meta WHERE key = 'uid'").fetchone()[0]))

    # -- results -------------------------------------------------------------------------

    def done(self, *, retry_errors: bool = False) -> set[tuple[str, int]]:
        """(case, repeat) pairs that already have a result; with `retry_errors`, only those whose
        result is ok (an error or timeout is then run again, and its new record replaces it)."""
        query = "SELECT case_id, repeat FROM results" + (" WHERE status = 'ok'" if retry_errors else "")
        with self._connect() as con:
            return {(c, r) for c, r in con.execute(query)}

    def status_counts(self) -> dict[str, int]:
        with self._connect() as con:
            return {s: int(n) for s, n in con.execute("SELECT status, COUNT(*) FROM results GROUP BY status")}

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Be this store's only writer while the block runs, or raise UserError naming the pid
        that is. The lock is an flock on `results.lock`, so a writer that died (kill -9) leaves
        nothing that blocks the next one: its file, with the dead pid, is simply taken over."""
        path = self.dir / "results.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not _try_lock(fd, path):
                holder = _read_pid(path)
                raise UserError(f"{self.dir} is being written by another process"
                                f"{f' (pid {holder})' if holder else ''}; wait for it to finish or stop it, "
                                "then resume this directory")
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid()}\n".encode())
            try:
                yield
            finally:
                os.ftruncate(fd, 0)  # released: no pid left to mislead a reader
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def case_scores(self, scorer: str) -> dict[str, float]:
        """Per case, the mean `scorer` score over its ok repeats. Errors and timeouts are no answer,
        not a wrong one: they are left out (a case with no ok repeat is absent)."""
        sums: dict[str, list[float]] = {}
        for r in self.records():
            if r.status == "ok" and scorer in r.scores:
                sums.setdefault(r.case_id, []).append(r.scores[scorer].value)
        return {k: sum(v) / len(v) for k, v in sums.items()}

    def headline(self) -> dict[str, tuple[float, int]]:
        """Scorer -> (mean over ok results, n), computed inside SQLite (cheap for a list of runs)."""
        with self._connect() as con:
            rows = con.execute("SELECT s.key, AVG(json_extract(s.value, '$.value')), COUNT(*) FROM results, "
                               "json_each(results.record, '$.scores') AS s WHERE results.status = 'ok' "
                               "GROUP BY s.key ORDER BY s.key").fetchall()
        return {k: (float(mean), int(n)) for k, mean, n in rows if mean is not None}

    def writer_pid(self) -> int | None:
        """The pid of the live process writing this store, or None when none is."""
        pid = _read_pid(self.dir / "results.lock")
        return pid if pid is not None and _alive(pid) else None

    def progress(self, *, window: int = 50) -> Progress:
        """How far the evaluation is, from the store alone (for a view of a run in progress):
        results so far, the total the runner counts towards, errors, and the rate over the last
        `window` results."""
        with self._connect() as con:
            counts = {s: int(n) for s, n in con.execute("SELECT status, COUNT(*) FROM results GROUP BY status")}
            ends = [t for (t,) in con.execute(
                "SELECT json_extract(record, '$.finished_at') FROM results ORDER BY rowid DESC LIMIT ?", (window,))
                if isinstance(t, (int, float))]
            row = con.execute("SELECT value FROM meta WHERE key = 'total'").fetchone()
        total = int(json.loads(row[0])) if row else None
        pid = self.writer_pid()
        rate = 0.0
        if len(ends) >= 2 and max(ends) > min(ends):
            rate = (len(ends) - 1) / (max(ends) - min(ends))
        return Progress(done=sum(counts.values()), total=total, errors=sum(n for s, n in counts.items() if s != "ok"),
                        rate=rate, running=pid is not None, pid=pid)

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


@dataclass
class Progress:
    done: int
    total: int | None
    """None for a store written before totals were recorded."""
    errors: int
    rate: float
    """Results per second over the last few results."""
    running: bool
    pid: int | None


def _try_lock(fd: int, path: Path) -> bool:
    try:
        import fcntl
    except ImportError:  # no flock (Windows): a live pid in the file is the lock
        holder = _read_pid(path)
        return holder is None or holder == os.getpid() or not _alive(holder)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip() or "0") or None
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


UPSERT = """INSERT INTO results VALUES (?, ?, ?, ?)
ON CONFLICT (case_id, repeat) DO UPDATE SET status = excluded.status, record = excluded.record
WHERE results.status != 'ok'"""
"""A new result replaces an error or timeout (a retried pair); an ok result is never replaced."""


class ResultWriter:
    """Buffers results and inserts them in small transactions from the caller's thread: at most
    FLUSH_EVERY_S after a result arrives, or once MAX_BATCH are waiting (UPSERT: a pair that
    somehow finished twice is still stored once, and a retried error's new record replaces it).
    No thread, so no GIL hand-offs with the event loop; a commit of a few dozen rows takes well under a millisecond."""

    def __init__(self, store: EvalStore) -> None:
        self.store = store
        self._con = store._connect()
        self._rows: list[tuple[str, int, str, str]] = []
        self._first_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self.written = 0

    def put(self, record: EvalRecord) -> None:
        record.finished_at = record.finished_at or time.time()
        if not self._rows:
            self._first_at = time.monotonic()
            try:  # in an event loop: flush on time even if no further result arrives
                self._timer = asyncio.get_running_loop().call_later(FLUSH_EVERY_S, self.flush)
            except RuntimeError:
                self._timer = None
        self._rows.append((record.case_id, record.repeat, record.status,
                           self.store.redactor(record.model_dump_json())))
        if len(self._rows) >= MAX_BATCH or time.monotonic() - self._first_at >= FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._rows:
            with self._con:
                self._con.executemany(UPSERT, self._rows)
            self.written += len(self._rows)
            self._rows = []

    def close(self) -> None:
        """Write everything buffered and close the connection."""
        try:
            self.flush()
        finally:
            self._con.close()
