"""Trace storage: one directory per run (an append-only events.jsonl plus content-addressed
blobs) and a SQLite index for listing. A killed writer leaves a log that loads up to its last
complete line."""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic_core import PydanticSerializationError, to_json, to_jsonable_python

from rolegraph.errors import UserError
from rolegraph.models import clean_value
from rolegraph.traces._events import (
    BlobRef,
    Event,
    ModelCall,
    RunFinished,
    RunStarted,
    parse_event,
)
from rolegraph.traces._redact import Redactor
from rolegraph.traces._trace import BLOB_KEY, Trace

INLINE_LIMIT = 16 * 1024
FIELD_LIMIT = 64 * 1024
"""A string in an event longer than this (a huge input, a long prompt built from it) is stored once
per run as a content-addressed blob and put back when the trace is loaded: a value repeated in
every step's state and request takes its size on disk once, not once per event."""


class TraceStore:
    """Runs under `root/<run_id>/`, indexed in `root/index.sqlite`."""

    def __init__(self, root: str | Path, *, redactor: Redactor | None = None) -> None:
        self.root = Path(root)
        self.redactor = redactor or Redactor()
        self._lock = threading.RLock()
        self._con: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"TraceStore({str(self.root)!r})"

    # -- writing ------------------------------------------------------------------------

    def writer(self, run_id: str) -> RunWriter:
        run_dir = self.root / run_id
        run_dir.mkdir(parents=True, exist_ok=False)
        return RunWriter(self, run_id, run_dir)

    def append_writer(self, trace: Trace) -> RunWriter:
        """Reopen a run's log to continue it, dropping a last line cut off by a kill."""
        log = trace.dir / "events.jsonl"
        data = log.read_bytes()
        keep = data[: data.rfind(b"\n") + 1] if trace.dropped_tail else data
        if len(keep) != len(data):
            log.write_bytes(keep)
        writer = RunWriter(self, trace.run_id, trace.dir)
        writer._seq = len(trace.events)
        with self._lock, self._index() as con:
            con.execute("UPDATE runs SET status='running', pid=?, finished=NULL WHERE run_id=?",
                        (os.getpid(), trace.run_id))
        return writer

    def _index(self) -> sqlite3.Connection:
        """One connection per store, opened on first use (opening one per run cost milliseconds)."""
        if self._con is None:
            self.root.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.root / "index.sqlite", timeout=30, check_same_thread=False)
            con.execute("PRAGMA journal_mode=WAL")
            # no fsync per commit (two commits a run): a killed process loses no committed row in
            # WAL mode; only a power cut could lose the last rows, which list() would then miss
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute(
                "CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, graph TEXT, started REAL, "
                "finished REAL, status TEXT, parent TEXT, pid INTEGER, model_calls INTEGER, tokens INTEGER, "
                "summary TEXT, pair TEXT)"
            )
            if "pair" not in {row[1] for row in con.execute("PRAGMA table_info(runs)")}:  # an older index
                con.execute("ALTER TABLE runs ADD COLUMN pair TEXT")
            con.execute("CREATE INDEX IF NOT EXISTS runs_pair ON runs (pair) WHERE pair IS NOT NULL")
            con.execute("CREATE INDEX IF NOT EXISTS runs_started ON runs (started)")
            con.execute("CREATE INDEX IF NOT EXISTS runs_graph ON runs (graph, started)")
            # the run list's filters and sorts (`page`), so that none of them sorts 100,000 rows per request
            con.execute("CREATE INDEX IF NOT EXISTS runs_status ON runs (status, started)")
            con.execute("CREATE INDEX IF NOT EXISTS runs_duration ON runs ((finished - started))")
            con.execute("CREATE INDEX IF NOT EXISTS runs_tokens ON runs (tokens)")
            con.execute("CREATE INDEX IF NOT EXISTS runs_parent ON runs (parent) WHERE parent IS NOT NULL")
            self._con = con
        return self._con

    def _index_start(self, started: RunStarted) -> None:
        summary = json.dumps(started.manifest.input, default=str)[:2000]
        with self._lock, self._index() as con:
            con.execute("INSERT OR REPLACE INTO runs (run_id, graph, started, finished, status, parent, pid, "
                        "model_calls, tokens, summary, pair) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        (started.run_id, started.manifest.graph, started.ts, None, "running",
                         started.parent.run_id if started.parent else None, os.getpid(), 0, 0,
                         self.redactor(summary), started.manifest.tags.get("pair")))

    def _index_finish(self, run_id: str, finished: RunFinished) -> None:
        t = finished.totals
        with self._lock, self._index() as con:
            con.execute("UPDATE runs SET finished=?, status=?, model_calls=?, tokens=? WHERE run_id=?",
                        (finished.ts, finished.status, t.model_calls + t.replayed_calls,
                         t.prompt_tokens + t.completion_tokens, run_id))

    # -- reading ------------------------------------------------------------------------

    def list(self, *, graph: str | None = None, status: str | None = None, search: str | None = None,
             limit: int = 50) -> list[RunInfo]:
        """Runs, newest first; `search` matches text in the run's input (the first of `page`'s pages)."""
        return self.page(graph=graph, status=status, search=search, limit=limit).runs

    def page(self, *, graph: str | None = None, status: str | None = None, search: str | None = None,
             parent: str | None = None, sort: str = "started", descending: bool = True, offset: int = 0,
             limit: int = 50) -> RunPage:
        """One page of the run list and how many runs match, for lists of any length (the index,
        not the run directories): filtered by graph, status ("incomplete": a dead writer's run),
        text in the input and parent run, sorted by any of `SORT_COLUMNS`."""
        if sort not in SORT_COLUMNS:
            raise UserError(f"cannot sort runs by '{sort}'; one of: {', '.join(SORT_COLUMNS)}")
        if not (self.root / "index.sqlite").exists():
            return RunPage([], 0)
        where: list[str] = []
        args: list[Any] = []
        with self._lock, self._index() as con:
            if status in ("running", "incomplete"):
                pids = [p for (p,) in con.execute("SELECT DISTINCT pid FROM runs WHERE status = 'running'")]
                live = [p for p in pids if _pid_alive(p)]
                where.append("status = 'running'")
                if live or status == "running":  # (`x NOT IN ()` is not valid SQL, and NULL would match nothing)
                    where.append(f"pid {'IN' if status == 'running' else 'NOT IN'} ({','.join('?' * len(live)) or 'NULL'})")
                    args += live
            elif status:
                where.append("status = ?")
                args.append(status)
            if graph:
                where.append("graph = ?")
                args.append(graph)
            if parent:
                where.append("parent = ?")
                args.append(parent)
            if search:
                where.append("summary LIKE ? ESCAPE '\\'")
                args.append("%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
            clause = " WHERE " + " AND ".join(where) if where else ""
            total = int(con.execute("SELECT COUNT(*) FROM runs" + clause, args).fetchone()[0])
            way = "DESC" if descending else "ASC"
            order = f"{SORT_COLUMNS[sort]} {way}, rowid {way}"  # ties by rowid: every index holds it, so none sorts
            rows = con.execute(f"SELECT {_COLUMNS} FROM runs{clause} ORDER BY {order} LIMIT ? OFFSET ?",
                               [*args, max(1, limit), max(0, offset)]).fetchall()
        infos = _with_liveness([RunInfo(*row) for row in rows])
        for info in infos:
            if info.status in ("running", "incomplete"):
                info.model_calls, info.tokens = _recorded_counts(self.root / info.run_id)
        return RunPage(infos, total)

    def graphs(self) -> builtins.list[str]:
        """The graph names the index holds, sorted."""
        if not (self.root / "index.sqlite").exists():
            return []
        with self._lock, self._index() as con:
            return [g for (g,) in con.execute("SELECT DISTINCT graph FROM runs ORDER BY graph")]

    def runs_for_pair(self, pair: str) -> builtins.list[RunInfo]:
        """The runs recorded for one evaluation pair (`Manifest.tags['pair']`), newest first, with
        a dead writer's "running" shown as "incomplete"."""
        if not (self.root / "index.sqlite").exists():
            return []
        with self._lock, self._index() as con:
            rows = con.execute(f"SELECT {_COLUMNS} FROM runs WHERE pair = ? ORDER BY started DESC", (pair,)).fetchall()
        return _with_liveness([RunInfo(*row) for row in rows])

    def resolve(self, ref: str) -> Path:
        """A run directory from an id, a unique id prefix, 'last', or a path."""
        p = Path(ref)
        if (p / "events.jsonl").exists():
            return p
        if ref in ("last", "latest"):
            runs = self.list(limit=1)
            if not runs:
                raise UserError(f"no runs recorded in {self.root}")
            return self.root / runs[0].run_id
        if (self.root / ref / "events.jsonl").exists():
            return self.root / ref
        matches = sorted(d for d in self.root.glob(f"{ref}*") if (d / "events.jsonl").exists()) if self.root.exists() else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise UserError(f"'{ref}' matches {len(matches)} runs; give more of the id")
        raise UserError(f"no run '{ref}' in {self.root} (see `rolegraph trace list`)")

    def load(self, ref: str) -> Trace:
        return Trace.load(self.resolve(ref))


_COLUMNS = "run_id, graph, started, finished, status, parent, pid, model_calls, tokens, summary"
SORT_COLUMNS = {"started": "started", "graph": "graph", "status": "status", "calls": "model_calls",
                "tokens": "tokens", "duration": "(finished - started)", "run": "run_id"}
"""What `TraceStore.page` sorts by (name -> index column)."""


@dataclass
class RunInfo:
    run_id: str
    graph: str
    started: float
    finished: float | None
    status: str
    parent: str | None
    pid: int
    model_calls: int
    tokens: int
    summary: str

    @property
    def duration_s(self) -> float | None:
        return None if self.finished is None else self.finished - self.started


@dataclass
class RunPage:
    runs: list[RunInfo]
    total: int
    """How many runs match the filters (all pages)."""


def _with_liveness(infos: list[RunInfo]) -> list[RunInfo]:
    """A "running" row whose writer is dead shows as "incomplete"."""
    for info in infos:
        if info.status == "running" and not _pid_alive(info.pid):
            info.status = "incomplete"
    return infos


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


class RunWriter:
    """Appends events to one run's log, line by line, flushed at once."""

    def __init__(self, store: TraceStore, run_id: str, run_dir: Path) -> None:
        self.store, self.run_id, self.dir = store, run_id, run_dir
        # unbuffered: each event is one write(2) to the OS, so a killed process has lost none of it
        self._fh = open(run_dir / "events.jsonl", "ab", buffering=0)  # noqa: SIM115 - closed in close()
        self._lock = threading.Lock()
        self._seq = 0

    def write(self, event: Event, raw: tuple[str, Any] | None = None) -> Event:
        """Append `event`. `raw` = (field, value): a value (a graph's state, a node's update) to
        serialize straight to JSON in that field, rather than convert to JSON-ready Python first."""
        with self._lock:
            event.seq = self._seq
            self._seq += 1
            line = self.store.redactor(_event_json(event) if raw is None else _event_json_raw(event, *raw))
            if len(line) > FIELD_LIMIT:
                line = self._long_strings_to_blobs(line)
            data = (line + "\n").encode()
            while data:  # a regular file takes it all at once; a short write is finished, not dropped
                n = self._fh.write(data)
                if not n:
                    raise OSError(f"could not append to {self.dir / 'events.jsonl'}")
                data = data[n:]
        if isinstance(event, RunStarted):
            self.store._index_start(event)
        elif isinstance(event, RunFinished):
            self.store._index_finish(self.run_id, event)
        return event

    def _long_strings_to_blobs(self, line: str) -> str:
        def walk(value: Any) -> Any:
            if isinstance(value, str) and len(value) > FIELD_LIMIT:
                return {BLOB_KEY: self._blob(value), "size": len(value)}
            if isinstance(value, dict):
                return {k: walk(v) for k, v in value.items()}
            if isinstance(value, list):
                return [walk(v) for v in value]
            return value

        return json.dumps(walk(json.loads(line)), ensure_ascii=False, separators=(",", ":"))

    def _blob(self, text: str) -> str:
        sha = hashlib.sha256(text.encode()).hexdigest()
        blobs = self.dir / "blobs"
        blobs.mkdir(exist_ok=True)
        path = blobs / sha
        if not path.exists():
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        return sha

    def payload(self, value: Any) -> Any:
        """Inline JSON, or a BlobRef to a content-addressed file when large."""
        data = to_jsonable_python(value, fallback=str)
        # keys keep their order: a replayed tool answer must come back as the tool gave it
        text = self.store.redactor(json.dumps(data, separators=(",", ":")))
        if len(text) <= INLINE_LIMIT:
            return json.loads(text)
        return BlobRef(blob=self._blob(text), size=len(text)).model_dump()

    def close(self) -> None:
        with self._lock:
            self._fh.close()


def _event_json(event: Event) -> str:
    """One log line. A string no UTF-8 file can hold (a lone surrogate, from a tool's output or a
    JSON input file's escapes) is written with U+FFFD in its place rather than failing the run."""
    try:
        return event.model_dump_json(exclude_none=True)
    except PydanticSerializationError:
        data = clean_value(event.model_dump(mode="json", exclude_none=True))
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


_RAW = "\x00rolegraph:raw\x00"
_RAW_JSON = '"\\u0000rolegraph:raw\\u0000"'  # how both JSON writers above spell _RAW


def _event_json_raw(event: Event, name: str, value: Any) -> str:
    """`_event_json` with field `name` set to `value`, which is serialized once, in Rust: the same
    JSON as `to_jsonable_python(value, fallback=str)` in that field, for a third of the work (a
    step's whole state is written with every node start)."""
    if value is None:  # left out, as exclude_none leaves it out
        return _event_json(event)
    setattr(event, name, _RAW)
    try:
        line = _event_json(event)
    finally:
        setattr(event, name, value)
    try:
        text = to_json(value, fallback=str, inf_nan_mode="null").decode()
    except PydanticSerializationError:  # a lone surrogate: the same U+FFFD path as _event_json
        text = json.dumps(clean_value(to_jsonable_python(value, fallback=str)), ensure_ascii=False,
                          separators=(",", ":"))
    return line.replace(_RAW_JSON, text, 1)


def _recorded_counts(run_dir: Path) -> tuple[int, int]:
    """Model calls and tokens an unfinished run's log holds so far."""
    calls = tokens = 0
    try:
        with open(run_dir / "events.jsonl", "rb") as fh:
            for raw in fh:
                if b'"kind":"model_call"' not in raw or not raw.endswith(b"\n"):
                    continue
                try:
                    e = parse_event(raw)
                except ValueError:
                    continue
                if isinstance(e, ModelCall) and e.response is not None:
                    calls += 1
                    tokens += e.usage.prompt_tokens + e.usage.completion_tokens
    except OSError:
        pass
    return calls, tokens


def new_run_id(graph: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return f"{stamp}-{graph}-{os.urandom(3).hex()}"
