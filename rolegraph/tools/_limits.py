"""What one tool-server request may ask for: its body's size, and the length of every piece of
audio it sends or asks for. Each refusal (413 or 400) names the limit and the
`rolegraph serve tools` option that raises it; the defaults leave room for real clips."""

from __future__ import annotations

from dataclasses import dataclass

from rolegraph.errors import UserError
from rolegraph.tools.audio import RATE

MIB = 2**20


@dataclass(frozen=True)
class Limits:
    """The tool server's bounds (`Tools(limits=...)`; `rolegraph serve tools --max-body-mb --max-seconds`)."""

    max_body_mb: float = 64.0
    """A request body's size in MiB (--max-body-mb); a video uploaded as base64 takes 4/3 of its size."""
    max_seconds: float = 600.0
    """Seconds of audio (--max-seconds): an effect or a mix asked for, and each track sent (mix layers,
    the mux soundtrack), which is at most this times 16,000 samples."""

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * MIB)

    @property
    def max_samples(self) -> int:
        return int(self.max_seconds * RATE)

    def body_refusal(self, size: int | None = None) -> str:
        """Why a body is refused: `size` bytes (its Content-Length), or more than the limit so far."""
        got = f"{size:,} bytes" if size is not None else f"over {self.max_body_bytes:,} bytes"
        return (f"request body: {got} is over the {self.max_body_mb:g} MiB limit; start the server with "
                "--max-body-mb to raise it, or name a video in its --work-dir instead of uploading it")

    def check_seconds(self, seconds: float, field: str) -> None:
        """A duration asked for: refused above `max_seconds`."""
        if not seconds <= self.max_seconds:
            raise UserError(f"{field}: {seconds:g} s is over the {self.max_seconds:g} s limit; start the server "
                            "with --max-seconds to raise it")

    def check_samples(self, n: int, field: str) -> None:
        """A track sent: refused when longer than `max_seconds` of audio."""
        if n > self.max_samples:
            raise UserError(f"{field}: {n / RATE:g} s of audio ({n:,} samples) is over the {self.max_seconds:g} s "
                            f"limit ({self.max_samples:,} samples); start the server with --max-seconds to raise it")
