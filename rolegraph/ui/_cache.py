"""Rendered pages kept while the files they were made from are unchanged, so a report over
thousands of results is rendered once, not once per visitor (`benchmarks/ui.py` measures it)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

Stamp = tuple[tuple[int, int, int] | None, ...]


def stamp(paths: Sequence[Path]) -> Stamp:
    """(inode, size, mtime) of each file, None where it is missing: any write changes it."""
    out: list[tuple[int, int, int] | None] = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            out.append(None)
        else:
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


class PageCache:
    """Pages by name. A page is served from memory while its source files keep the stamp they had
    just after it was rendered and `extra` is equal; else it is rendered again, by one request
    while the others that need it wait. The stamp is taken after rendering because reading a
    SQLite store can rewrite its files (a checkpoint folds the log in) without changing what it
    holds. A write that lands during a render, and what the files do not show (a trace folder
    added), show within `max_age` seconds: an older page is rendered again by one request while
    the others keep getting the copy."""

    def __init__(self, *, size: int = 8, max_age: float = 10.0) -> None:
        self.size, self.max_age = size, max_age
        self._pages: OrderedDict[str, tuple[tuple[Stamp, Hashable], float, str]] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, name: str, sources: Sequence[Path], render: Callable[[], str], *, extra: Hashable = None) -> str:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
            hit = self._pages.get(name)
        if hit is not None and hit[0] == (stamp(sources), extra):
            if time.monotonic() - hit[1] < self.max_age or not lock.acquire(blocking=False):
                return hit[2]  # fresh, or old and being rendered again already: this copy meanwhile
        else:
            lock.acquire()  # changed or never rendered: one request renders it, the others wait for it
        try:
            with self._guard:
                hit = self._pages.get(name)
            if hit is not None and hit[0] == (stamp(sources), extra) and time.monotonic() - hit[1] < self.max_age:
                return hit[2]  # rendered by the request this one waited for
            page = render()
            key = (stamp(sources), extra)
            with self._guard:
                self._pages[name] = (key, time.monotonic(), page)
                self._pages.move_to_end(name)
                while len(self._pages) > self.size:
                    self._locks.pop(self._pages.popitem(last=False)[0], None)
            return page
        finally:
            lock.release()
