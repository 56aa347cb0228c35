"""Starting and stopping the embedded server: clear failures, the CLI, no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from rolegraph import ServerStartError
from rolegraph.models.servers import EmbeddedConfig, EmbeddedServer
from rolegraph.models.servers.embedded import free_port


def wait_for(url: str, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status == 200
        except OSError:
            time.sleep(0.3)
    return False


def test_missing_model_file_is_one_clear_error(tmp_path: Path) -> None:
    server = EmbeddedServer(EmbeddedConfig(model_path=str(tmp_path / "nope.gguf")))
    with pytest.raises(ServerStartError, match="model file not found"):
        server.ensure_started()


def test_server_that_dies_at_start_reports_its_log(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"this is not a gguf file")
    server = EmbeddedServer(EmbeddedConfig(model_path=str(bogus), startup_timeout_s=60))
    with pytest.raises(ServerStartError, match="exited with code") as info:
        server.ensure_started()
    assert "log " in str(info.value) and "make setup" in str(info.value)
    assert not server.running


def test_serve_embedded_cli_serves_until_terminated() -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "rolegraph", "serve", "embedded", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(f"http://127.0.0.1:{port}/v1/models")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert not wait_for(f"http://127.0.0.1:{port}/v1/models", timeout=3)  # the model server went too


def test_model_server_does_not_outlive_a_killed_parent(tmp_path: Path) -> None:
    port = free_port()
    script = ("import time; from rolegraph.models.servers import EmbeddedServer, EmbeddedConfig; "
              f"s = EmbeddedServer(EmbeddedConfig(port={port})); s.ensure_started(); "
              "print(s._proc.pid, flush=True); time.sleep(600)")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    assert wait_for(f"http://127.0.0.1:{port}/v1/models")
    os.kill(parent.pid, signal.SIGKILL)  # no atexit, no cleanup
    parent.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _alive(child_pid):
        time.sleep(0.3)
    assert not _alive(child_pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by init) counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
