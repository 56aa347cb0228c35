"""Runs a model server as a child that exits when its parent dies, so no model server outlives a
killed run.

    python -m rolegraph.models.servers._child MODULE [ARGS...]        a Python server module
    python -m rolegraph.models.servers._child [--stop-timeout S] --exec PROGRAM [ARGS...]
                                                                      a native server (llama-server)

A native server runs as this process's own child: it is told to die with this process
(PR_SET_PDEATHSIG on Linux), and it is stopped (SIGTERM, then SIGKILL after S seconds, default 10)
when this process gets SIGTERM or SIGINT or its parent is gone; this process then exits. When the
server exits first, this process exits with the server's status."""

from __future__ import annotations

import ctypes
import os
import runpy
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

PR_SET_PDEATHSIG = 1
STOP_TIMEOUT_S = 10.0
"""How long a native server gets to exit after SIGTERM before it is killed."""
POLL_S = 0.25
"""How often the watchdog looks for its parent; a signal or the server's exit wakes it at once."""


def _watch_parent(parent: int, on_gone: Callable[[], None]) -> None:
    while True:
        if os.getppid() != parent:  # re-parented: the process that started us is gone
            on_gone()
        time.sleep(1.0)


def _die_with(watchdog: int) -> Callable[[], None]:
    """In the native server, before it starts: SIGTERM when the watchdog exits (Linux only)."""

    def preexec() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            return
        if os.getppid() != watchdog:  # it died before the request took effect
            os._exit(1)

    return preexec


def terminate(proc: subprocess.Popen[bytes], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, then SIGKILL if `proc` has not exited within `timeout_s`; reaps it. Never from a
    signal handler: it waits, and the code the handler interrupted may hold `proc`'s wait lock."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _exit_code(returncode: int) -> int:
    """A child's status as a shell gives it: its exit code, or 128 + the signal that killed it."""
    return returncode if returncode >= 0 else 128 - returncode


def _run_native(program: str, args: list[str], stop_timeout_s: float) -> int:
    """Runs the server until it exits or a stop is asked for; returns this process's exit code.

    All waiting happens in this one loop; the signal handlers only note the signal. A handler runs
    inside whatever the main thread was doing, and one that waited for the server there (inside
    Popen.wait, holding its non-reentrant lock) waited forever beside the server's zombie."""
    parent = os.getppid()
    stop: list[int] = []
    wake, waker = socket.socketpair()  # every handled signal writes a byte to `waker`: select() returns
    wake.setblocking(False)
    waker.setblocking(False)
    signal.set_wakeup_fd(waker.fileno(), warn_on_full_buffer=False)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, _frame: stop.append(signum))
    if hasattr(signal, "SIGCHLD"):  # handled only to wake the loop when the server exits
        signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)
    # no thread of ours runs when the child is forked, which is what preexec_fn needs
    proc = subprocess.Popen([program, *args], stdin=subprocess.DEVNULL,
                            preexec_fn=_die_with(os.getpid()) if sys.platform.startswith("linux") else None)  # noqa: PLW1509
    while proc.poll() is None:
        if stop or os.getppid() != parent:  # asked to stop, or re-parented: our parent is gone
            terminate(proc, stop_timeout_s)
            break
        if select.select([wake], [], [], POLL_S)[0]:
            wake.recv(4096)
    assert proc.returncode is not None
    return _exit_code(proc.returncode)


def main() -> None:
    argv = sys.argv[1:]
    stop_timeout_s = STOP_TIMEOUT_S
    if argv[:1] == ["--stop-timeout"]:
        stop_timeout_s, argv = float(argv[1]), argv[2:]
    if argv[:1] == ["--exec"]:
        sys.exit(_run_native(argv[1], argv[2:], stop_timeout_s))
    module, args = argv[0], argv[1:]

    def gone() -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        os._exit(1)

    threading.Thread(target=_watch_parent, args=(os.getppid(), gone), daemon=True).start()
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
