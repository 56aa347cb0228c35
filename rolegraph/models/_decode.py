"""Reading a model's answer safely: JSON decoding that turns every hostile input (deep nesting,
huge numbers, NaN, lone surrogates) into a JSONDecodeError or clean text, never another error."""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 128
"""Deepest nesting of arrays and objects accepted in an answer (json.loads recurses in C and
pydantic validation recurses again; 1,000 levels raise RecursionError)."""

_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[{]|[\]}]', re.DOTALL)
_SURROGATE = re.compile("[\ud800-\udfff]")


class UnsafeJSON(json.JSONDecodeError):
    """Well-formed JSON refused all the same (too deep, a number out of range, NaN); the message
    says why, and no position applies."""

    def __init__(self, msg: str, doc: str, pos: int = 0) -> None:
        super().__init__(msg, doc, pos)

    def __str__(self) -> str:
        return self.msg


def clean_text(text: str) -> str:
    """`text` with each lone UTF-16 surrogate (which no UTF-8 file can hold) replaced by U+FFFD;
    a surrogate pair becomes the character it encodes."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def clean_value(value: Any) -> Any:
    """`value` (decoded JSON) with clean_text applied to every string and key."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [clean_value(v) for v in value]
    if isinstance(value, dict):
        return {clean_text(k) if isinstance(k, str) else k: clean_value(v) for k, v in value.items()}
    return value


def nesting_depth(text: str) -> int:
    """How deep arrays and objects nest in JSON `text` (brackets inside strings don't count)."""
    depth = deepest = 0
    for m in _TOKENS.finditer(text):
        c = m.group()[0]
        if c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth -= 1
    return deepest


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]}{'...' if len(text) > 20 else ''} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def decode_json(text: str) -> Any:
    """Decode a model's JSON answer, tolerating a Markdown code fence around it and raw control
    characters inside strings (llama.cpp's JSON grammar lets a newline into a string).

    Raises json.JSONDecodeError for anything that is not plain, finite JSON nested at most
    MAX_DEPTH deep (including NaN, Infinity, 1e999 and integers over Python's 4,300-digit limit);
    lone surrogates in strings come back as U+FFFD."""
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        stripped = stripped.rsplit("```", 1)[0]
    if stripped.count("[") + stripped.count("{") > MAX_DEPTH and nesting_depth(stripped) > MAX_DEPTH:
        raise UnsafeJSON(f"arrays and objects nest deeper than {MAX_DEPTH} levels", stripped)
    try:
        value = json.loads(stripped, strict=False, parse_float=_finite, parse_constant=_no_constant)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as exc:  # int over 4,300 digits, non-finite number
        raise UnsafeJSON(str(exc).split(";")[0], stripped) from None
    return clean_value(value)
