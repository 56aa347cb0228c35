"""Reading input files line by line, bounded and strictly UTF-8: the one place every loader (MCQ
JSONL and CSV, a graph's JSONL inputs, eval cases) turns a malformed file into an InputError."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rolegraph.errors import InputError

MAX_LINE_BYTES = 1024 * 1024
"""The longest input line (a JSONL line, a CSV line or CSV field) accepted: 1 MiB. A longer one is
refused with an InputError naming the line, so one bad row cannot exhaust memory."""

_BOM = b"\xef\xbb\xbf"


def limit_text(nbytes: int = MAX_LINE_BYTES) -> str:
    return f"{nbytes // (1024 * 1024)} MiB" if nbytes % (1024 * 1024) == 0 else f"{nbytes} bytes"


def text_lines(path: Path, *, max_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, str]]:
    """(line number, text) for each line of `path`, line endings kept; a leading byte-order mark is
    dropped. Raises InputError for a missing file, a line over `max_bytes`, or bytes that are not UTF-8."""
    if not path.is_file():
        raise InputError("file not found", path=str(path))
    with path.open("rb") as fh:
        line_no = 0
        while True:
            raw = fh.readline(max_bytes + 1)
            if not raw:
                return
            line_no += 1
            if len(raw) > max_bytes and not (len(raw) == max_bytes + 1 and raw.endswith(b"\n")):
                raise InputError(f"line is longer than {limit_text(max_bytes)}, the limit per input line",
                                 path=str(path), line=line_no)
            if line_no == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM):]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the line);"
                                 " save the file as UTF-8", path=str(path), line=line_no) from None
            yield line_no, text


def jsonl_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSONL file; every line must be a JSON object."""
    for line_no, line in text_lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON ({exc.msg})", path=str(path), line=line_no) from None
        except RecursionError:
            raise InputError("not valid JSON (nested too deeply)", path=str(path), line=line_no) from None
        if not isinstance(row, dict):
            raise InputError("each line must be a JSON object", path=str(path), line=line_no)
        yield line_no, row


def no_cases(path: Path) -> InputError:
    """The error for a file with no case in it (empty, or every line blank)."""
    err = InputError(f"no cases in {path} (the file is empty or every line is blank)")
    err.path = str(path)
    return err


def object_field(row: dict[str, Any], name: str, path: Path, line_no: int) -> dict[str, Any]:
    """`row[name]` when it is a JSON object, {} when absent or null; anything else is an InputError."""
    value = row.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"must be a JSON object, not {_json_kind(value)}", path=str(path), line=line_no, field=name)
    return value


def _json_kind(value: Any) -> str:
    kinds = {str: "a string", bool: "a boolean", int: "a number", float: "a number", list: "a list"}
    return kinds.get(type(value), type(value).__name__)
