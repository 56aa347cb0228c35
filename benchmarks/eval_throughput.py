"""Eval runner throughput against a local OpenAI-compatible stub that answers after a fixed delay
(in its own process), at several concurrencies, next to two references measured in the same run:
the ideal (N x delay / concurrency) and the bare `openai` client (aiohttp transport) making the
same calls under a semaphore and nothing else. Then peak memory of the runner over 100,000 cases.

    .venv/bin/python benchmarks/eval_throughput.py [--cases 1000] [--delay 0.05] [--concurrency 1,16,64]
        [--trials 5] [--inspect /path/to/inspect-venv/bin/python]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import openai
from rich.console import Console
from rich.table import Table

from rolegraph import Runtime
from rolegraph.config import EndpointConfig, RoleConfig, RuntimeConfig
from rolegraph.evals import Benchmark, Case, EvalStore, Match, SolverOutput, run_eval
from rolegraph.models import ChatRequest, Message
from rolegraph.models.servers.embedded import free_port

SERVER = """
import asyncio, sys
from rolegraph.models.servers.loadtest import LoadTestServer
async def main():
    async with LoadTestServer(delay_s=float(sys.argv[2]), port=int(sys.argv[1])):
        print("ready", flush=True)
        await asyncio.Event().wait()
asyncio.run(main())
"""
MESSAGES = ({"role": "user", "content": "Answer briefly: which organelle makes ATP?"},)


class OneCall:
    """A solver that makes exactly one model call through the runtime."""

    async def __call__(self, case: Case, runtime: Runtime, *, repeat: int, seed: int) -> SolverOutput:
        r = await runtime.model("default").chat(ChatRequest(messages=(Message(role="user", content=MESSAGES[0]["content"]),),
                                                            max_tokens=8, seed=seed))
        return SolverOutput(output=r.text, prompt_tokens=r.usage.prompt_tokens, completion_tokens=r.usage.completion_tokens)


class Instant:
    async def __call__(self, case: Case, runtime: Runtime, *, repeat: int, seed: int) -> SolverOutput:
        return SolverOutput(output=case.input)


def bench(n: int, solver: object) -> Benchmark:
    def cases() -> Iterator[Case]:
        for i in range(n):
            yield Case(id=f"case-{i:06d}", input=i % 4, target=1, metadata={"category": f"c{i % 5}"})

    return Benchmark(name="throughput", cases=cases, solver=solver, scorers=[Match("accuracy")])  # type: ignore[arg-type]


async def bare(url: str, n: int, concurrency: int) -> float:
    client = openai.AsyncOpenAI(base_url=url, api_key="x", http_client=openai.DefaultAioHttpClient(), max_retries=0)
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with sem:
            await client.chat.completions.create(model="stub", messages=list(MESSAGES), max_tokens=8)  # type: ignore[arg-type]

    t = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    elapsed = time.perf_counter() - t
    await client.close()
    return elapsed


async def ours(url: str, n: int, concurrency: int, root: Path) -> float:
    config = RuntimeConfig(endpoints={"stub": EndpointConfig(base_url=url, dialect="openai")},
                           roles={"default": RoleConfig(endpoint="stub", model="stub")})
    runtime = Runtime(config)
    store = EvalStore(root / f"c{concurrency}" / "results.sqlite")
    t = time.perf_counter()
    summary = await run_eval(bench(n, OneCall()), runtime, store=store, concurrency=concurrency, progress=False)
    elapsed = time.perf_counter() - t
    await runtime.aclose()
    assert summary.ran == n and summary.errors == 0 and store.count() == n, summary
    return elapsed


MEMORY = """
import asyncio, resource, sys, time
sys.path.insert(0, sys.argv[3])
from eval_throughput import bench, Instant
from rolegraph import Runtime
from rolegraph.evals import EvalStore, run_eval
t = time.perf_counter()
s = asyncio.run(run_eval(bench(int(sys.argv[1]), Instant()), Runtime.from_models({}),
                         store=EvalStore(sys.argv[2]), concurrency=64, progress=False))
