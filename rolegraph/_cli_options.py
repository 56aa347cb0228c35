"""The typer options that several `rolegraph` commands share, declared once so that each reads,
and is documented, the same everywhere. A command takes one as `config: ConfigOpt = None`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOpt = Annotated[Path | None, typer.Option(help="rolegraph.toml to use.")]
"""`--config`: the runtime configuration (default: ./rolegraph.toml, else the embedded model)."""
LiveConfigOpt = Annotated[Path | None, typer.Option(help="rolegraph.toml for the live models.")]
"""`--config` of a command that replays a recorded run and calls models only for its live part."""
ConcurrencyOpt = Annotated[int, typer.Option(min=1, help="Runs in flight (default: enough for every embedded "
                                                         "server slot).")]
"""`--concurrency`; its default is `rolegraph.models.servers.default_concurrency()`."""
RunsDirOpt = Annotated[Path | None, typer.Option("--runs", help="Trace directory (default: \\[traces] dir, 'runs').")]
"""`--runs`: the trace store to read."""
EvalsDirOpt = Annotated[Path, typer.Option("--evals", help="Where evaluations live.")]
"""`--evals`: the folder of evaluation directories to read."""
EvalOutOpt = Annotated[Path, typer.Option("--out", help="Where evaluations are written.")]
"""`--out` of an evaluation: the folder its new evaluation directory goes into."""
ResumeOpt = Annotated[Path | None, typer.Option(help="An earlier evaluation directory to continue.")]
"""`--resume` of an evaluation."""
RetryErrorsOpt = Annotated[bool, typer.Option("--retry-errors/--no-retry-errors",
                                              help="With --resume: run again the cases recorded as an error or a "
                                                   "timeout (the new result replaces the old). Default: retry.")]
"""`--retry-errors` of an evaluation."""
RepeatsOpt = Annotated[int, typer.Option(min=1, help="Runs per case, for pass^k and flip rates.")]
"""`--repeats` of an evaluation."""
TimeoutOpt = Annotated[float | None, typer.Option(help="Seconds allowed per case.")]
"""`--timeout` of an evaluation."""
HostOpt = Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 unless you mean it.")]
"""`--host` of a server started in the foreground."""
AllowUnusedRolesOpt = Annotated[bool, typer.Option(
    "--allow-unused-roles", help="Run even if rolegraph.toml configures roles the graph does not use (by default an "
                                 "error: a misspelt [roles.X] would never apply).")]
"""`--allow-unused-roles` of a command that runs a graph with a configuration file."""
