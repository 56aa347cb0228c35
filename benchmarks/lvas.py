"""LVAS-Agent stage speeds: seconds of video processed per second, per graph stage, on the embedded
default model, over generated videos with known cuts; plus the shot, label, coverage and alignment
scores of the same runs.

    .venv/bin/python benchmarks/lvas.py [--videos 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from collections import defaultdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rolegraph import Runtime
from rolegraph.envs.lvas import load_labels
from rolegraph.evals.lvas import alignment_errors_ms, synthetic_videos
from rolegraph.graphs import lvas
from rolegraph.tools.shots import Shot, boundary_scores
from rolegraph.traces import NodeFinished, TraceStore


async def main(n: int) -> None:
    console = Console()
    families = {s.label: s.family for s in load_labels()}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        videos = synthetic_videos(tmp / "videos", n=n)
        rt = Runtime.load(env={"ROLEGRAPH__TRACES__DIR": str(tmp / "runs"), "ROLEGRAPH__MEMORY__DIR": str(tmp / "mem")})
        stage_s: dict[str, float] = defaultdict(float)
        video_s = 0.0
        rows = []
        try:
            for path, spans in videos:
                r = await lvas.run(path, tmp / "out" / path.stem, runtime=rt)
                video_s += r.duration
                assert r.run_id is not None  # the runtime keeps traces
                for e in TraceStore(tmp / "runs").load(r.run_id).of_kind(NodeFinished):
                    stage_s[e.node] += e.duration_s
                p, rec = boundary_scores([Shot(start=s, end=e) for s, e in r.shots], spans)
                script = json.loads(Path(r.outputs["script"]).read_text())
                errors = alignment_errors_ms(script, families)
                valid = sum(label in families for label in r.labels) / max(1, len(r.labels))
                covered = sum(bool(s.design and s.design.background) for s in r.segments) / max(1, len(r.segments))
                rows.append((path.name, r.duration, p, rec, len(r.segments), r.rounds, valid, covered,
                             max(errors, default=0.0)))
        finally:
            await rt.aclose()
            rt.close()
    table = Table(title=f"LVAS stages on {video_s:.0f} s of video (embedded model)", title_justify="left")
    for col in ("stage", "seconds", "video s per s"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for stage, secs in stage_s.items():
        table.add_row(stage, f"{secs:.1f}", f"{video_s / secs:.2f}" if secs else "-")
    table.add_row("all", f"{sum(stage_s.values()):.1f}", f"{video_s / sum(stage_s.values()):.2f}")
    console.print(table)
    scores = Table(title="scores per video", title_justify="left")
    for col in ("video", "s", "shot P", "shot R", "segments", "rounds", "labels valid", "coverage", "worst onset ms"):
        scores.add_column(col, justify="left" if col == "video" else "right")
    for row in rows:
        scores.add_row(row[0], f"{row[1]:.0f}", *(f"{x:.2f}" for x in row[2:4]), str(row[4]), str(row[5]),
                       *(f"{x:.2f}" for x in row[6:]))
    console.print(scores)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=2)
    asyncio.run(main(parser.parse_args().videos))
