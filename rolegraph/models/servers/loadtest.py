"""An OpenAI-compatible server for load tests and benchmarks: answers every chat request with a
fixed reply after a fixed delay, on 127.0.0.1, and counts requests in flight."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web


class LoadTestServer:
    """`async with LoadTestServer(delay_s=0.05) as s:` then point a client at `s.base_url`."""

    def __init__(self, *, delay_s: float = 0.05, reply: str | Callable[[dict[str, Any]], str] = "The answer is (a)",
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.delay_s, self.reply, self.host, self.port = delay_s, reply, host, port
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests = 0
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def _chat(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.requests += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = await request.json()
            await asyncio.sleep(self.delay_s)
            text = self.reply(body) if callable(self.reply) else self.reply
            return web.json_response({
                "id": f"loadtest-{self.requests}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", "loadtest"),
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": len(json.dumps(body["messages"])) // 4, "completion_tokens": 8,
                          "total_tokens": len(json.dumps(body["messages"])) // 4 + 8},
            })
        finally:
            self.in_flight -= 1

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "loadtest", "object": "model", "owned_by": "rolegraph"}]})

    async def start(self) -> LoadTestServer:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> LoadTestServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
