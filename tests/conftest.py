"""Test-wide guards: no connection leaves 127.0.0.1, and the embedded server starts once."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_MCQS = ROOT / "examples" / "data" / "microscopy_mcqs.jsonl"
ALLOWED_HOSTS = {"127.0.0.1"}
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
"""Debian's chromium, which the browser tests drive through Playwright."""
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check(sock: socket.socket, address: object) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0] if isinstance(address, tuple) else address
        if host not in ALLOWED_HOSTS:
            raise ConnectionRefusedError(f"tests may only connect to 127.0.0.1, not {host!r}")


def _guarded_connect(self: socket.socket, address: object) -> None:
    _check(self, address)
    return _real_connect(self, address)  # type: ignore[arg-type]


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    _check(self, address)
    return _real_connect_ex(self, address)  # type: ignore[arg-type]


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def embedded_url() -> Iterator[str]:
    """The real embedded model server, started once for the whole test session."""
    from rolegraph.models.servers import EmbeddedServer

    server = EmbeddedServer()
    url = server.ensure_started()
    yield url
    server.stop()


@pytest.fixture
async def embedded_runtime(embedded_url: str) -> AsyncIterator[object]:
    from rolegraph import Runtime
    from rolegraph.config import EndpointConfig, RoleConfig, RuntimeConfig

    config = RuntimeConfig(
        endpoints={"local": EndpointConfig(base_url=embedded_url)},
        roles={"default": RoleConfig(endpoint="local", model="smollm2-135m")},
    )
    runtime = Runtime(config)
    yield runtime
    await runtime.aclose()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.embedded)


@contextmanager
def serve_app(app: Any) -> Iterator[int]:
    """An ASGI `app` served by uvicorn on a real socket of 127.0.0.1, in a thread; yields its port."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
