"""What a request may name: a run or an evaluation by its id, inside the configured directory and
nowhere else (no `..`, no absolute path, no symlink that leads out)."""

from __future__ import annotations

import re
from pathlib import Path

from rolegraph.errors import UserError

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


class NotFound(UserError):
    """A run, evaluation or file the request named is not in the configured directories."""


def inside(root: Path, name: str, *, must_have: str) -> Path:
    """`root/name` when `name` is a plain id and the directory, and its `must_have` file, resolve
    inside `root`; else NotFound (the same answer for a missing run and a refused path)."""
    if not _ID.fullmatch(name) or ".." in name:
        raise NotFound(f"no '{name}' here")
    base = root.resolve()
    folder = root / name
    target = folder / must_have
    try:
        real_folder, real_target = folder.resolve(strict=True), target.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        raise NotFound(f"no '{name}' here") from None
    if real_folder.parent != base or not real_target.is_relative_to(real_folder) or not real_target.is_file():
        raise NotFound(f"no '{name}' here")
    return folder