print(s.ran, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def inspect_run(python: str, url: str, n: int, concurrency: int) -> float:
    """Inspect AI on the same cases and server, in its own virtualenv (benchmarks/inspect_peer.py)."""
    out = subprocess.run([python, str(Path(__file__).parent / "inspect_peer.py"), "--url", url, "--cases", str(n),
                          "--concurrency", str(concurrency)], capture_output=True, text=True, check=True, timeout=900)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["wall_s"])


def _spread(values: list[float], fmt: str = "{:.2f}") -> str:
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


async def main(n: int, delay: float, levels: list[int], memory_cases: int, trials: int, inspect: str | None) -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(delay)], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    url = f"http://127.0.0.1:{port}/v1"
    table = Table(title=f"{n} single-call cases, server delay {delay * 1000:.0f} ms: median (range) of {trials} "
                        "alternating trials, each trial's arms in rotated order", title_justify="left")
    for col in ("concurrency", "ideal s", "bare openai s", "rolegraph s", "rolegraph / bare", "rolegraph / ideal",
                "CPU ms per case: bare", "rolegraph", *(("Inspect AI s", "rolegraph / Inspect") if inspect else ())):
        table.add_column(col, justify="right")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            await bare(url, 20, 4)  # warm up
            for c in levels:
                ideal = n * delay / c
                times: dict[str, list[float]] = {"bare": [], "ours": [], "inspect": []}
                cpu: dict[str, list[float]] = {"bare": [], "ours": []}
                ratios: list[float] = []
                for trial in range(trials):
                    arms = ["bare", "ours", *(["inspect"] if inspect else [])]
                    arms = arms[trial % len(arms):] + arms[: trial % len(arms)]  # no arm always goes first
                    for arm in arms:
                        cpu0 = time.process_time()
                        if arm == "bare":
                            times[arm].append(await bare(url, n, c))
                        elif arm == "ours":
                            times[arm].append(await ours(url, n, c, Path(tmp) / f"t{trial}"))
                        else:
                            assert inspect is not None
                            times[arm].append(inspect_run(inspect, url, n, c))
                        if arm in cpu:
                            cpu[arm].append((time.process_time() - cpu0) / n * 1000)
                    ratios.append(times["bare"][-1] / times["ours"][-1])  # paired within the trial
                row = [str(c), f"{ideal:.2f}", _spread(times["bare"]), _spread(times["ours"]), _spread(ratios),
                       f"{ideal / statistics.median(times['ours']):.2f}", _spread(cpu["bare"]), _spread(cpu["ours"])]
                if inspect:
                    row += [_spread(times["inspect"]),
                            _spread([i / o for i, o in zip(times["inspect"], times["ours"], strict=True)], "{:.1f}")]
                table.add_row(*row)
    finally:
        server.terminate()
        server.wait()
    console = Console()
    console.print(table)
    console.print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", MEMORY, str(memory_cases), str(Path(tmp) / "m" / "results.sqlite"),
                              str(Path(__file__).parent)], capture_output=True, text=True, check=True)
    ran, secs, rss = out.stdout.split()
    mem = Table(title="runner memory, instant solver", title_justify="left")
    for col in ("cases", "seconds", "cases/s", "peak RSS MiB"):
        mem.add_column(col, justify="right")
    mem.add_row(ran, f"{float(secs):.1f}", f"{int(ran) / float(secs):,.0f}", f"{float(rss):.0f}")
    console.print(mem)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--cases", type=int, default=1000)
    p.add_argument("--delay", type=float, default=0.05)
    p.add_argument("--concurrency", default="1,16,64")
    p.add_argument("--memory-cases", type=int, default=100_000)
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--inspect", metavar="PYTHON", help="A Python with inspect_ai installed (its own virtualenv): "
                                                      "adds Inspect AI on the same cases and server")
    a = p.parse_args()
    asyncio.run(main(a.cases, a.delay, [int(x) for x in a.concurrency.split(",")], a.memory_cases, a.trials, a.inspect))
