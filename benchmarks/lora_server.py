"""Chain-of-LoRA on one llama-server: memory of one base model with N LoRA adapters against N
servers with one adapter each, and format validity per role with and without its adapter.

The adapters are VideoMind's text roles (planner, grounder, verifier), trained with peft on the
embedded base (SmolLM2-135M-Instruct) and converted to GGUF with llama.cpp's converter, as
`rolegraph adapters train` does. Memory is each server's resident set (llama-server's own process,
after it has answered one request with every adapter it holds). Validity is `rolegraph adapters
report`'s measure: held-out examples answered in the role's format, greedy.

    .venv/bin/python benchmarks/lora_server.py [--steps 40] [--examples 10]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import psutil
from rich.console import Console
from rich.table import Table

from rolegraph.graphs import videomind as vm
from rolegraph.models import adapters as A
from rolegraph.models.servers import EmbeddedConfig, EmbeddedServer

ROLES = ("planner", "grounder", "verifier")


def server_rss(server: EmbeddedServer) -> int:
    """Resident bytes of the model server itself (the child of the watchdog process)."""
    assert server.pid is not None
    return sum(p.memory_info().rss for p in psutil.Process(server.pid).children(recursive=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--examples", type=int, default=10, help="held-out examples per role")
    args = parser.parse_args()
    console = Console(width=150)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        model, tok = A.load_base()
        ggufs: dict[str, str] = {}
        started = time.perf_counter()
        for role in ROLES:
            A.train_adapter(model, tok, vm.role_examples(role, 40), tmp / role, steps=args.steps, seed=0)
            ggufs[role] = str(A.convert_adapter(tmp / role))
        console.print(f"trained and converted {len(ROLES)} adapters in {time.perf_counter() - started:.0f} s")

        def warm(server: EmbeddedServer, names: list[str]) -> None:
            generate = A.http_generate(server.ensure_started())
            for name in names:
                generate(name, [{"role": "user", "content": "hello"}], 4)

        memory = Table(title="llama-server resident memory", title_justify="left")
        for col in ("setup", "servers", "MiB"):
            memory.add_column(col, justify="left" if col == "setup" else "right")
        base = EmbeddedServer(EmbeddedConfig(parallel=4))
        one = EmbeddedServer(EmbeddedConfig(parallel=4, lora=ggufs))
        each = [EmbeddedServer(EmbeddedConfig(parallel=4, lora={r: ggufs[r]})) for r in ROLES]
        try:
            warm(base, [base.config.alias])
            warm(one, [*ROLES, one.config.alias])
            for r, s in zip(ROLES, each, strict=True):
                warm(s, [r])
            memory.add_row("base model alone", "1", f"{server_rss(base) / 2**20:.0f}")
            memory.add_row(f"one base + {len(ROLES)} adapters (per request)", "1", f"{server_rss(one) / 2**20:.0f}")
            memory.add_row(f"{len(ROLES)} servers, one adapter each", str(len(ROLES)),
                           f"{sum(server_rss(s) for s in each) / 2**20:.0f}")
        finally:
            for s in (base, *each):
                s.stop()
        try:
            generate = A.http_generate(one.ensure_started())
            report = A.format_report(generate, vm.ADAPTER_DATA, list(ROLES), base_name=one.config.alias,
                                     adapters=list(ROLES), n=args.examples)
        finally:
            one.stop()
    console.print(memory)
    table = Table(title=f"answers in the role's format ({args.examples} held-out examples each, one llama-server)",
                  title_justify="left")
    for col in ("role", "with its adapter", "base model"):
        table.add_column(col, justify="left" if col == "role" else "right")
    for role, row in report.items():
        table.add_row(role, f"{row.get('adapter', 0):.0%}", f"{row['base']:.0%}")
    console.print(table)


if __name__ == "__main__":
    main()
