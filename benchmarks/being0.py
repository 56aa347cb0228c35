"""Being-0 episodes per minute: with a scripted planner that knows each task's plan (so the
simulator, connector and recording overhead show), per ablation; then episodes with the embedded
model as the planner (constrained mode).

    .venv/bin/python benchmarks/being0.py [--episodes 5] [--real 2]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rolegraph import Runtime
from rolegraph.envs.being0 import PLANS, TASKS, scripted_planner
from rolegraph.evals.being0 import options_for
from rolegraph.graphs import being0
from rolegraph.models import FunctionModel


async def scripted(episodes: int, console: Console) -> None:
    table = Table(title="scripted planner (knows each plan; retries failed calls), all six tasks", title_justify="left")
    for col in ("agent", "episodes", "success", "sub-tasks", "efficiency", "planner steps", "skills", "episodes/min"):
        table.add_column(col, justify="left" if col == "agent" else "right")
    with tempfile.TemporaryDirectory() as tmp:
        for label, ablate in (("full", []), ("no active vision", ["active_vision"]),
                              ("no pose adjustment", ["pose_adjustment"])):
            options = options_for(ablate, max_steps=16)
            results = []
            t = time.perf_counter()
            for task in TASKS:
                for seed in range(episodes):
                    rt = Runtime.from_models({"planner": scripted_planner(PLANS[task]),
                                              "summarizer": FunctionModel(lambda r: "-")}, traces=Path(tmp) / label)
                    results.append(await being0.run(task, runtime=rt, seed=seed, options=options))
            elapsed = time.perf_counter() - t
            n = len(results)
            table.add_row(label, str(n), f"{sum(r.success for r in results) / n:.2f}",
                          f"{sum(r.subtasks_done / r.subtasks_total for r in results) / n:.2f}",
                          f"{sum(r.efficiency for r in results) / n:.2f}", f"{sum(r.steps for r in results) / n:.1f}",
                          f"{sum(r.skill_steps for r in results) / n:.0f}", f"{n / elapsed * 60:,.0f}")
    console.print(table)


async def real(episodes: int, console: Console) -> None:
    table = Table(title="embedded model as the planner (SmolLM2-135M, constrained mode, 8 planner steps)",
                  title_justify="left")
    for col in ("task", "seed", "success", "sub-tasks", "planner calls", "tokens", "seconds"):
        table.add_column(col, justify="left" if col == "task" else "right")
    with tempfile.TemporaryDirectory() as tmp:
        rt = Runtime.load(env={"ROLEGRAPH__TRACES__DIR": tmp, "ROLEGRAPH__MEMORY__DIR": tmp})
        try:
            for task in list(TASKS)[:episodes]:
                t = time.perf_counter()
                r = await being0.run(task, runtime=rt, seed=0, options=being0.Being0Options(constrained=True,
                                                                                             max_steps=8))
                table.add_row(task, "0", str(r.success), f"{r.subtasks_done}/{r.subtasks_total}", str(r.planner_calls),
                              str(r.prompt_tokens + r.completion_tokens), f"{time.perf_counter() - t:.0f}")
        finally:
            await rt.aclose()
            rt.close()
    console.print(table)


async def main(episodes: int, real_episodes: int) -> None:
    console = Console()
    await scripted(episodes, console)
    if real_episodes:
        await real(real_episodes, console)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=5, help="Scripted episodes per task and agent.")
    parser.add_argument("--real", type=int, default=2, help="Tasks to run with the embedded model (0: none).")
    args = parser.parse_args()
    asyncio.run(main(args.episodes, args.real))
