"""The `rolegraph` command line. Errors print as one line; `--debug` shows the traceback."""

from __future__ import annotations

import collections
import shlex
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rolegraph import __version__
from rolegraph._cli_options import HostOpt
from rolegraph.errors import ReplayMismatch, RolegraphError, UserError, one_line
from rolegraph.evals.being0 import register as register_being0
from rolegraph.evals.blame import blame_command
from rolegraph.evals.cli import eval_any_command, eval_app, optimize_command
from rolegraph.evals.fork_compare import fork_compare_command
from rolegraph.evals.lvas import register as register_lvas
from rolegraph.evals.videomind import register as register_videomind
from rolegraph.graphs.cli import RunHooks, replay_command, resume_command, run_command
from rolegraph.graphs.videomind import ADAPTER_DATA as VIDEOMIND_ADAPTER_DATA
from rolegraph.models.adapters_cli import adapters_app, serve_adapters
from rolegraph.traces.cli import trace_app
from rolegraph.ui.cli import ui_command


class _AnyGraphGroup(typer.core.TyperGroup):
    """A command group where an unknown command name is a graph (FILE.py:NAME, module:NAME or an
    installed graph's name), handed to the group's `graph` command."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-") and "graph" in self.commands:
            return "graph", self.commands["graph"], args
        return super().resolve_command(ctx, args)


def _mcqs(path: Path) -> Iterator[Any]:
    from rolegraph.envs.mcq import load_mcqs

    return load_mcqs(path)


def _exit_codes(*, graph: str, rows: list[dict[str, Any]], inputs: int, seeds: int, **future_kwargs: Any) -> Table:
    """RefineBot's summary: the runs that ended with each exit code, and their share."""
    from rolegraph.graphs.refinebot import ExitCode

    counts = collections.Counter(row.get("exit_code") or ExitCode.ERROR.value for row in rows)
    total = inputs * seeds
    table = Table(title=f"RefineBot: {inputs} questions x {seeds} seeds")
    table.add_column("exit code")
    table.add_column("runs", justify="right")
    table.add_column("share", justify="right")
    for code in ExitCode:
        n = counts.get(code.value, 0)
        if n or code is not ExitCode.ERROR:
            table.add_row(code.value, str(n), f"{n / total:.0%}" if total else "-")
    return table


REFINEBOT = RunHooks(read=_mcqs, seeds="0,1", exclude=frozenset({"state"}), summary=_exit_codes)
"""`rolegraph run refinebot`: MCQs from .jsonl or MicroVQA's .csv, seeds 0 and 1, the exit codes at the end."""

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Run, trace and evaluate multi-agent LLM graphs.")
run_app = typer.Typer(cls=_AnyGraphGroup, no_args_is_help=True,
                      help="Run a graph: any graph with FILE.py:NAME (or module:NAME, or an installed graph's name "
                           "such as refinebot) --input inputs.jsonl; one being0 episode, videomind question or lvas "
                           "video.")
# unknown --flags are the graph's options (`--max-iters 2`), read by the command against its options type
run_app.command("graph", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
    run_command({"refinebot": REFINEBOT}))
eval_app.info.cls = _AnyGraphGroup
eval_app.command("graph")(eval_any_command)
eval_app.command("fork-compare")(fork_compare_command)
serve_app = typer.Typer(no_args_is_help=True, help="Start a server in the foreground: embedded model, vLLM, adapters, tools.")
setup_app = typer.Typer(no_args_is_help=True, help="Install what rolegraph runs on: the embedded model server.")
app.add_typer(run_app, name="run")
app.add_typer(serve_app, name="serve")
app.add_typer(setup_app, name="setup")
app.add_typer(trace_app, name="trace")
app.add_typer(eval_app, name="eval")
app.command("optimize")(optimize_command)
register_being0(run_app, eval_app)
register_videomind(run_app, eval_app)
register_lvas(run_app, eval_app)
app.add_typer(adapters_app(VIDEOMIND_ADAPTER_DATA), name="adapters")
serve_app.command("adapters")(serve_adapters)
app.command("replay")(replay_command)
app.command("resume")(resume_command)
app.command("blame")(blame_command)
app.command("ui")(ui_command)

