"""A recorded run, loaded: its events in order, long strings put back from its blobs, each step's
state whole (rebuilt where it was written as changes, and checked against its digest), and a log
that a kill cut off read up to its last complete line. A damaged line elsewhere (garbage, a line
another program wrote) is reported, by file and line, and skipped: the events after it are kept."""

from __future__ import annotations

import builtins
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rolegraph.errors import UserError
from rolegraph.traces._deltas import rebuild_states
from rolegraph.traces._events import (
    BlobRef,
    Event,
    HumanInput,
    ModelCall,
    NodeFinished,
    NodeStarted,
    PendingInterrupt,
    RunFinished,
    RunStarted,
    parse_event,
)

BLOB_KEY = "$rolegraph_blob"
"""The one blob reference: an event's long string is replaced by {BLOB_KEY: sha256, "size": n}, a
large tool value by {BLOB_KEY: sha256, "size": n, "json": true} (see _writer.FIELD_LIMIT)."""
_BLOB_MARK = BLOB_KEY.encode()
logger = logging.getLogger("rolegraph.traces")
LOGGED_DAMAGE = 5
"""Damaged lines logged one by one per load; the rest are counted in one more warning (all of them
are on `Trace.damaged`)."""


@dataclass
class Trace:
    """A loaded run: its events in order, and whether the run finished."""

    dir: Path
    events: list[Event]
    complete: bool
    dropped_tail: bool = False
    """True when the last line was cut off (the writer was killed mid-line)."""
    damaged: list[str] = field(default_factory=list)
    """Complete lines that are no event, skipped, each as `path:line: why` (the events after them
    are kept). A cut-off last line is `dropped_tail`, not damage."""
    _by_key: dict[tuple[str | None, int], ModelCall] = field(default_factory=dict, repr=False)
    _answers: dict[tuple[str, int], HumanInput] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, run_dir: str | Path) -> Trace:
        run_dir = Path(run_dir)
        path = run_dir / "events.jsonl"
        events: list[Event] = []
        damaged: list[str] = []
        dropped = False
        with open(path, "rb") as fh:
            for line_no, raw in enumerate(fh, 1):
                if not raw.endswith(b"\n"):
                    dropped = True  # a partial last line: the writer died while writing it
                    break
                try:
                    line = _blobs_restored(raw, run_dir / "blobs") if _BLOB_MARK in raw else raw
                    events.append(parse_event(line))
                except ValueError as exc:  # not JSON, not UTF-8, or no event this version knows
                    damaged.append(f"{path}:{line_no}: {_why(exc)}")
        damaged += rebuild_states(events, path)  # a step's state written as changes, put back whole
        if damaged:
            for where in damaged[:LOGGED_DAMAGE]:
                logger.warning("%s; the line was skipped", where)
            if len(damaged) > LOGGED_DAMAGE:
                logger.warning("%s: %d more damaged lines skipped", path, len(damaged) - LOGGED_DAMAGE)
        complete = bool(events) and isinstance(events[-1], RunFinished)
        trace = cls(run_dir, _without_cut_nodes(events), complete, dropped, damaged)
        for e in events:
            if isinstance(e, ModelCall):
                trace._by_key[(e.node_key, e.call_index)] = e
            elif isinstance(e, HumanInput):
                trace._answers.setdefault((e.interrupt.node_key, e.interrupt.index), e)
        return trace

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    @property
    def started(self) -> RunStarted:
        first = self.events[0] if self.events else None
        if not isinstance(first, RunStarted):
            raise UserError(f"{self.dir}: the trace has no run_started event")
        return first

    @property
    def run_id(self) -> str:
        return self.started.run_id

    @property
    def finished(self) -> RunFinished | None:
        last = self.events[-1] if self.events else None
        return last if isinstance(last, RunFinished) else None

    @property
    def status(self) -> str:
        return self.finished.status if self.finished else "incomplete"

    @property
    def roles(self) -> builtins.list[str]:
        """The run's roles, sorted: those its manifest names and any that made a call."""
        return sorted(set(self.started.manifest.roles) | {e.role for e in self.events if isinstance(e, ModelCall)})

    def of_kind(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def model_call(self, node_key: str | None, call_index: int) -> ModelCall | None:
        return self._by_key.get((node_key, call_index))

    def human_answer(self, node_key: str, index: int) -> HumanInput | None:
        """The answer recorded for question `index` of node execution `node_key`, if it was answered."""
        return self._answers.get((node_key, index))

    @property
    def interrupts(self) -> builtins.list[PendingInterrupt]:
        """The questions the run waits on: an interrupted run's (its RunFinished says which); for a run
        that did not finish, those its nodes asked that no recorded answer followed (a process killed
        while the run was paused)."""
        if self.finished is not None:
            return list(self.finished.interrupts) if self.finished.status == "interrupted" else []
        answered = {e.interrupt.id for e in self.events if isinstance(e, HumanInput)}
        asked: dict[str, PendingInterrupt] = {}
        for e in self.events:
            if isinstance(e, NodeFinished):
                asked.update((q.id, q) for q in e.interrupts if q.id not in answered)
            elif isinstance(e, NodeStarted):  # a node run again after its questions were answered
                asked = {i: q for i, q in asked.items() if q.node_key != e.key}
        return list(asked.values())

    def blob(self, ref: BlobRef | dict[str, Any]) -> Any:
        sha = ref.blob if isinstance(ref, BlobRef) else ref["blob"]
        return json.loads((self.dir / "blobs" / sha).read_text())


def _blobs_restored(raw: bytes, blobs: Path) -> bytes:
    """An event line with its long strings put back from the run's blobs (see FIELD_LIMIT). Only
    an object that is exactly a reference to a blob this run holds is replaced."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            sha = value.get(BLOB_KEY)
            is_json = value.get("json") is True
            if (len(value) == 2 + is_json and "size" in value and isinstance(sha, str) and len(sha) == 64
                    and all(c in "0123456789abcdef" for c in sha) and (blobs / sha).is_file()
                    and not (blobs / sha).is_symlink() and not blobs.is_symlink()):  # never a link out of the run
                text = (blobs / sha).read_text(encoding="utf-8")
                return json.loads(text) if is_json else text
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return json.dumps(walk(json.loads(raw)), ensure_ascii=False).encode()


def _why(exc: ValueError) -> str:
    """Why a log line is no event, in one short line."""
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON ({exc.msg} at column {exc.colno})"
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic's ValidationError
        first = errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ()))
        return f"not an event ({where + ': ' if where else ''}{first.get('msg', '')})"[:300]
    return f"not an event ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"[:300]


def _without_cut_nodes(events: list[Event]) -> list[Event]:
    """Drop a node start that a kill cut off when the resumed run ran that step again."""
    starts: dict[int, int] = {}
    for e in events:
        if isinstance(e, NodeStarted):
            starts[e.step] = starts.get(e.step, 0) + 1
    if all(n == 1 for n in starts.values()):
        return events
    out: list[Event] = []
    seen = dict.fromkeys(starts, 0)
    for e in events:
        if isinstance(e, NodeStarted) and starts[e.step] > 1:
            seen[e.step] += 1
            if seen[e.step] < starts[e.step]:
                continue  # superseded by the later start of the same step
        out.append(e)
    return out
