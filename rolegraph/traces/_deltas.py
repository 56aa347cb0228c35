"""A step's input state written as what changed since an earlier step's (items appended to a list, keys
set or removed), with a digest of the whole state that a loaded trace checks its rebuilt state against.

The changes are a list of operations on the state's JSON, applied in order:
`["add", PATH, ITEMS]` appends ITEMS to the list at PATH; `["add_update", [KEY], SEQ]` appends the
items that node_finished event SEQ's update holds under KEY (an `operator.add` list grown by a node's
update, which the log then holds once); `["set", PATH, VALUE]` sets a dict key or a list item;
`["del", PATH]` removes a dict key. A PATH lists dict keys (strings) and list indexes (integers) from
the state's top. A state the changes cannot describe exactly is written whole.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic_core import from_json, to_json

from rolegraph.errors import UserError
from rolegraph.traces._events import FORMAT_VERSION, NodeFinished, NodeStarted, RunStarted

SNAPSHOT_EVERY = 25
"""How many steps of one namespace follow each other before its state is written whole again, by
default (`TraceStore(snapshot_every=...)`, `[traces] snapshot_every`)."""
SCATTERED = 8
"""A list changed in more places than this (not counting appended items) is written whole."""
WHOLE_SHARE = 4
"""A state is written whole again only once the changes written since its last whole copy weigh this
many times that copy: a state that keeps growing is copied at sizes that grow fivefold, and its whole
copies weigh at most 1/WHOLE_SHARE of its changes."""
RECENT_UPDATES = 16
"""The nodes' updates a writer keeps at hand, newest first, for the changes of the next states to point at."""


def canonical(state: Any) -> bytes:
    """A JSON state's compact JSON, keys in their order: what its digest is taken of."""
    return to_json(state)


def digest(canonical_json: bytes) -> str:
    return hashlib.sha256(canonical_json).hexdigest()


def changes(old: Any, new: Any) -> list[list[Any]] | None:
    """The operations that turn JSON value `old` into `new`, or None when only the whole value does."""
    ops: list[list[Any]] = []
    return ops if _diff(old, new, [], ops) else None


def _diff(old: Any, new: Any, path: list[Any], ops: list[list[Any]]) -> bool:
    """Append to `ops` what turns `old` into `new` at `path`; False (with nothing appended) when that
    takes setting the whole value."""
    if type(old) is dict and type(new) is dict:
        kept = [k for k in new if k in old]
        added = [k for k in new if k not in old]
        if [k for k in old if k in new] != kept or list(new)[len(kept):] != added:
            return False  # keys reordered, or a new one before old ones: setting the whole keeps the order
        ops.extend(["del", [*path, k]] for k in old if k not in new)
        for k in kept:
            if old[k] != new[k] and not _diff(old[k], new[k], [*path, k], ops):
                ops.append(["set", [*path, k], new[k]])
        ops.extend(["set", [*path, k], new[k]] for k in added)
        return True
    if type(old) is list and type(new) is list:
        n = len(old)
        if len(new) < n:
            return False
        if new[:n] != old:
            moved = [i for i in range(n) if old[i] != new[i]]
            if len(moved) > SCATTERED:
                return False
            for i in moved:
                if not _diff(old[i], new[i], [*path, i], ops):
                    ops.append(["set", [*path, i], new[i]])
        if len(new) > n:
            ops.append(["add", path, new[n:]])
        return True
    return False


def applied(base: Any, ops: list[list[Any]], updates: Mapping[int, Any] | None = None) -> Any:
    """`base` with `ops` applied; `base` itself is left as it was (what changes is copied, the rest shared).
    `updates`: node_finished events' updates by `seq`, which `add_update` operations take items from.
    Raises KeyError, IndexError, TypeError or ValueError on operations that do not fit `base`."""
    root = [base]
    copied: list[Any] = []  # kept alive, so their ids stay theirs
    fresh: set[int] = set()

    def own(holder: Any, at: Any) -> Any:
        child = holder[at]
        if id(child) not in fresh:
            if not isinstance(child, (dict, list)):
                raise TypeError(f"{type(child).__name__} has no parts to change")
            child = child.copy()
            holder[at] = child
            copied.append(child)
            fresh.add(id(child))
        return child

    for op in ops:
        kind, path = op[0], op[1]
        holder: Any = root
        at: Any = 0
        for step in path:
            holder, at = own(holder, at), step
        if kind == "set":
            holder[at] = op[2]
        elif kind == "del":
            del holder[at]
        elif kind in ("add", "add_update"):
            target = own(holder, at)
            items = op[2] if kind == "add" else (updates or {})[op[2]][path[-1]]
            if not isinstance(target, list) or not isinstance(items, list):
                raise TypeError(f"cannot append a {type(items).__name__} to a {type(target).__name__}")
            target.extend(items)
        else:
            raise ValueError(f"unknown operation {kind!r}")
    return root[0]


@dataclass
class _Update:
    seq: int
    """The node_finished event that recorded it."""
    text: str
    """Its JSON, as written."""
    _value: Any = field(default=None, repr=False)

    @property
    def value(self) -> Any:
        if self._value is None:
            self._value = from_json(self.text)
        return self._value


@dataclass
class _Latest:
    seq: int
    """The event that recorded it."""
    state: Any
    steps: int = 0
    """Steps written as changes since the namespace's state was last written whole."""
    changed_bytes: int = 0
    """Their changes' size (the items they take from updates included)."""
    whole_bytes: int = 0
    """The size of the state last written whole."""


