"""VideoMind costs: frames decoded and sampled per second (PyAV), per-role latency on the embedded
server, and the memory of one base model with three LoRA adapters against three separate models.

    .venv/bin/python benchmarks/videomind.py [--questions 2] [--no-adapters]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rolegraph import Runtime
from rolegraph.envs.videomind import load_jsonl, synthetic_benchmark
from rolegraph.graphs import videomind as vm
from rolegraph.tools.video import ROLE_SAMPLING, Scene, describe_frames, sample_frames, write_synthetic_video
from rolegraph.traces import ModelCall, TraceStore


def decoding(console: Console, tmp: Path) -> None:
    video = tmp / "long.mp4"
    scenes = [Scene(seconds=15, colour=c, shape="circle" if i % 2 else None)
              for i, c in enumerate(["red", "blue", "green", "yellow"])]
    write_synthetic_video(video, scenes, fps=25, size=(320, 240))
    table = Table(title="frame sampling on a 60 s, 25 fps, 320x240 video (PyAV decode + resize to 224)",
                  title_justify="left")
    for col in ("role", "fps / cap", "frames", "seconds", "frames/s", "video s/s", "+ description s"):
        table.add_column(col, justify="left" if col == "role" else "right")
    for role, (fps, cap) in ROLE_SAMPLING.items():
        t = time.perf_counter()
        frames = sample_frames(video, role=role)
        took = time.perf_counter() - t
        t = time.perf_counter()
        describe_frames(frames)
        described = time.perf_counter() - t
        table.add_row(role, f"{fps:g} / {cap}", str(len(frames)), f"{took:.2f}", f"{len(frames) / took:.0f}",
                      f"{60 / took:.0f}", f"{described:.3f}")
    console.print(table)


async def latency(console: Console, tmp: Path, questions: int) -> None:
    items = list(load_jsonl(synthetic_benchmark(tmp / "syn", n=questions)))
    rt = Runtime.load(env={"ROLEGRAPH__TRACES__DIR": str(tmp / "runs")})
    per_role: dict[str, list[float]] = {}
    try:
        for it in items:
            r = await vm.run(vm.VideoQuestion(video=it.video, question=it.question or "", options=it.options),
                             runtime=rt)
            assert r.run_id is not None  # the runtime keeps traces
            for call in TraceStore(tmp / "runs").load(r.run_id).of_kind(ModelCall):
                if call.response is not None:
                    per_role.setdefault(call.role, []).append(call.response.latency_s)
    finally:
        await rt.aclose()
        rt.close()
    table = Table(title=f"per-role latency, embedded server, {questions} questions", title_justify="left")
    for col in ("role", "calls", "median s", "max s"):
        table.add_column(col, justify="left" if col == "role" else "right")
    for role in vm.ROLES:
        v = per_role.get(role, [])
        table.add_row(role, str(len(v)), f"{statistics.median(v):.2f}" if v else "-", f"{max(v):.2f}" if v else "-")
    console.print(table)


def adapter_memory(console: Console, tmp: Path) -> None:
    from rolegraph.models import adapters as A

    model, tok = A.load_base()
    base_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    for role in ("planner", "grounder", "verifier"):
        A.train_adapter(model, tok, vm.role_examples(role, 2), tmp / "adapters" / role, steps=1)
    served = A.AdapterModels(None, {r: tmp / "adapters" / r for r in ("planner", "grounder", "verifier")})
    total = sum(p.numel() * p.element_size() for p in served.model.parameters())
    adapters_bytes = total - base_bytes
    table = Table(title="weights in memory: one base + 3 LoRA adapters (rank 8, q/k/v/o) vs 3 separate models",
                  title_justify="left")
    for col in ("setup", "MiB"):
        table.add_column(col, justify="left" if col == "setup" else "right")
    table.add_row("base model (float32)", f"{base_bytes / 2**20:.0f}")
    table.add_row("+ 3 adapters", f"{total / 2**20:.1f} (adapters {adapters_bytes / 2**20:.1f})")
    table.add_row("3 separate fine-tuned models", f"{3 * base_bytes / 2**20:.0f}")
    console.print(table)


async def main(questions: int, adapters: bool) -> None:
    console = Console()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        decoding(console, tmp)
        if questions:
            await latency(console, tmp, questions)
        if adapters:
            adapter_memory(console, tmp)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=2)
    parser.add_argument("--no-adapters", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.questions, not args.no_adapters))
