"""Runs a Python server module as a child that exits when its parent dies, so no model server
outlives a killed run. Usage: python -m rolegraph.models.servers._child MODULE [ARGS...]"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import threading
import time


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:  # re-parented: the process that started us is gone
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
            os._exit(1)
        time.sleep(1.0)


def main() -> None:
    module, args = sys.argv[1], sys.argv[2:]
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
