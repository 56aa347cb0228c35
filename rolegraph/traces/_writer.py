"""A run's log as it is written: one event a line, appended unbuffered (a killed process has lost
none it wrote), secrets redacted, long strings and large tool payloads stored once as
content-addressed blobs beside it."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic_core import PydanticSerializationError, from_json, to_json, to_jsonable_python

from rolegraph.models import clean_value
from rolegraph.traces._deltas import StateLog, canonical, digest, namespace
from rolegraph.traces._events import DELTA_VERSION, Event, NodeFinished, NodeStarted, RunFinished, RunStarted
from rolegraph.traces._trace import BLOB_KEY

if TYPE_CHECKING:
    from rolegraph.traces._store import TraceStore

FIELD_LIMIT = 64 * 1024
"""The one blob threshold: a string in an event longer than this (a huge input, a long prompt built
from it), and a tool's input or output whose JSON is longer, is stored once per run as a
content-addressed blob, referenced by `{BLOB_KEY: sha256, "size": n}` (plus `"json": true` for a
tool's value), and put back when the trace is loaded: a value repeated in every step's state and
request takes its size on disk once, not once per event."""


class RunWriter:
    """Appends events to one run's log, line by line, flushed at once."""

    def __init__(self, store: TraceStore, run_id: str, run_dir: Path) -> None:
        self.store, self.run_id, self.dir = store, run_id, run_dir
        # unbuffered: each event is one write(2) to the OS, so a killed process has lost none of it
        self._fh = open(run_dir / "events.jsonl", "ab", buffering=0)  # noqa: SIM115 - closed in close()
        self._lock = threading.Lock()
        self._seq = 0
        self._states = StateLog(store.snapshot_every)

    def write(self, event: Event, raw: tuple[str, Any] | None = None) -> Event:
        """Append `event`. `raw` = (field, value): a value (a graph's state, a node's update) to
        serialize straight to JSON in that field, rather than convert to JSON-ready Python first."""
        with self._lock:
            event.seq = self._seq
            self._seq += 1
            if raw is not None and raw[0] == "state" and raw[1] is not None and isinstance(event, NodeStarted):
                line = self._started_json(event, raw[1])
                event.state = raw[1]
            elif raw is not None and raw[0] == "delta" and raw[1] is not None and isinstance(event, NodeFinished):
                text = self.store.redactor(_value_json(raw[1]))
                self._states.updated(event.seq, text)  # the next state's changes may point at it
                line = self._line(event, "delta", text)
                event.delta = raw[1]
            else:
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

    def _started_json(self, event: NodeStarted, state: Any) -> str:
        """A node start's line: its input state whole, or as its changes to the previous state of its
        namespace (see `StateLog`), with the whole state's digest either way. The state is read back
        from its redacted JSON first, so that the digest is of what a loaded trace holds."""
        text = self.store.redactor(_value_json(state))
        try:
            recorded = from_json(text)
        except ValueError:  # JSON no reader can take back: written as it is, with nothing to check it against
            return self._line(event, "state", text)
        whole = canonical(recorded)
        event.state_digest = digest(whole)
        change = self._states.entry(namespace(event), event.seq, recorded, whole)
        if change is None:
            return self._line(event, "state", whole.decode())
        ops, event.state_base = change
        event.format_version = DELTA_VERSION
        return self._line(event, "state_delta", ops.decode())

    def _line(self, event: Event, name: str, text: str) -> str:
        """The event's line with field `name` holding `text`, JSON made from an already redacted value:
        only the rest of the line is redacted here (a state is not scanned twice)."""
        return _event_json_with(event, name, text, redact=self.store.redactor)

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
        write_once(blobs / sha, text)
        return sha

    def payload(self, value: Any) -> Any:
        """A tool's input or output: inline JSON, or (over FIELD_LIMIT) a blob reference that the
        loaded trace resolves back to the value."""
        data = to_jsonable_python(value, fallback=str)
        # keys keep their order: a replayed tool answer must come back as the tool gave it
        text = self.store.redactor(json.dumps(data, separators=(",", ":")))
        if len(text) <= FIELD_LIMIT:
            return json.loads(text)
        return {BLOB_KEY: self._blob(text), "size": len(text), "json": True}

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
    step's state and a node's update are serialized this way)."""
    if value is None:  # left out, as exclude_none leaves it out
        return _event_json(event)
    line = _event_json_with(event, name, _value_json(value))
    setattr(event, name, value)
    return line


def _value_json(value: Any) -> str:
    """`value` as the JSON `to_jsonable_python(value, fallback=str)` gives, serialized in one go."""
    try:
        return to_json(value, fallback=str, inf_nan_mode="null").decode()
    except PydanticSerializationError:  # a lone surrogate: the same U+FFFD path as _event_json
        return json.dumps(clean_value(to_jsonable_python(value, fallback=str)), ensure_ascii=False,
                          separators=(",", ":"))


def _event_json_with(event: Event, name: str, text: str, redact: Callable[[str], str] | None = None) -> str:
    """`_event_json` with field `name` holding `text`, JSON already serialized; `redact`, if given,
    applies to the rest of the line."""
    kept = getattr(event, name)
    setattr(event, name, _RAW)
    try:
        line = _event_json(event)
    finally:
        setattr(event, name, kept)
    if redact is not None:
        line = redact(line)
    return line.replace(_RAW_JSON, text, 1)


def write_once(path: Path, text: str) -> None:
    """A content-addressed file: written (atomically, through a temporary file) unless it exists,
    since the same name always holds the same text."""
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
