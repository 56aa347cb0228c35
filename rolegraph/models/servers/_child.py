"""Runs a model server as a child that exits when its parent dies, so no model server outlives a
killed run.

    python -m rolegraph.models.servers._child MODULE [ARGS...]        a Python server module
    python -m rolegraph.models.servers._child --exec PROGRAM [ARGS...]  a native server (llama-server)

A native server runs as this process's own child: it is told to die with this process
(PR_SET_PDEATHSIG on Linux), and it is terminated when the parent is gone or when this
process is terminated."""

from __future__ import annotations

import ctypes
import os
import runpy
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def _watch_parent(parent: int, on_gone: Callable[[], None]) -> None:
    while True:
        if os.getppid() != parent:  # re-parented: the process that started us is gone
            on_gone()
        time.sleep(1.0)


def _die_with_us() -> None:
    """In the native server, before it starts: SIGTERM when this process exits (Linux only)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def terminate(proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if `proc` has not exited within `timeout_s`; reaps it."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _run_native(program: str, args: list[str]) -> int:
    # no thread of ours runs yet when the child is forked, which is what preexec_fn needs
    proc = subprocess.Popen([program, *args], stdin=subprocess.DEVNULL,
                            preexec_fn=_die_with_us if sys.platform.startswith("linux") else None)  # noqa: PLW1509

    def stop() -> None:
        """Terminate the server and exit; safe from any thread (the watcher calls it directly:
        a signal it sent itself could land on its own thread and never wake the main one)."""
        terminate(proc)
        os._exit(proc.returncode if proc.returncode is not None else 1)

    signal.signal(signal.SIGTERM, lambda *_: stop())
    signal.signal(signal.SIGINT, lambda *_: stop())
    threading.Thread(target=_watch_parent, args=(os.getppid(), stop), daemon=True).start()
    return proc.wait()


def main() -> None:
    if sys.argv[1] == "--exec":
        sys.exit(_run_native(sys.argv[2], sys.argv[3:]))
    module, args = sys.argv[1], sys.argv[2:]

    def gone() -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        os._exit(1)

    threading.Thread(target=_watch_parent, args=(os.getppid(), gone), daemon=True).start()
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
