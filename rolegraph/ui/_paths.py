"""What a request may name: a run or an evaluation by its id, inside the configured directory and
nowhere else (no `..`, no absolute path, no symlink that leads out)."""

from __future__ import annotations

import re
from pathlib import Path

from rolegraph.errors import UserError

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


class NotFound(UserError):
    """A run, evaluation or file the request named is not in the configured directories."""


def inside(root: Path, name: str, *, must_have: str, depth: int = 1) -> Path:
    """`root/name` when `name` is a plain id (or, with `depth` > 1, up to that many ids joined by
    "/"), and the directory, and its `must_have` file, resolve to exactly that place inside `root`;
    else NotFound (the same answer for a missing run and a refused path)."""
    parts = name.split("/")
    if not 1 <= len(parts) <= depth or not all(_ID.fullmatch(p) and ".." not in p for p in parts):
        raise NotFound(f"no '{name}' here")
    base = root.resolve()
    folder = root.joinpath(*parts)
    target = folder / must_have
    try:
        real_folder, real_target = folder.resolve(strict=True), target.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        raise NotFound(f"no '{name}' here") from None
    # a symlink anywhere on the way would make the real path differ from the one asked for
    if real_folder != base.joinpath(*parts) or real_target != real_folder / must_have or not real_target.is_file():
        raise NotFound(f"no '{name}' here")
    return folder
