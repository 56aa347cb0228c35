"""The tool server's body limit: a body longer than `Limits.max_body_mb` is refused with 413
before it is read (by its Content-Length) or as soon as it passes the limit (a chunked upload)."""

from __future__ import annotations

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rolegraph.tools._limits import Limits


class BodyTooLarge(HTTPException):
    """The body grew past the limit while it was read (a chunked upload names no length first)."""


class BodyLimit:
    """ASGI middleware: a body whose Content-Length is over the limit is answered 413 before any of
    it is read; one sent without a length is read only up to the limit, then refused the same way."""

    def __init__(self, app: ASGIApp, *, limits: Limits) -> None:
        self.app, self.limits = app, limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.max_body_bytes
        length = Headers(scope=scope).get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await JSONResponse({"detail": self.limits.body_refusal(int(length))}, status_code=413)(scope, receive, send)
            return
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(413, self.limits.body_refusal())
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracked)
        except BodyTooLarge as exc:  # raised outside a route's body parsing (which answers it itself)
            if started:
                raise
            await JSONResponse({"detail": exc.detail}, status_code=413)(scope, receive, send)
