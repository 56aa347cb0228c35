"""Trace storage: one directory per run (an append-only events.jsonl plus content-addressed
blobs) and a SQLite index for listing. A killed writer leaves a log that loads up to its last
complete line.

The index is a cache of the run folders: a damaged one is rebuilt from them (a new file beside it,
then renamed over it), a run whose row could not be written is added when the runs are next listed,
and `rolegraph trace reindex` rebuilds it on request. A run never fails because of its index."""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from rolegraph.errors import UserError, one_line
from rolegraph.traces._deltas import SNAPSHOT_EVERY
from rolegraph.traces._events import (
    ModelCall,
    RunFinished,
    RunStarted,
    parse_event,
)
from rolegraph.traces._redact import Redactor
from rolegraph.traces._trace import _BLOB_MARK, Trace, _blobs_restored
from rolegraph.traces._writer import RunWriter

INDEX = "index.sqlite"
logger = logging.getLogger("rolegraph.traces")
T = TypeVar("T")


class IndexUnavailable(UserError):
    """The run index can neither be read nor rebuilt (a folder that cannot be written, say)."""


class TraceStore:
    """Runs under `root/<run_id>/`, indexed in `root/index.sqlite`."""

    def __init__(self, root: str | Path, *, redactor: Redactor | None = None,
                 snapshot_every: int = SNAPSHOT_EVERY) -> None:
        self.root = Path(root)
        self.redactor = redactor or Redactor()
        self.snapshot_every = snapshot_every
        """A node step's input state is written whole every this many steps of its graph or subgraph (later
        for a state that keeps growing: see `_deltas.StateLog`); in between, as what changed since the
        step before (1: always whole)."""
        self._lock = threading.RLock()
        self._con: sqlite3.Connection | None = None
        self._file: tuple[int, int] | None = None
        """(device, inode) of the index file `_con` has open: another one there means it was rebuilt."""
        self._checked: tuple[int, int] | None = None
        """The index file last checked for run folders it lacks (None: check at the next read)."""
        self.notice: str | None = None
        """What the last rebuild of the index found and did, in one line, until someone shows it
        (`take_notice`)."""

    @classmethod
    def configured(cls, root: str | Path | None = None, *, config: str | Path | None = None) -> TraceStore:
        """The store a configuration names (`[traces] dir`, `snapshot_every`; `config` as `load_config`
        finds it), or `root` recorded with that configuration's settings."""
        from rolegraph.config import load_config

        traces = load_config(config).traces
        return cls(root if root is not None else traces.dir, snapshot_every=traces.snapshot_every)

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
        # numbered on from the highest number read (a damaged line skipped takes its number with it)
        writer._seq = max(len(trace.events), max((e.seq for e in trace.events), default=-1) + 1)

        def running(con: sqlite3.Connection) -> None:
            if not con.execute("UPDATE runs SET status='running', pid=?, finished=NULL WHERE run_id=?",
                               (os.getpid(), trace.run_id)).rowcount:
                self._insert_from_folder(con, trace.dir, pid=os.getpid())

        self._write(f"resumed run {trace.run_id}", running)
        return writer

    def run_files(self, run_id: str) -> dict[str, bytes]:
        """A run folder's files (its log, blobs and anything else in it) by path relative to the
        folder: what `add_run` takes, to carry a run to another store on another machine."""
        run_dir = self.root / run_id
        if not (run_dir / "events.jsonl").is_file():
            raise UserError(f"no run '{run_id}' in {self.root}")
        return {f.relative_to(run_dir).as_posix(): f.read_bytes() for f in sorted(run_dir.rglob("*")) if f.is_file()}

    def add_run(self, run_id: str, files: Mapping[str, bytes]) -> Path:
        """Add a run recorded elsewhere (`run_files` of another store) to this store and its index,
        and return its folder. The same run with the same content is already here: nothing to do; the
        same run continued elsewhere (its log here a prefix of the one given, a resumed run) replaces
        it; other content under the same id is refused (UserError). Written beside the store and
        renamed into place, so a reader sees the whole run or none of it."""
        if not run_id or run_id != Path(run_id).name or run_id.startswith("."):
            raise UserError(f"cannot add a run named {run_id!r}: a run id is one folder name")
        bad = [name for name in files if Path(name).is_absolute() or ".." in Path(name).parts or not name]
        if bad or "events.jsonl" not in files:
            raise UserError(f"run {run_id}: the files given are no run folder "
                            f"({'unsafe paths: ' + ', '.join(bad) if bad else 'no events.jsonl'})")
        if self.redactor.values:  # a key of this machine's that reached another machine's log
            text = files["events.jsonl"].decode()
            redacted = self.redactor(text)
            if redacted != text:  # the states' digests were of what held the key: they can no longer check them
                redacted = _without_state_digests(redacted)
            files = {**files, "events.jsonl": redacted.encode()}
        target = self.root / run_id
        with self._lock:
            if (target / "events.jsonl").is_file():
                have = self.run_files(run_id)
                if have == dict(files):
                    self._write(f"run {run_id}", lambda con: self._insert_from_folder(con, target))
                    return target
                log = have.pop("events.jsonl")
                if not (files["events.jsonl"].startswith(log) and all(files.get(k) == v for k, v in have.items())):
                    raise UserError(f"run {run_id} is already in {self.root} with other content: a run id names "
                                    "one run; give the other one a new id (or remove the folder, if it is stale)")
            tmp = self.root / f".incoming-{run_id}-{os.getpid()}-{os.urandom(3).hex()}"
            try:
                for name, data in files.items():
                    path = tmp / name
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
                if target.exists():  # a continued run: the old folder out of the way first, then dropped
                    old = tmp.with_name(tmp.name.replace(".incoming-", ".replaced-"))
                    os.replace(target, old)
                    os.replace(tmp, target)
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    os.replace(tmp, target)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
            self._write(f"run {run_id}", lambda con: self._insert_from_folder(con, target))
        return target

    @property
    def index_path(self) -> Path:
        return self.root / INDEX

    def _index(self) -> sqlite3.Connection:
        """One connection per store, opened on first use (opening one per run cost milliseconds),
        and again when the file it has open is no longer the index (another process rebuilt it)."""
        path = self.index_path
        if self._con is not None and _identity(path) != self._file:
            self._close()
        if self._con is None:
            self.root.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(path, timeout=30, check_same_thread=False)
            try:
                _create_schema(con)
                # no fsync per commit (two commits a run): a killed process loses no committed row in
                # WAL mode; only a power cut could lose the last rows, which list() would then miss
                con.execute("PRAGMA synchronous=NORMAL")
            except BaseException:
                con.close()
                raise
            self._con, self._file = con, _identity(path)
        return self._con

    def _close(self) -> None:
        if self._con is not None:
            con, self._con, self._file = self._con, None, None
            with contextlib.suppress(sqlite3.Error):
                con.close()

    def _use(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work` in one transaction on the index. A damaged index (not a database, malformed,
        its table gone) is rebuilt from the run folders, with a warning, and `work` done again."""
        with self._lock:
            try:
                with self._index() as con:
                    return work(con)
            except sqlite3.Error as exc:
                if not _damaged(exc):
                    raise
                self._close()
                self._rebuild(one_line(exc))
            with self._index() as con:
                return work(con)

    def _read(self, work: Callable[[sqlite3.Connection], T], empty: T) -> T:
        """`work` over the index, once it holds every run folder: checked once per index file (and
        again after a row could not be written). `empty` when there are no runs (and no index) at all."""
        if not self.index_path.exists() and not any(True for _ in self._run_dirs()):
            return empty

        def checked(con: sqlite3.Connection) -> T:
            if self._checked is None or self._checked != self._file:
                self._add_missing(con)
                self._checked = self._file
            return work(con)

        try:
            return self._use(checked)
        except sqlite3.Error as exc:
            raise IndexUnavailable(f"cannot read the run index {self.index_path}: {one_line(exc)}") from None

    def _write(self, what: str, work: Callable[[sqlite3.Connection], None]) -> None:
        """A change to the index that never fails the run it is for: when it cannot be made (a
        locked, read-only or full disk, an index that cannot be rebuilt) the run is indexed later,
        when a store next lists the runs (it adds run folders the index lacks) or on `trace reindex`."""
        try:
            self._use(work)
        except (sqlite3.Error, OSError, IndexUnavailable) as exc:
            self._checked = None
            logger.warning("%s: could not index %s (%s); it is added when the runs are next listed "
                        "(or run `rolegraph trace reindex --runs %s`)", self.index_path, what, one_line(exc), self.root)

    def _index_start(self, started: RunStarted) -> None:
        row = _row(started.run_id, started, None, os.getpid(), self.redactor)

        def start(con: sqlite3.Connection) -> None:
            con.execute(f"INSERT OR REPLACE INTO runs ({_ROW}) VALUES ({_MARKS})", row)

        self._write(f"run {started.run_id}", start)

    def _index_finish(self, run_id: str, finished: RunFinished) -> None:
        t = finished.totals

        def finish(con: sqlite3.Connection) -> None:
            if not con.execute("UPDATE runs SET finished=?, status=?, model_calls=?, tokens=? WHERE run_id=?",
                               (finished.ts, finished.status, t.model_calls + t.replayed_calls,
                                t.prompt_tokens + t.completion_tokens, run_id)).rowcount:
                self._insert_from_folder(con, self.root / run_id)  # its start went unindexed (or a rebuild missed it)

        self._write(f"the end of run {run_id}", finish)

    # -- the index as a cache of the run folders ----------------------------------------

    def reindex(self) -> int:
        """Rebuild the index from the run folders (atomically: a new file, renamed over the old
        one) and return how many runs it holds. `rolegraph trace reindex`."""
        if not self.root.is_dir():
            raise UserError(f"no runs folder {self.root}")
        with self._lock:
            self._close()
            return self._rebuild(None)

    def take_notice(self) -> str | None:
        """The last rebuild's account, once (the UI shows it above the run list)."""
        notice, self.notice = self.notice, None
        return notice

    def _rebuild(self, damage: str | None) -> int:
        path = self.index_path
        tmp = path.with_name(f"{INDEX}.rebuild-{os.getpid()}-{threading.get_ident()}.tmp")
        started = time.perf_counter()
        skipped: list[str] = []
        rows: list[tuple[Any, ...]] = []
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp.unlink(missing_ok=True)
            con = sqlite3.connect(tmp)
            try:
                _create_schema(con, wal=False)
                for run_dir in self._run_dirs():
                    row = _row_from_folder(run_dir, self.redactor)
                    if row is None:
                        skipped.append(run_dir.name)
                    else:
                        rows.append(row)
                with con:
                    con.executemany(f"INSERT OR REPLACE INTO runs ({_ROW}) VALUES ({_MARKS})", rows)
            finally:
                con.close()
            # a log or shared-memory file of the old index would be applied to the new one: gone first
            for suffix in ("-wal", "-shm", "-journal"):
                path.with_name(INDEX + suffix).unlink(missing_ok=True)
            os.replace(tmp, path)
        except (OSError, sqlite3.Error) as exc:
            tmp.unlink(missing_ok=True)
            what = f"{path} is damaged ({damage}) and" if damage else f"{path}"
            raise IndexUnavailable(f"{what} could not be rebuilt from the run folders: {one_line(exc)}") from None
        took = time.perf_counter() - started
        self._checked = _identity(path)
        done = f"rebuilt it from {len(rows)} run folders in {took:.2f} s"
        if skipped:
            done += f" ({len(skipped)} folders hold no readable run: {', '.join(sorted(skipped)[:5])}"
            done += ", ...)" if len(skipped) > 5 else ")"
        if damage is not None:
            self.notice = f"The run index {path} was damaged ({damage}); {done}."
            logger.warning("%s was damaged (%s); %s", path, damage, done)
        else:
            self.notice = f"{path}: {done}."
            logger.info("%s: %s", path, done)
        return len(rows)

    def _run_dirs(self) -> builtins.list[Path]:
        """Every folder in the store that may hold a run (each is checked for its log when read)."""
        try:
            with os.scandir(self.root) as entries:
                return [Path(e.path) for e in entries if not e.name.startswith(".") and e.is_dir()]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def _add_missing(self, con: sqlite3.Connection) -> None:
        """Index the run folders the index lacks (a run whose row could not be written when it ran)."""
        known = {run_id for (run_id,) in con.execute("SELECT run_id FROM runs")}
        rows = [row for d in self._run_dirs() if d.name not in known
                and (row := _row_from_folder(d, self.redactor)) is not None]
        if not rows:
            return
        try:
            con.executemany(f"INSERT OR IGNORE INTO runs ({_ROW}) VALUES ({_MARKS})", rows)
        except sqlite3.OperationalError as exc:  # a read-only index: listed as it is
            if _damaged(exc):
                raise
            return
        logger.warning("%s lacked %d run folders; indexed them from their logs", self.index_path, len(rows))

    def _insert_from_folder(self, con: sqlite3.Connection, run_dir: Path, pid: int = 0) -> None:
        row = _row_from_folder(run_dir, self.redactor, pid=pid)
        if row is not None:
            con.execute(f"INSERT OR REPLACE INTO runs ({_ROW}) VALUES ({_MARKS})", row)

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

        def query(con: sqlite3.Connection) -> RunPage:
            where: list[str] = []
            args: list[Any] = []
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
            return RunPage([RunInfo(*row) for row in rows], total)

        found = self._read(query, RunPage([], 0))
        infos = _with_liveness(found.runs)
        for info in infos:
            if info.status in ("running", "incomplete"):
                info.model_calls, info.tokens = _recorded_counts(self.root / info.run_id)
        return RunPage(infos, found.total)

    def graphs(self) -> builtins.list[str]:
        """The graph names the index holds, sorted."""
        return self._read(lambda con: [g for (g,) in con.execute("SELECT DISTINCT graph FROM runs ORDER BY graph")], [])

    def runs_for_pair(self, pair: str) -> builtins.list[RunInfo]:
        """The runs recorded for one evaluation pair (`Manifest.tags['pair']`), newest first, with
        a dead writer's "running" shown as "incomplete"."""
        def query(con: sqlite3.Connection) -> builtins.list[RunInfo]:
            return [RunInfo(*row) for row in con.execute(
                f"SELECT {_COLUMNS} FROM runs WHERE pair = ? ORDER BY started DESC", (pair,))]

        return _with_liveness(self._read(query, []))

    def info(self, run_id: str) -> RunInfo | None:
        """One run's row of the index, with the status the run list shows for it ("running" while its
        writer lives, "incomplete" once it is dead); None when the index does not hold the run."""
        def query(con: sqlite3.Connection) -> builtins.list[RunInfo]:
            return [RunInfo(*row) for row in con.execute(f"SELECT {_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))]

        found = _with_liveness(self._read(query, []))
        return found[0] if found else None

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
_ROW = _COLUMNS + ", pair"
_MARKS = ",".join("?" * len(_ROW.split(",")))
_DAMAGE = ("malformed", "not a database", "no such table", "no such column", "corrupt")
"""How SQLite says a file is no intact index (as opposed to locked, read-only or full)."""


def _without_state_digests(log: str) -> str:
    """An events log with its node starts' `state_digest` taken out (a state rebuilt from a log changed
    after it was written cannot match the digest of what it was)."""
    out = []
    for line in log.splitlines(keepends=True):
        if '"state_digest"' in line:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                out.append(line)
                continue
            event.pop("state_digest", None)
            out.append(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")
            continue
        out.append(line)
    return "".join(out)


def _damaged(exc: sqlite3.Error) -> bool:
    """Whether `exc` means the index file is damaged (and is rebuilt), not merely unusable now."""
    name = getattr(exc, "sqlite_errorname", "")
    return name in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or any(m in str(exc).lower() for m in _DAMAGE)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _create_schema(con: sqlite3.Connection, *, wal: bool = True) -> None:
    if wal:
        con.execute("PRAGMA journal_mode=WAL")
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


def _row(run_id: str, started: RunStarted, finished: RunFinished | None, pid: int,
         redactor: Redactor) -> tuple[Any, ...]:
    """A run's index row (`_ROW`), from its first and (if it finished) last events."""
    summary = redactor(json.dumps(started.manifest.input, default=str)[:2000])
    calls = tokens = 0
    if finished is not None:
        t = finished.totals
        calls, tokens = t.model_calls + t.replayed_calls, t.prompt_tokens + t.completion_tokens
    return (run_id, started.manifest.graph, started.ts, finished.ts if finished else None,
            finished.status if finished else "running", started.parent.run_id if started.parent else None, pid,
            calls, tokens, summary, started.manifest.tags.get("pair"))


TAIL_CHUNK = 64 * 1024
TAIL_LINES = 16
"""Damaged lines at a log's end passed over when looking for its RunFinished."""


def _row_from_folder(run_dir: Path, redactor: Redactor, *, pid: int = 0) -> tuple[Any, ...] | None:
    """A run's index row read from its folder: its log's first line and last complete line (a
    finished run's last event is RunFinished), never the whole log. None when the folder holds no
    readable run. An unfinished run is "running" by `pid` (0: no live writer, so it lists as incomplete)."""
    try:
        with open(run_dir / "events.jsonl", "rb") as fh:
            first = fh.readline()
            if not first.endswith(b"\n"):
                return None
            started = parse_event(_blobs_restored(first, run_dir / "blobs") if _BLOB_MARK in first else first)
            if not isinstance(started, RunStarted):
                return None
            finished = _last_finished(fh)
    except (OSError, ValueError):
        return None
    return _row(run_dir.name, started, finished, pid if finished is None else 0, redactor)


def _last_finished(fh: Any) -> RunFinished | None:
    """The RunFinished that ends a log, read from its end: its last event that parses (a damaged
    line after it is skipped, as `Trace.load` skips it). None when that is another event, or the
    last line was cut off (the writer died mid-line)."""
    pos = fh.seek(0, os.SEEK_END)
    tail = b""
    skipped = 0
    while pos > 0 and skipped <= TAIL_LINES:
        step = min(TAIL_CHUNK, pos)
        pos -= step
        fh.seek(pos)
        tail = fh.read(step) + tail
        if not tail.endswith(b"\n"):
            return None  # cut off mid-line: the run did not finish
        # the whole lines in `tail`, last first (the first piece may be part of a longer line)
        lines = tail.split(b"\n")[:-1]
        for line in reversed(lines[1:] if pos > 0 else lines):
            try:
                event = parse_event(line)
            except ValueError:
                skipped += 1
                continue
            return event if isinstance(event, RunFinished) else None
        tail = lines[0] + b"\n" if pos > 0 else b""
    return None


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


def _pid_alive(pid: int | None) -> bool:
    if not pid or pid < 0:  # a row rebuilt from a folder has no writer (0)
        return False
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