class StateLog:
    """What one run's writer wrote last in each namespace, and whether the next state goes as changes.

    A namespace's first state is written whole; after it, each as its changes to the namespace's
    previous one, unless they are no smaller than half the state, or do not rebuild it exactly. Every
    `snapshot_every` steps the state is written whole again, or later where it is large: not before
    the changes written since weigh WHOLE_SHARE times its last whole copy, so that a state that keeps
    growing (a message list) is copied whole ever more rarely and its copies stay a share of its changes."""

    def __init__(self, snapshot_every: int = SNAPSHOT_EVERY) -> None:
        self.snapshot_every = snapshot_every
        self._latest: dict[str, _Latest] = {}
        self._updates: deque[_Update] = deque(maxlen=RECENT_UPDATES)

    def updated(self, seq: int, text: str) -> None:
        """A node's update was written by event `seq`, as JSON `text`."""
        self._updates.append(_Update(seq, text))

    def entry(self, namespace: str, seq: int, state: Any, whole: bytes) -> tuple[bytes, int] | None:
        """How to write `state` (a JSON value, `whole` its canonical JSON), recorded by event `seq`:
        (its changes as JSON, the event they change), or None to write it whole."""
        last = self._latest.get(namespace)
        due = last is None or self.snapshot_every <= 1 or (
            last.steps >= self.snapshot_every - 1 and last.changed_bytes >= WHOLE_SHARE * last.whole_bytes)
        if last is not None and not due:
            ops = changes(last.state, state)
            if ops is not None:
                updates, taken = self._pointed_at(ops, last.seq)
                text = to_json(ops)
                if len(text) * 2 < len(whole) and canonical(applied(last.state, ops, updates)) == whole:
                    changed = last.changed_bytes + len(text) + taken
                    self._latest[namespace] = _Latest(seq, state, last.steps + 1, changed, last.whole_bytes)
                    return text, last.seq
        self._latest[namespace] = _Latest(seq, state, whole_bytes=len(whole))
        return None

    def _pointed_at(self, ops: list[list[Any]], since: int) -> tuple[dict[int, Any], int]:
        """Turn each `add` of a top-level list whose items are exactly what an update written after
        event `since` put under that key into an `add_update` pointing at it. Returns the updates pointed
        at, and the size of the items taken from them (changes all the same, though written once)."""
        used: dict[int, Any] = {}
        taken = 0
        for i, op in enumerate(ops):
            if op[0] != "add" or len(op[1]) != 1:
                continue
            items: bytes | None = None
            for update in reversed(self._updates):
                if update.seq < since:
                    break
                value = update.value.get(op[1][0]) if isinstance(update.value, dict) else None
                if isinstance(value, list) and len(value) == len(op[2]):
                    items = items or canonical(op[2])
                    if canonical(value) == items:
                        ops[i] = ["add_update", op[1], update.seq]
                        used[update.seq] = update.value
                        taken += len(items)
                        break
        return used, taken


def namespace(event: NodeStarted) -> str:
    """The states a step's is written against: its graph's (the enclosing subgraph nodes); a `Send`
    target's payload and a task call's arguments against the same node's previous ones."""
    last = event.key.rsplit(">", 1)[-1]
    own = "[" in last.rsplit("@", 1)[-1] or "@call" in last
    return "/".join(event.path[:-1]) + (f"|{event.node}" if own else "")


def rebuild_states(events: list[Any], log: Path) -> list[str]:
    """Put back, in place, the whole input state of each node_started event written as changes, and
    check every state that carries a digest against it. Returns the steps whose state could not be
    rebuilt (the event it changes is on a damaged line), each as `log: why`; raises UserError when a
    state does not match its digest."""
    run = events[0].run_id if events and isinstance(events[0], RunStarted) else log.parent.name
    states: dict[int, Any] = {}
    updates = {e.seq: e.delta for e in events if isinstance(e, NodeFinished)}
    lost: list[str] = []
    for e in events:
        if not isinstance(e, NodeStarted):
            continue
        if e.state_digest is None and e.state_delta is None:  # nothing to check (a log from before digests, or
            if e.state is not None:                               # one whose digests were taken out): a base as it is
                states[e.seq] = e.state
            continue
        delta = e.state is None and e.state_delta is not None
        state = e.state
        if delta:
            base = states.get(e.state_base) if e.state_base is not None else None
            gone = [seq for seq in _pointed(e.state_delta) if seq not in updates]
            if base is None or gone:
                lost.append(f"{log}: step {e.step} ({e.node}): its state is written as changes to event "
                            f"{gone[0] if gone else e.state_base}, which is damaged or missing; the state is left out")
                e.state_delta = e.state_base = None
                continue
            try:
                state = applied(base, e.state_delta, updates)
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise _mismatch(run, e, log, f"its recorded changes do not apply ({type(exc).__name__}: {exc})") from None
        whole = canonical(state)
        if e.state_digest is not None and digest(whole) != e.state_digest:
            raise _mismatch(run, e, log, "its state does not match the digest recorded with it")
        states[e.seq] = state
        if delta:  # a state of its own, as a step written whole has: nothing shared with another step's
            e.state = from_json(whole)
            e.state_delta = e.state_base = None
            e.format_version = FORMAT_VERSION
    return lost


def _pointed(ops: Any) -> list[Any]:
    """The events whose updates `add_update` operations take items from."""
    if not isinstance(ops, list):
        return []
    return [op[2] for op in ops if isinstance(op, list) and len(op) == 3 and op[0] == "add_update"]


def _mismatch(run: str, event: NodeStarted, log: Path, why: str) -> UserError:
    return UserError(f"run {run}: step {event.step} ({event.node}): {why}; the log {log} was changed after it was "
                     f"written (event seq {event.seq}). Restore the run folder from a copy, or record the run again")
