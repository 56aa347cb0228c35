"""The `rolegraph ui` command: serve the app on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import contextlib
import importlib.util
import threading
import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from rolegraph._cli_options import EvalsDirOpt
from rolegraph.errors import UserError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def ui_command(
    runs: Annotated[Path, typer.Option("--runs", help="The trace store to browse.")] = Path("runs"),
    evals: EvalsDirOpt = Path("evals"),
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free one).", min=0, max=65535)] = 8765,
    host: Annotated[str, typer.Option(help="Address to bind; anything but loopback lets others read runs "
                                           "and start forks. A request's Host must be this name (or a loopback "
                                           "one) and this port.")] = "127.0.0.1",
    open_browser: Annotated[bool, typer.Option("--open", help="Open the page in a browser.")] = False,
    config: Annotated[Path | None, typer.Option(help="rolegraph.toml for the live models of forks.")] = None,
) -> None:
    """Browse runs and evaluations in a local web page: filter, compare side by side, fork."""
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        raise UserError("`rolegraph ui` needs FastAPI and uvicorn, which come with the ui extra: "
                        "pip install 'rolegraph[ui]'")
    import uvicorn

    from rolegraph.ui._app import create_app

    console = Console(stderr=True)
    description = (f"the models of {config}" if config
                   else "the models of rolegraph.toml if present, else the embedded CPU model")
    app = create_app(runs=runs, evals=evals, config=config, live_description=description, host=host)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off"))
    if host not in LOOPBACK:
        console.print(f"[yellow]listening on {host}: anyone who reaches this address can read the runs and start forks[/]")

    def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            threading.Event().wait(0.05)
        bound = server.servers[0].sockets[0].getsockname()[1] if server.servers else port
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{bound}/"
        print(f"rolegraph ui: {url}  (runs: {runs}, evaluations: {evals}; Ctrl-C stops)", flush=True)
        if open_browser:
            webbrowser.open(url)

    threading.Thread(target=announce, daemon=True).start()
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn stops on Ctrl-C, then raises it again: a normal end here
        server.run()
    app.state.jobs.join(timeout=5)
    print("rolegraph ui: stopped", flush=True)
