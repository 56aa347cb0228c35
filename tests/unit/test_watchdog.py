"""The server watchdog (models/servers/_child.py) leaves nothing running: every way its job can end —
the parent killed (SIGTERM, SIGKILL, or `timeout`'s SIGTERM to the whole process group), the watchdog
told to stop (SIGTERM, SIGINT), the server dying — ends with no watchdog, no server and no zombie.

No real llama-server is started: a stand-in server (a Python script) is run through `--exec`. Each
chain runs under its own reaper (a child subreaper, as init would be), so an exited process is reaped
and one still running or unreaped shows up in a census of /proc."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rolegraph.models.servers import EmbeddedConfig, EmbeddedServer, _child

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists() or not sys.platform.startswith("linux"),
                                reason="needs Linux (/proc and PR_SET_CHILD_SUBREAPER)")

WATCHDOG = Path(_child.__file__)
"""The watchdog's own file, run as a script: the same code `python -m` runs, without importing rolegraph (1.5 s)."""
PATIENCE_S = 30.0
"""A bound for "never": far above the sub-second a chain takes to end, even on a loaded machine."""

REAPER = """\
import ctypes, os, subprocess, sys
assert ctypes.CDLL(None).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER: orphans below are ours to reap
parent = subprocess.Popen(sys.argv[1:], start_new_session=True)  # its own process group, as under `timeout`
print("parent", parent.pid, flush=True)
while True:
    try:
        pid, status = os.wait()
    except ChildProcessError:
        break
    print("reaped", pid, os.waitstatus_to_exitcode(status), flush=True)
"""
PARENT = """\
import os, subprocess, sys
watchdog = subprocess.Popen(sys.argv[1:])
print("watchdog", watchdog.pid, flush=True)
# seen, not reaped, then told, then reaped: if this process is killed in between, the watchdog is still
# a zombie for the reaper, which tells its status instead (reaping first could lose it)
info = os.waitid(os.P_PID, watchdog.pid, os.WEXITED | os.WNOWAIT)
code = info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
print("watchdog-exit", code, flush=True)
watchdog.wait()
"""
SERVER = """\
import os, signal, sys, time
mode = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else "serve"
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("server", os.getpid(), flush=True)
if mode == "exit3":
    sys.exit(3)
while True:
    time.sleep(3600)
"""


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of a process, from /proc; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[19])


@dataclass
class Chain:
    """reaper -> parent -> watchdog -> server, started together; `pids` fills as each one says who it is."""

    reaper: subprocess.Popen[bytes]
    pids: dict[str, int] = field(default_factory=dict)
    started: dict[int, int] = field(default_factory=dict)
    """pid -> its start time, to tell our process from a later one given the same pid."""
    reaped: dict[int, int] = field(default_factory=dict)
    """pid -> exit code, as the reaper reported it."""
    watchdog_exit: int | None = None
    """The watchdog's exit code, when its parent lived to see it."""
    _buffer: bytes = b""
    _eof: bool = False

    def _read(self, until: Callable[[], bool], deadline: float) -> bool:
        assert self.reaper.stdout is not None
        fd = self.reaper.stdout.fileno()
        while not until():
            if self._eof or time.monotonic() > deadline:
                return False
            if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                continue
            chunk = os.read(fd, 4096)
            self._eof = not chunk
            self._buffer += chunk
            *lines, self._buffer = self._buffer.split(b"\n")
            for line in filter(None, lines):
                what, *numbers = line.decode().split()
                if what == "reaped":
                    self.reaped[int(numbers[0])] = int(numbers[1])
                elif what == "watchdog-exit":
                    self.watchdog_exit = int(numbers[0])
                else:
                    pid = self.pids[what] = int(numbers[0])
                    stat = _stat(pid)
                    if stat is not None:
                        self.started[pid] = stat[2]
        return True

    def wait_started(self) -> None:
        if not self._read(lambda: {"parent", "watchdog", "server"} <= self.pids.keys(), time.monotonic() + PATIENCE_S):
            raise AssertionError(f"the chain did not start: {self.pids}")

    def wait_gone(self, within_s: float = PATIENCE_S) -> bool:
        """Whether every process of the chain exited and was reaped (the reaper's output ends when
        the last one exits, and the reaper itself exits once nothing is left to reap)."""
        deadline = time.monotonic() + within_s
        if not self._read(lambda: self._eof, deadline):
            return False
        try:
            self.reaper.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return False
        return True

    def watchdog_status(self) -> int | None:
        """The watchdog's exit code, as its parent saw it or, once the parent was gone, the reaper."""
        if self.watchdog_exit is not None:
            return self.watchdog_exit
        return self.reaped.get(self.pids["watchdog"])

    def kill_all(self) -> None:
        """Cleanup after a failure: SIGKILL whatever of ours still runs; the reaper reaps it and exits."""
        for pid, started in self.started.items():
            stat = _stat(pid)
            if stat is not None and stat[2] == started:
                os.kill(pid, signal.SIGKILL)
        try:
            self.reaper.wait(10)
        except subprocess.TimeoutExpired:
            self.reaper.kill()
            self.reaper.wait()


