"""An OpenAI-compatible server for load tests and benchmarks: answers every chat request with a
fixed reply after a fixed delay, on 127.0.0.1, and counts requests in flight."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from rolegraph.models.servers._http import LocalHTTPServer


class LoadTestServer(LocalHTTPServer):
    """`async with LoadTestServer(delay_s=0.05) as s:` then point a client at `s.base_url`."""

    backlog = 1024

    def __init__(self, *, delay_s: float = 0.05, reply: str | Callable[[dict[str, Any]], str] = "The answer is (a)",
                 host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host=host, port=port)
        self.delay_s, self.reply = delay_s, reply
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests = 0

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

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
