"""Reading input files line by line, bounded and strictly UTF-8: the one place every loader (MCQ
JSONL and CSV, a graph's JSONL inputs, eval cases) turns a malformed file into an InputError."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
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
    if path.is_dir():
        raise not_a_file(path)
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
                found = encoding_of(raw) if line_no == 1 else None
                if found is not None:
                    raise InputError(f"{found} text, not UTF-8; save the file as UTF-8", path=str(path),
                                     line=line_no) from None
                raise InputError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the line);"
                                 " save the file as UTF-8", path=str(path), line=line_no) from None
            if "\x00" in text:  # no text format we read holds NUL characters: two-byte text read as bytes
                raise InputError(f"{utf16_guess(raw)} text (NUL bytes between its characters), not UTF-8; save the file "
                                 "as UTF-8", path=str(path), line=line_no)
            yield line_no, text


_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32 (little-endian, with a byte-order mark)"),
         (b"\x00\x00\xfe\xff", "UTF-32 (big-endian, with a byte-order mark)"),
         (b"\xff\xfe", "UTF-16 (little-endian, with a byte-order mark)"),
         (b"\xfe\xff", "UTF-16 (big-endian, with a byte-order mark)"))


def encoding_of(head: bytes) -> str | None:
    """The encoding a file's first bytes announce with a byte-order mark other than UTF-8's, if any."""
    return next((name for bom, name in _BOMS if head.startswith(bom)), None)


def utf16_guess(raw: bytes) -> str:
    """Which UTF-16 a line holding NUL bytes most likely is: ASCII text in UTF-16 has a NUL after each
    character (little-endian) or before it (big-endian)."""
    odd, even = raw[1::2].count(0), raw[0::2].count(0)
    if odd > even:
        return "UTF-16 (little-endian, no byte-order mark)"
    if even > odd:
        return "UTF-16 (big-endian, no byte-order mark)"
    return "UTF-16 or UTF-32"


def not_a_file(path: Path) -> InputError:
    """The error for a directory given where an input file is wanted, naming the input files in it."""
    inside = sorted(p.name for p in path.iterdir() if p.is_file() and p.suffix.lower() in (".jsonl", ".csv"))[:5]
    there = f"; input files in it: {', '.join(inside)}" if inside else ""
    return InputError(f"is a directory, not a file; give the input file itself (JSONL, one JSON object per line){there}",
                      path=str(path))


def looks_like(line: str, path: Path) -> str | None:
    """What a line that is not a JSON object looks like, when it is recognisably another format: CSV
    (or TSV), a JSON document spread over several lines. None when it looks like (broken) JSON."""
    text = line.strip()
    if text in ("{", "["):
        return "a JSON document spread over several lines (JSONL wants each object whole on one line)"
    if text.startswith(("{", "[", '"')):
        return None
    if text.count("\t") > text.count(","):
        return "TSV (tab-separated values)"
    if "," in text or path.suffix.lower() == ".csv":
        return "CSV (comma-separated values)"
    return "text that is not JSON"


def not_jsonl(path: Path, line_no: int, line: str, detail: str, fields: Sequence[str] = ()) -> InputError:
    """The error for a line of a JSONL file that is not JSON: the format expected and, when the line is
    recognisably another, the format found; else `detail` (the JSON parser's finding). `fields`, the
    input's fields, make the example of a line."""
    found = looks_like(line, path)
    if found is None:
        return InputError(f"not valid JSON ({detail})", path=str(path), line=line_no)
    excerpt = line.strip()
    excerpt = excerpt if len(excerpt) <= 60 else excerpt[:59] + "…"
    example = "{" + ", ".join(f'"{f}": ...' for f in fields[:3]) + "}" if fields else '{"name": value, ...}'
    return InputError(f"expected JSONL (one JSON object per line), found {found}: {excerpt!r}; write each input as a "
                      f"JSON object on a line of its own, like {example}", path=str(path), line=line_no)


def jsonl_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSONL file; every line must be a JSON object."""
    for line_no, line in text_lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise not_jsonl(path, line_no, line, exc.msg) from None
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