console = Console(stderr=True)
out = Console()
_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        out.print(f"rolegraph {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool | None, typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Print the version and exit.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    _state["debug"] = debug


@setup_app.command("embedded")
def setup_embedded_command(
    build: Annotated[bool, typer.Option("--build/--no-build", help="Build llama-server (once, about 8 minutes) when "
                                        "none is configured, installed or cached.")] = True,
    config: Annotated[Path | None, typer.Option(help="The rolegraph.toml whose `server` setting (under embedded) "
                                                     "to use (default: $ROLEGRAPH_CONFIG or ./rolegraph.toml).")] = None,
) -> None:
    """Make `rolegraph serve embedded` work here: find llama.cpp's llama-server or build it once (cached in
    $ROLEGRAPH_WHEEL_CACHE, default ~/.cache/rolegraph/wheels), and install the model (SmolLM2-135M)."""
    from rolegraph.config import load_config
    from rolegraph.models.servers import setup_embedded

    settings = load_config(config).embedded
    done = setup_embedded(configured=settings.server, build=build, say=console.print)
    out.print(f"llama-server: {done.server} (from {done.origin})", soft_wrap=True, markup=False)
    out.print(f"model: {done.model}", soft_wrap=True, markup=False)
    out.print("ready: `rolegraph serve embedded` serves it, and a run with no rolegraph.toml starts it", soft_wrap=True)


@serve_app.command("embedded")
def serve_embedded(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 8077,
    host: HostOpt = "127.0.0.1",
    parallel: Annotated[int | None, typer.Option(min=1, help="Slots decoding at once (default: two per core, 2-8).")] = None,
    lora: Annotated[list[str] | None, typer.Option(help="NAME=FILE.gguf: a LoRA adapter, applied to requests whose "
                                                        "model is NAME (repeatable).")] = None,
) -> None:
    """Serve the embedded CPU model (SmolLM2-135M-Instruct) on llama-server over the OpenAI API."""
    from rolegraph.models.servers import EmbeddedConfig, EmbeddedServer

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt  # unwinds out of wait(); cleanup happens below, not in the handler

    signal.signal(signal.SIGTERM, on_term)
    adapters = {}
    for item in lora or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise UserError(f"--lora takes NAME=FILE.gguf, not {item!r}")
        adapters[name] = path
    server = EmbeddedServer(EmbeddedConfig(port=port, host=host, parallel=parallel, lora=adapters))
    try:
        url = server.ensure_started()
        console.print(f"embedded model '{server.config.alias}' serving at {url} with {server.config.slots} slots"
                      + (f" and LoRA adapters {', '.join(adapters)}" if adapters else "") + " (Ctrl-C stops it)")
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@serve_app.command("vllm")
def serve_vllm(
    base: Annotated[str, typer.Option(help="The base model (path or name).")],
    lora: Annotated[list[str] | None, typer.Option(help="ROLE=PATH: a LoRA adapter served under the role's "
                                                        "name; repeat for each role.")] = None,
    roles: Annotated[str, typer.Option(help="Roles to bind in the config; those without an adapter use the "
                                            "base model.")] = "planner,grounder,verifier,answerer",
    port: Annotated[int, typer.Option()] = 8000,
    host: HostOpt = "127.0.0.1",
    tool_call_parser: Annotated[str | None, typer.Option(help="e.g. hermes, llama3_json")] = None,
    max_loras: Annotated[int | None, typer.Option(min=1, help="Adapters resident at once (default: all).")] = None,
    max_lora_rank: Annotated[int | None, typer.Option(min=1)] = None,
    config_out: Annotated[Path, typer.Option("--config-out", help="Where to write the runtime config.")] = Path(
        "rolegraph.toml"),
    dry_run: Annotated[bool, typer.Option(help="Print the command and write the config; start nothing.")] = False,
    python: Annotated[str | None, typer.Option(help="The Python that has vllm (e.g. its own venv's).")] = None,
    gpu_memory_utilization: Annotated[float | None, typer.Option(
        help="Memory share vLLM reserves; on the CPU build it is a share of RAM, and its default (0.92) fails "
             "unless nearly all RAM is free: use e.g. 0.5.")] = None,
    vllm_arg: Annotated[list[str] | None, typer.Option("--vllm-arg", help="More arguments for vLLM, e.g. "
                                                                          "'--max-model-len 4096' (repeatable).")] = None,
    log: Annotated[Path | None, typer.Option(help="vLLM's log (default: vllm.log beside the config).")] = None,
) -> None:
    """Serve one base model with a LoRA adapter per role on vLLM (Chain-of-LoRA), wait until every
    adapter is listed, and write the rolegraph.toml that maps roles to adapters."""
    from rolegraph.models.servers.vllm import VllmSpec, launch, parse_loras, show

    spec = VllmSpec(base=base, loras=parse_loras(lora or []), host=host, port=port,
                    tool_call_parser=tool_call_parser, max_loras=max_loras, max_lora_rank=max_lora_rank,
                    python=python or sys.executable, gpu_memory_utilization=gpu_memory_utilization,
                    extra=tuple(a for arg in (vllm_arg or []) for a in shlex.split(arg)))
    role_list = [r.strip() for r in roles.split(",") if r.strip()]
    if dry_run:
        cmd, _ = launch(spec, role_list, config_out=config_out, dry_run=True)
        out.print(show(cmd), soft_wrap=True)
        console.print(f"config: {config_out}")
        return
    log_path = log or config_out.parent / "vllm.log"
    console.print(f"starting vLLM; config: {config_out}; log: {log_path}")
    cmd, proc = launch(spec, role_list, config_out=config_out, log=log_path)
    assert proc is not None
    console.print(f"serving at {spec.base_url}: {', '.join([spec.model_name, *spec.loras])} (Ctrl-C stops it)")
    try:
        proc.wait()
    except KeyboardInterrupt:
        proc.terminate()


@serve_app.command("tools")
def serve_tools(
    port: Annotated[int, typer.Option()] = 8079,
    host: HostOpt = "127.0.0.1",
    pipeline: Annotated[list[str] | None, typer.Option(help="NAME=PATH_OR_ID: a diffusers pipeline served at "
                                                            "/tools/diffusion/NAME (repeatable).")] = None,
    work_dir: Annotated[Path, typer.Option(help="The only folder (with --out-dir) whose files a request may name "
                                                "as input; names resolve inside it, symlinks followed.")]
        = Path("rolegraph-tools/work"),
    out_dir: Annotated[Path, typer.Option(help="The only folder a request may write to; an existing file is "
                                               "replaced only when the request says overwrite.")]
        = Path("rolegraph-tools/out"),
    allow_urls: Annotated[bool, typer.Option(help="Let a request name an http(s) URL as its video: the server "
                                                  "then fetches it, so only on a trusted network.")] = False,
    max_body_mb: Annotated[float, typer.Option(min=0.001, help="Largest request body, MiB (an uploaded video "
                                                                "takes 4/3 of its size); larger: HTTP 413.")] = 64.0,
    max_seconds: Annotated[float, typer.Option(min=0.001, help="Longest audio a request asks for or sends, in "
                                                                "seconds (an effect, a mix, each track); "
                                                                "longer: HTTP 400.")] = 600.0,
) -> None:
    """Serve the heavy tools (sound effects, speech, mixing, muxing, diffusion pipelines) over
    typed HTTP endpoints; /docs lists them. Requests send videos as bytes or name files inside
    --work-dir, and get results as bytes or as files inside --out-dir; any other path, and any
    URL unless --allow-urls, is refused with HTTP 400. A body over --max-body-mb is refused
    with 413 before it is read, and audio over --max-seconds with 400."""
    import uvicorn

    from rolegraph.models.servers.vllm import parse_loras
    from rolegraph.tools.server import Limits, Tools, create_app, pipelines_from_config

    tools = Tools(pipelines_from_config(parse_loras(pipeline or [], option="--pipeline")), work_dir=work_dir,
                  out_dir=out_dir, allow_urls=allow_urls, limits=Limits(max_body_mb=max_body_mb, max_seconds=max_seconds))
    console.print(f"tools at http://{host}:{port} (docs: /docs); pipelines: {', '.join(tools.pipelines) or 'none'}; "
                  f"files: {tools.work_dir} (in), {tools.out_dir} (out){'; URLs allowed' if allow_urls else ''}")
    uvicorn.run(create_app(tools), host=host, port=port, log_level="warning")


def main() -> None:
    try:
        app()
    except Exception as exc:
        if _state["debug"]:
            raise
        kind = "error" if isinstance(exc, RolegraphError) else f"error ({type(exc).__name__})"
        console.print(f"[red]{kind}:[/red] {escape(one_line(exc))}", highlight=False, soft_wrap=True)
        if isinstance(exc, ReplayMismatch) and exc.diff:  # what changed, recorded against now
            print_replay_diff(exc.diff)
        sys.exit(1)


DIFF_LINES_SHOWN = 40
"""The most lines of a replay mismatch's request diff printed; the whole diff goes to a file."""
DIFF_LINE_WIDTH = 300


def print_replay_diff(diff: str, limit: int = DIFF_LINES_SHOWN) -> None:
    """A replay mismatch's diff where the user looks: its first `limit` lines (each at most
    DIFF_LINE_WIDTH characters); when it is longer, the whole diff is written to a file (private to
    the user, keys redacted) and its path printed."""
    import os
    import tempfile

    from rolegraph.traces import Redactor

    diff = Redactor(os.environ)(diff)
    lines = diff.splitlines()
    shown = [line if len(line) <= DIFF_LINE_WIDTH else line[:DIFF_LINE_WIDTH - 1] + "…" for line in lines[:limit]]
    console.print("\n".join(shown), highlight=False, soft_wrap=True, markup=False)
    if len(lines) > limit or shown != lines[:limit]:
        fd, name = tempfile.mkstemp(prefix="rolegraph-replay-", suffix=".diff")
        with os.fdopen(fd, "w") as fh:
            fh.write(diff + "\n")
        console.print(f"... the whole diff ({len(lines)} lines): {name}", highlight=False, soft_wrap=True, markup=False)


if __name__ == "__main__":
    main()

