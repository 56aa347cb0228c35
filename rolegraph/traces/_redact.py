"""Redaction by value: secret values (from the environment, and every configured endpoint's key)
removed from any text or bytes the project writes."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

SECRET_MARKERS = ("KEY", "TOKEN", "SECRET")
REDACTED = "[REDACTED]"
MIN_SECRET_LEN = 6


class Redactor:
    """Removes secret values from text: values of environment variables whose names contain
    KEY, TOKEN or SECRET, plus any values given or `add`ed later (a Runtime adds every configured
    endpoint's API key, whatever its variable is called). Matching is by value, in its raw form
    and as it appears inside a JSON string; values under 6 characters are ignored (too likely to
    be ordinary text)."""

    def __init__(self, env: Mapping[str, str] | None = None, extra: tuple[str, ...] = ()) -> None:
        env = os.environ if env is None else env
        self._values: set[str] = set()
        self._secrets: list[str] = []
        self.add(*(v for k, v in env.items() if any(m in k.upper() for m in SECRET_MARKERS)), *extra)

    def add(self, *values: str | None) -> None:
        """Also redact `values` from now on (empty and short ones are skipped)."""
        new = {v for v in values if v and len(v) >= MIN_SECRET_LEN} - self._values
        if not new:
            return
        self._values |= new
        forms = set(self._secrets)
        for v in new:
            forms.add(v)
            forms.add(json.dumps(v)[1:-1])  # as it appears inside a JSON string
        self._secrets = sorted(forms, key=len, reverse=True)

    @property
    def values(self) -> frozenset[str]:
        """The secret values known (to hand to another store's redactor)."""
        return frozenset(self._values)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def data(self, value: Any) -> Any:
        """`value` (JSON-ready: dicts, lists, strings, numbers) with secrets removed from every string
        in it, keys included, as a trace's text is: a `--out` row or a summary keeps its shape, and
        what it prints or writes holds no key."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(k) if isinstance(k, str) else k: self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value

    def mask_bytes(self, data: bytes) -> bytes:
        """Overwrite secrets in binary data with '*' of the same byte length, so length-prefixed
        encodings (msgpack checkpoints) stay valid."""
        for secret in self._secrets:
            raw = secret.encode()
            if raw in data:
                data = data.replace(raw, b"*" * len(raw))
        return data
