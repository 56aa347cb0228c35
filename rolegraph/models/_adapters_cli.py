"""`rolegraph adapters train|report` and `rolegraph serve adapters`: Chain-of-LoRA on CPU. The
train and report commands are made for one graph's AdapterData (the CLI passes VideoMind's)."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

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
        for col in ("role", "steps", "first loss", "last loss", "seconds"):
            table.add_column(col, justify="left" if col == "role" else "right")
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[loss]}"), TimeElapsedColumn(), console=err) as bar:
            for role in chosen:
                task = bar.add_task(role, total=steps, loss="")
                trained = A.train_adapter(
                    model, tok, data.examples(role, examples, seed=seed), out_dir / role, steps=steps, lr=lr,
                    rank=rank, seed=seed,
                    progress=lambda s, loss, t=task: bar.update(t, completed=s, loss=f"loss {loss:.3f}"))
                table.add_row(role, str(trained.steps), f"{trained.losses[0]:.3f}", f"{trained.losses[-1]:.3f}",
                              f"{trained.seconds:.0f}")
        out.print(table)

    def report(
        adapters: Annotated[Path, typer.Option(help="The directory `adapters train` wrote.")] = Path("adapters"),
        n: Annotated[int, typer.Option(min=1, help="Held-out examples per role.")] = 10,
    ) -> None:
        """Format validity per role on held-out examples, with its adapter and with the base alone."""
        from rolegraph.models import adapters as A

        dirs = _adapter_dirs(adapters)
        models = A.AdapterModels(None, {k: str(v) for k, v in dirs.items()})
        result = A.format_report(models, data, list(dirs), n=n)
        table = Table(title=f"answers in the role's format ({n} held-out examples each)", title_justify="left")
        for col in ("role", "with its adapter", "base model"):
            table.add_column(col, justify="left" if col == "role" else "right")
        for role, row in result.items():
            table.add_row(role, f"{row.get('adapter', 0):.0%}", f"{row['base']:.0%}")
        out.print(table)
        (adapters / "format-report.json").write_text(json.dumps(result, indent=2))

    app.command("train")(train)
    app.command("report")(report)
    return app


def serve_adapters(
    adapters: Annotated[Path, typer.Option(help="The directory `adapters train` wrote.")] = Path("adapters"),
    port: Annotated[int, typer.Option()] = 8078,
    host: Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 unless you mean it.")] = "127.0.0.1",
    roles: RolesOpt = "planner,grounder,verifier,answerer",
    config_out: Annotated[Path, typer.Option("--config-out", help="Where to write the runtime config.")] = Path(
        "rolegraph.toml"),
) -> None:
    """Serve the base model and every adapter on one OpenAI-compatible endpoint (the model name
    picks the adapter; 'base' is the base model) and write the config that binds roles to them."""
    from rolegraph.models import adapters as A
    from rolegraph.models.servers.vllm import VllmSpec, runtime_config

    dirs = _adapter_dirs(adapters)
    models = A.AdapterModels(None, {k: str(v) for k, v in dirs.items()})

    async def main() -> None:
        async with A.AdapterServer(models, host=host, port=port) as server:
            spec = VllmSpec(base="base", loras={k: str(v) for k, v in dirs.items()}, host=host, port=server.port)
            config_out.write_text(runtime_config(spec, [r.strip() for r in roles.split(",") if r.strip()],
                                                 endpoint="adapters").replace('dialect = "vllm"', 'dialect = "openai"'))
            err.print(f"serving base + {', '.join(dirs)} at {server.base_url}; config: {config_out} (Ctrl-C stops it)")
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGTERM, stop.set)
            loop.add_signal_handler(signal.SIGINT, stop.set)
            await stop.wait()

    asyncio.run(main())
