"""Confinement of the file names a tool-server request carries: every name resolves (symlinks
followed) inside a configured folder, outputs never replace a file unless asked, URLs only when allowed."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from rolegraph.errors import UserError

URL_SCHEMES = ("http", "https")


def looks_like_url(name: str) -> bool:
    """`scheme:...` with a scheme of two or more letters (so `C:\\x` is not one); ffmpeg would
    treat any of these as a protocol, not a file."""
    head, sep, _ = name.partition(":")
    return bool(sep) and len(head) > 1 and head.replace("+", "").replace("-", "").replace(".", "").isalnum()


def check_url(name: str, field: str, *, allow_urls: bool) -> str:
    """`name` itself when URLs are allowed and it is an http(s) URL; else a refusal naming `field`."""
    if not allow_urls:
        raise UserError(f"{field}: URLs are not accepted ({name[:80]!r}); name a file inside the work "
                        "directory, upload the bytes, or start the server with --allow-urls")
    parts = urlsplit(name)
    if parts.scheme.lower() not in URL_SCHEMES or not parts.netloc:
        raise UserError(f"{field}: only http(s) URLs are accepted, not {name[:80]!r}")
    return name


def resolve_inside(name: str, field: str, roots: Sequence[Path]) -> Path:
    """`name` (relative to the first root, or absolute) resolved with its symlinks; refused
    unless it lies inside one of `roots`."""
    if not name or "\x00" in name:
        raise UserError(f"{field}: an empty name or one with a NUL byte is not a file name")
    path = Path(name)
    real = (path if path.is_absolute() else roots[0] / path).resolve()
    for root in roots:
        if real.is_relative_to(root.resolve()):
            return real
    where = " or ".join(str(r) for r in roots)
    raise UserError(f"{field}: {name!r} resolves to {real}, outside {where}; name a file inside it")


def input_file(name: str, field: str, roots: Sequence[Path]) -> Path:
    """An existing regular file inside `roots`."""
    path = resolve_inside(name, field, roots)
    if not path.is_file():
        raise UserError(f"{field}: no file {name!r} in {roots[0]}")
    return path


def output_file(name: str, field: str, root: Path, *, overwrite: bool) -> Path:
    """A file name inside `root` that may be written: refused if it exists, unless `overwrite`."""
    path = resolve_inside(name, field, [root])
    if path == root.resolve() or path.is_dir():
        raise UserError(f"{field}: {name!r} is a directory; name a file")
    if path.exists() and not overwrite:
        raise UserError(f"{field}: {name!r} already exists in {root}; pass overwrite: true to replace it")
    return path


@contextmanager
def atomic_output(path: Path, *, overwrite: bool) -> Iterator[Path]:
    """A temporary file beside `path` (same suffix, for format guessing) that becomes `path` when
    the block ends without error: by a hard link when not overwriting, so a file that appeared in
    the meantime is still never replaced; the temporary file is removed either way."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".partial-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise UserError(f"{path} appeared while it was being written; pass overwrite: true "
                                "to replace it") from None
    finally:
        tmp.unlink(missing_ok=True)
