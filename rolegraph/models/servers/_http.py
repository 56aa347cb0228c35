"""The small aiohttp servers rolegraph runs in its own process (the load-test server, the adapter
server): bound to 127.0.0.1 unless told otherwise, on a free port when given 0."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Self

from aiohttp import web


class LocalHTTPServer(ABC):
    """Subclasses add their routes in `routes(app)`; `async with` starts and stops the server."""

    backlog = 128

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @abstractmethod
    def routes(self, app: web.Application) -> None:
        """Add the server's handlers to `app`."""

    async def start(self) -> Self:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=self.backlog)
        await site.start()
        server: Any = site._server
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
