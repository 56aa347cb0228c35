"""The embedded model server on the demo's workload: llama-cpp-python's Python server (the embedded
default before llama-server) against llama.cpp's own llama-server at --parallel 1, 2 and 4.

The workload is `make demo`'s: RefineBot on the sample MCQs, two seeds each, four runs in flight
(`rolegraph run refinebot`'s default concurrency), with the embedded SmolLM2-135M. Every server is
started before the first trial (start-up is not timed), and the trials alternate: each round runs
every server once, in a rotated order. Each round's questions carry their own tag, so that no
server's prompt cache answers a prompt it saw in an earlier round. Run it on an otherwise idle
machine (the servers use both cores):

    .venv/bin/python benchmarks/embedded_server.py                  # 6 questions x 2 seeds, 3 rounds
    .venv/bin/python benchmarks/embedded_server.py --questions 22   # the whole demo (44 runs)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rolegraph import Runtime
from rolegraph.config import EndpointConfig, RoleConfig, RuntimeConfig
from rolegraph.envs.mcq import load_mcqs
from rolegraph.graphs import refinebot
from rolegraph.models.servers import EmbeddedConfig, EmbeddedServer

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [("llama-cpp-python server", "llama-cpp-python", 1), ("llama-server --parallel 1", "llama-server", 1),
           ("llama-server --parallel 2", "llama-server", 2), ("llama-server --parallel 4", "llama-server", 4)]


async def one_trial(url: str, mcqs: list, tag: str, concurrency: int) -> tuple[float, int, int]:
    """Wall seconds, completion tokens and runs that ended in an error."""
    config = RuntimeConfig(endpoints={"local": EndpointConfig(base_url=url)},
                           roles={"default": RoleConfig(endpoint="local", model="smollm2-135m")},
                           traces={"enabled": False})
    runtime = Runtime(config)
    tagged = [m.model_copy(update={"question": f"{m.question} [{tag}]"}) for m in mcqs]
    tokens = errors = 0
    started = time.perf_counter()
    try:
        async for result in refinebot.run_many(tagged, runtime=runtime, seeds=[0, 1], concurrency=concurrency):
            tokens += result.completion_tokens
            errors += result.status == "error"  # an ERROR exit code, or a run that raised (a RunFailure)
    finally:
        await runtime.aclose()
    return time.perf_counter() - started, tokens, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    console = Console(width=150)
    mcqs = list(load_mcqs(ROOT / "examples" / "data" / "microscopy_mcqs.jsonl"))[:args.questions]
    servers = [EmbeddedServer(EmbeddedConfig(engine=engine, parallel=slots)) for _, engine, slots in CONFIGS]  # type: ignore[arg-type]
    walls: dict[str, list[float]] = {name: [] for name, _, _ in CONFIGS}
    rates: dict[str, list[float]] = {name: [] for name, _, _ in CONFIGS}
    errors: dict[str, int] = dict.fromkeys(walls, 0)
    try:
        urls = [s.ensure_started() for s in servers]
        for r in range(args.rounds):
            order = list(range(len(CONFIGS)))
            order = order[r % len(order):] + order[:r % len(order)]
            for i in order:
                name = CONFIGS[i][0]
                wall, tokens, failed = asyncio.run(one_trial(urls[i], mcqs, f"round {r}", args.concurrency))
                walls[name].append(wall)
                rates[name].append(tokens / wall)
                errors[name] += failed
                console.print(f"round {r + 1}/{args.rounds} {name}: {wall:.1f} s, {tokens / wall:.0f} tok/s"
                              + (f", {failed} errored runs" if failed else ""))
    finally:
        for s in servers:
            s.stop()
    ref = statistics.median(walls[CONFIGS[0][0]])
    ref_rate = statistics.median(rates[CONFIGS[0][0]])
    table = Table(title=f"RefineBot demo workload: {len(mcqs)} questions x 2 seeds, {args.concurrency} in flight, "
                        f"medians of {args.rounds} alternating rounds", title_justify="left")
    for col in ("server", "wall s (range)", "speed-up", "completion tok/s (range)", "vs first", "errored runs"):
        table.add_column(col, justify="left" if col == "server" else "right")
    for name, _, _ in CONFIGS:
        w, t = walls[name], rates[name]
        table.add_row(name, f"{statistics.median(w):.1f} ({min(w):.1f}-{max(w):.1f})",
                      f"{ref / statistics.median(w):.2f}x",
                      f"{statistics.median(t):.0f} ({min(t):.0f}-{max(t):.0f})",
                      f"{statistics.median(t) / ref_rate:.2f}x", str(errors[name]))
    console.print(table)


if __name__ == "__main__":
    main()
