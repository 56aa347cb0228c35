"""`rolegraph adapters train|convert|report` and `rolegraph serve adapters`: Chain-of-LoRA on CPU.
Adapters are trained with peft, converted to GGUF and served, all at once, by one llama-server
that applies the role's adapter per request. The train and report commands are made for one
graph's AdapterData (the CLI passes VideoMind's)."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rolegraph._cli_options import HostOpt
from rolegraph.errors import UserError

if TYPE_CHECKING:
    from rolegraph.models.adapters import AdapterData

out = Console()
err = Console(stderr=True)

RolesOpt = Annotated[str, typer.Option(help="Comma-separated roles.")]


def _roles(text: str, data: AdapterData) -> list[str]:
    roles = [r.strip() for r in text.split(",") if r.strip()]
    unknown = [r for r in roles if r not in data.roles]
    if unknown:
        raise UserError(f"no training data for role(s) {', '.join(unknown)}; roles: {', '.join(data.roles)}")
    return roles


def _adapter_dirs(root: Path) -> dict[str, Path]:
    found = {p.parent.name: p.parent for p in sorted(root.glob("*/adapter_config.json"))}
    if not found:
        raise UserError(f"no adapters under {root} (expected {root}/<role>/adapter_config.json)")
    return found


def adapter_ggufs(root: Path) -> dict[str, Path]:
    """Role -> its adapter in GGUF (`<root>/<role>.gguf`), converting those that are missing or
    older than their peft directory."""
    from rolegraph.models import adapters as A

    out = {}
    for role, d in _adapter_dirs(root).items():
        gguf = d.with_suffix(".gguf")
        newest = max(f.stat().st_mtime for f in d.iterdir())
        if not gguf.is_file() or gguf.stat().st_mtime < newest:
            err.print(f"converting {d} to {gguf}")
            A.convert_adapter(d, gguf)
        out[role] = gguf
    return out


def adapters_app(data: AdapterData) -> typer.Typer:
    """`rolegraph adapters train|report` for the roles `data` has examples of."""
    app = typer.Typer(no_args_is_help=True, help="Train and check LoRA adapters for the text roles (CPU).")

    def train(
        roles: RolesOpt = "planner,grounder,verifier",
        out_dir: Annotated[Path, typer.Option("--out", help="Adapters go to OUT/<role>/.")] = Path("adapters"),
        steps: Annotated[int, typer.Option(min=1, help="Optimiser steps per role (one example each).")] = 40,
        examples: Annotated[int, typer.Option(min=1, help="Distinct training examples per role.")] = 40,
        rank: Annotated[int, typer.Option(min=1)] = 8,
        lr: Annotated[float, typer.Option()] = 2e-3,
        seed: Annotated[int, typer.Option()] = 0,
    ) -> None:
        """Train one LoRA adapter per role on the embedded base model (SmolLM2-135M-Instruct) with
        peft on CPU, from role examples rendered with the graph's own prompts."""
        from rolegraph.models import adapters as A

        chosen = _roles(roles, data)
        err.print("loading the base model (converted once from the packaged GGUF, then cached)")
        model, tok = A.load_base()
        table = Table(title=f"LoRA adapters in {out_dir}", title_justify="left")
        for col in ("role", "steps", "first loss", "last loss", "seconds", "GGUF"):
            table.add_column(col, justify="left" if col in ("role", "GGUF") else "right")
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[loss]}"), TimeElapsedColumn(), console=err) as bar:
            for role in chosen:
                task = bar.add_task(role, total=steps, loss="")
                trained = A.train_adapter(
                    model, tok, data.examples(role, examples, seed=seed), out_dir / role, steps=steps, lr=lr,
                    rank=rank, seed=seed,
                    progress=lambda s, loss, t=task: bar.update(t, completed=s, loss=f"loss {loss:.3f}"))
                gguf = A.convert_adapter(out_dir / role)  # what llama-server loads
                table.add_row(role, str(trained.steps), f"{trained.losses[0]:.3f}", f"{trained.losses[-1]:.3f}",
                              f"{trained.seconds:.0f}", str(gguf))
        out.print(table)

    def convert(
        adapters: Annotated[Path, typer.Option(help="The directory `adapters train` wrote.")] = Path("adapters"),
    ) -> None:
        """Convert every peft adapter under ADAPTERS to GGUF (ADAPTERS/<role>.gguf) for llama-server."""
        for role, gguf in adapter_ggufs(adapters).items():
            out.print(f"{role}: {gguf}")

    def report(
        adapters: Annotated[Path, typer.Option(help="The directory `adapters train` wrote.")] = Path("adapters"),
        n: Annotated[int, typer.Option(min=1, help="Held-out examples per role.")] = 10,
    ) -> None:
        """Format validity per role on held-out examples, with its adapter and with the base alone."""
        from rolegraph.models import adapters as A
        from rolegraph.models.servers import EmbeddedConfig, EmbeddedServer

        ggufs = adapter_ggufs(adapters)
        server = EmbeddedServer(EmbeddedConfig(lora={k: str(v) for k, v in ggufs.items()}))
        try:
            generate = A.http_generate(server.ensure_started())
            result = A.format_report(generate, data, list(ggufs), base_name=server.config.alias,
                                     adapters=list(ggufs), n=n)
        finally:
            server.stop()
        table = Table(title=f"answers in the role's format ({n} held-out examples each)", title_justify="left")
        for col in ("role", "with its adapter", "base model"):
            table.add_column(col, justify="left" if col == "role" else "right")
        for role, row in result.items():
            table.add_row(role, f"{row.get('adapter', 0):.0%}", f"{row['base']:.0%}")
        out.print(table)
        (adapters / "format-report.json").write_text(json.dumps(result, indent=2))

    app.command("train")(train)
    app.command("convert")(convert)
    app.command("report")(report)
    return app


def serve_adapters(
    adapters: Annotated[Path, typer.Option(help="The directory `adapters train` wrote.")] = Path("adapters"),
    port: Annotated[int, typer.Option()] = 8078,
    host: HostOpt = "127.0.0.1",
    roles: RolesOpt = "planner,grounder,verifier,answerer",
    config_out: Annotated[Path, typer.Option("--config-out", help="Where to write the runtime config.")] = Path(
        "rolegraph.toml"),
) -> None:
    """Serve the base model with every adapter on one llama-server (a role's model name picks its
    adapter per request; the other roles get the base model) and write the config that binds
    roles to them."""
    from rolegraph.models.servers import EmbeddedConfig, EmbeddedServer
    from rolegraph.models.servers.vllm import VllmSpec, runtime_config

    ggufs = adapter_ggufs(adapters)
    server = EmbeddedServer(EmbeddedConfig(host=host, port=port, lora={k: str(v) for k, v in ggufs.items()}))

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        url = server.ensure_started()
        spec = VllmSpec(base=server.config.alias, loras={k: str(v) for k, v in ggufs.items()}, host=host,
                        port=server.port or port)
        config_out.write_text(runtime_config(spec, [r.strip() for r in roles.split(",") if r.strip()],
                                             endpoint="adapters").replace('dialect = "vllm"', 'dialect = "llama_server"'))
        err.print(f"serving {server.config.alias} + {', '.join(ggufs)} at {url}; config: {config_out} (Ctrl-C stops it)")
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