class Chains:
    """The chains a test started, their scripts (under a folder named by a marker unique to the test,
    so every process of theirs carries it on its command line), and a census of what is left of them."""

    def __init__(self, tmp: Path) -> None:
        self.marker = f"rg-watchdog-test-{uuid.uuid4().hex}"
        self.dir = tmp / self.marker
        self.dir.mkdir()
        for name, text in (("reaper.py", REAPER), ("parent.py", PARENT)):
            (self.dir / name).write_text(text)
        self.server = self.dir / "server"
        self.server.write_text(f"#!{sys.executable} -I\n{SERVER}")
        self.server.chmod(0o755)
        self.chains: list[Chain] = []

    def start(self, watchdog: list[str], *server_args: str) -> Chain:
        """A chain whose parent runs `watchdog --exec <the stand-in server> server_args`."""
        python = [sys.executable, "-I", "-S"]
        command = [*python, str(self.dir / "reaper.py"), *python, str(self.dir / "parent.py"),
                   *watchdog, "--exec", str(self.server), *server_args]
        chain = Chain(subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL))
        self.chains.append(chain)
        return chain

    def start_watchdog(self, mode: str = "serve", *, stop_timeout_s: float | None = None,
                       watchdog: Path = WATCHDOG) -> Chain:
        timeout = ["--stop-timeout", str(stop_timeout_s)] if stop_timeout_s is not None else []
        return self.start([sys.executable, "-I", "-S", str(watchdog), *timeout], mode, self.marker)

    def census(self) -> list[str]:
        """Every process of ours still in /proc: one with the marker on its command line, one we
        saw start (a zombie's command line is empty), or a zombie whose parent is one of ours."""
        ours = {pid: started for chain in self.chains for pid, started in chain.started.items()}
        left = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            stat = _stat(pid)
            if stat is None:
                continue
            state, ppid, started = stat
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except (FileNotFoundError, ProcessLookupError):
                continue
            parent = _stat(ppid)
            if (self.marker in command or ours.get(pid) == started
                    or (state == "Z" and parent is not None and ours.get(ppid) == parent[2])):
                left.append(f"{pid} {state} (parent {ppid}) {command.strip() or '<zombie>'}")
        return left

    def close(self) -> None:
        for chain in self.chains:
            if chain.reaper.poll() is None:
                chain.kill_all()


@pytest.fixture
def chains(tmp_path: Path) -> Iterator[Chains]:
    c = Chains(tmp_path)
    yield c
    c.close()


def _assert_gone(chains: Chains, *started: Chain) -> None:
    stuck = [chain.pids for chain in started if not chain.wait_gone()]
    assert not stuck, f"a chain never ended: {stuck}; left: {chains.census()}"


KILLS: dict[str, Callable[[Chain], None]] = {
    "parent SIGTERM": lambda chain: os.kill(chain.pids["parent"], signal.SIGTERM),
    "parent SIGKILL": lambda chain: os.kill(chain.pids["parent"], signal.SIGKILL),
    # what `timeout` does: the parent's whole process group (parent, watchdog, server) gets SIGTERM
    "group SIGTERM": lambda chain: os.killpg(chain.pids["parent"], signal.SIGTERM),
}


def test_a_killed_parent_leaves_no_watchdog_no_server_and_no_zombie(chains: Chains) -> None:
    for _ in range(20):
        started = {kill: chains.start_watchdog() for kill in KILLS}
        for kill, chain in started.items():
            chain.wait_started()
            KILLS[kill](chain)
        _assert_gone(chains, *started.values())
        for chain in started.values():  # it stopped its server, then exited with the server's status
            assert chain.watchdog_status() == 128 + signal.SIGTERM
    assert chains.census() == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_watchdog_stops_its_server_and_exits_on_sigterm_and_sigint(chains: Chains, signum: int) -> None:
    for _ in range(3):
        chain = chains.start_watchdog()
        chain.wait_started()
        os.kill(chain.pids["watchdog"], signum)
        _assert_gone(chains, chain)
        assert chain.watchdog_exit == 128 + signal.SIGTERM  # it stopped its server, then exited
    assert chains.census() == []


def test_the_watchdog_exits_with_its_servers_status_when_the_server_dies(chains: Chains) -> None:
    killed = chains.start_watchdog()
    exits = chains.start_watchdog("exit3")
    killed.wait_started()
    os.kill(killed.pids["server"], signal.SIGKILL)
    _assert_gone(chains, killed, exits)
    assert killed.watchdog_exit == 128 + signal.SIGKILL
    assert exits.watchdog_exit == 3
    assert chains.census() == []


def test_a_server_that_ignores_sigterm_is_killed(chains: Chains) -> None:
    orphaned = chains.start_watchdog("stubborn", stop_timeout_s=0.2)
    stopped = chains.start_watchdog("stubborn", stop_timeout_s=0.2)
    for chain in (orphaned, stopped):
        chain.wait_started()
    os.kill(orphaned.pids["parent"], signal.SIGKILL)
    os.kill(stopped.pids["watchdog"], signal.SIGTERM)
    _assert_gone(chains, orphaned, stopped)
    assert orphaned.watchdog_status() == 128 + signal.SIGKILL
    assert stopped.watchdog_status() == 128 + signal.SIGKILL
    assert chains.census() == []


def test_the_embedded_servers_own_command_line_leaves_nothing_behind(chains: Chains, tmp_path: Path) -> None:
    """The watchdog as EmbeddedServer starts it (`python -m ...`), killed as `timeout` kills a run
    and as `rolegraph serve embedded` stops it on SIGTERM."""
    server = EmbeddedServer(EmbeddedConfig(server=str(chains.server)))
    command = server.command(tmp_path / f"{chains.marker}.gguf", port=1)
    assert command[1:5] == ["-m", "rolegraph.models.servers._child", "--exec", str(chains.server)]
    run = chains.start(command[:3], *command[5:])
    served = chains.start(command[:3], *command[5:])
    for chain in (run, served):
        chain.wait_started()
    os.killpg(run.pids["parent"], signal.SIGTERM)
    os.kill(served.pids["watchdog"], signal.SIGTERM)
    _assert_gone(chains, run, served)
    assert run.watchdog_status() == served.watchdog_status() == 128 + signal.SIGTERM
    assert chains.census() == []
