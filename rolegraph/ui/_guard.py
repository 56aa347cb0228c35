"""What `rolegraph ui` answers: requests addressed to it and, when they change anything, sent by
its own pages. The Host header must name the address it listens on (a DNS-rebound name reads
nothing); a POST must say it comes from this origin (`Sec-Fetch-Site`, `Origin` or `Referer`).

Browsers send those headers on every form POST, so the UI's own forms work unchanged, and a page
of another site (or of another port of this machine) cannot start a fork. A script that sends
none of them is refused too, with the header to add: there is no token to copy out of a page
(curl -H 'Origin: http://127.0.0.1:8765' ...)."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SAME_ORIGIN = frozenset({"same-origin", "none"})
"""`Sec-Fetch-Site` values of a request this UI's own page made (`none`: the user typed or bookmarked it)."""
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?")


def split_host(value: str, default_port: int = 80) -> tuple[str, int] | None:
    """`(name, port)` of a Host header (`localhost:8765`, `[::1]:8765`), lower-cased; None if it is not one."""
    found = _HOST.fullmatch(value.strip())
    if not found:
        return None
    name, port = found.group(1).strip("[]").lower(), found.group(2)
    return name, int(port) if port else default_port


def origin_of(url: str) -> tuple[str, str, int] | None:
    """`(scheme, name, port)` of an Origin or Referer value; None for `null` or anything else."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        return None
    host = split_host(parts.netloc, 443 if parts.scheme == "https" else 80)
    return None if host is None else (parts.scheme, *host)


class Guard:
    """ASGI middleware in front of the UI: a request whose Host is not this server is answered 400,
    a state-changing one from anywhere but this UI's own pages 403, each with a one-line reason."""

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1") -> None:
        self.app = app
        self.names = frozenset(n.lower().strip("[]") for n in (*LOOPBACK_NAMES, host))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope, Headers(scope=scope))
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, reason = refusal
        await PlainTextResponse(reason + "\n", status_code=status)(scope, receive, send)

    def refusal(self, scope: Scope, headers: Headers) -> tuple[int, str] | None:
        server = scope.get("server")  # the local address and port of the socket that took the connection
        port = server[1] if server and server[1] is not None else None
        names = self.names | {str(server[0]).lower()} if server else self.names
        raw = headers.get("host", "")
        host = split_host(raw)
        if host is None or host[0] not in names or (port is not None and host[1] != port):
            return 400, (f"Host {raw[:100]!r} is not this server: expected {_expected(names, port)} (start "
                         "`rolegraph ui --host NAME` to be reached by another name)")
        if scope["method"] in SAFE_METHODS:
            return None
        here = ("http", *host)
        site, origin, referer = (headers.get(k) for k in ("sec-fetch-site", "origin", "referer"))
        if site is not None and site.lower() not in SAME_ORIGIN:
            return 403, (f"{scope['method']} refused: the browser says it comes from another origin "
                         f"(Sec-Fetch-Site: {site[:40]}); forks start only from this UI's own pages")
        claimed = origin if origin is not None else referer
        if claimed is not None and origin_of(claimed) != here:
            which = "Origin" if origin is not None else "Referer"
            return 403, (f"{scope['method']} refused: {which} {claimed[:100]!r} is not this UI "
                         f"(http://{raw}); forks start only from this UI's own pages")
        if site is None and claimed is None:
            return 403, (f"{scope['method']} refused: no Origin, Referer or Sec-Fetch-Site header says it comes from "
                         f"this UI; browsers send them, a script must too (Origin: http://{raw})")
        return None


def _expected(names: Iterable[str], port: int | None) -> str:
    shown = sorted(f"[{n}]" if ":" in n else n for n in names)
    return " or ".join(f"{n}:{port}" if port is not None else n for n in shown)
