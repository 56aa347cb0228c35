"""Disk footprint of an evaluation per case: an MCQ-shaped evaluation of N single-call cases answered
by a FunctionModel, then its report with one trace page per case. Prints bytes per case for the
trace events, checkpoints, results store and case pages, with the pages written the old way (each one
self-contained, mermaid inlined) next to the report's way (one shared `report/assets/mermaid.min.js`).

    .venv/bin/python benchmarks/disk.py [--cases 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rolegraph import Runtime
from rolegraph.evals import MAX_CASE_ROWS, EvalStore, run_eval, write_report
from rolegraph.evals.mcq import mcq_benchmark
from rolegraph.models import FunctionModel
from rolegraph.traces import Trace, write_view

QUESTION = {"question": "A confocal image of HeLa cells stained with DAPI shows folded nuclear rings. Why?",
            "choices": ["Mitochondrial fragmentation", "Normal interphase", "Lamin A mutation", "Overexposure"],
            "correct_index": 2}


def size(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths if p.is_file())


def with_4k_pages(db: Path, scratch: Path) -> int:
    """The size the checkpoint file had before 1 KiB pages: the same rows rewritten with SQLite's default."""
    copy = scratch / "ck.sqlite"
    shutil.copyfile(db, copy)
    conn = sqlite3.connect(copy)
    conn.execute("PRAGMA journal_mode = delete")
    conn.execute("PRAGMA page_size = 4096")
    conn.execute("VACUUM")
    conn.close()
    return copy.stat().st_size


async def evaluate(root: Path, n: int) -> EvalStore:
    data = root / "mcqs.jsonl"
    data.write_text("".join(json.dumps({"key_question": f"q{i:06d}", **QUESTION}) + "\n" for i in range(n)))
    runtime = Runtime.from_models({"default": FunctionModel(lambda req: "Reasoning. The answer is (c)")},
                                  traces=root / "runs")
    store = EvalStore(root / "eval" / "results.sqlite")
    summary = await run_eval(mcq_benchmark(data), runtime, store=store, concurrency=8, progress=False)
    assert summary.ran == n and summary.errors == 0, summary
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200, help=f"at most {MAX_CASE_ROWS} (the report's page limit)")
    args = parser.parse_args()
    n = min(args.cases, MAX_CASE_ROWS)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = asyncio.run(evaluate(root, n))
        runs = [p for p in (root / "runs").iterdir() if p.is_dir()]
        events = size([p / "events.jsonl" for p in runs])
        payloads = size([f for p in runs for f in p.rglob("*") if f.parent != p])
        checkpoints = size([p / "checkpoints.sqlite" for p in runs])
        checkpoints_4k = sum(with_4k_pages(p / "checkpoints.sqlite", root) for p in runs)
        results = size(list((root / "eval").glob("results.sqlite*")))
        before = size([write_view(Trace.load(p)) for p in runs])  # the old way: self-contained per case
        report = write_report(store).parent
        pages = size(list((report / "traces").glob("*.html")))
        assets = size(list((report / "assets").iterdir()))
        index = size([report / "report.html", report / "report.json"])

    table = Table(title=f"disk per case, {n} single-call MCQ cases (bytes)")
    for col in ("part", "before", "after"):
        table.add_column(col, justify="left" if col == "part" else "right")
    rows = [("events.jsonl", events, events), ("payload blobs", payloads, payloads),
            ("checkpoints.sqlite", checkpoints_4k, checkpoints), ("results.sqlite (share)", results, results),
            ("case page", before, pages), ("shared assets (share)", 0, assets),
            ("report.html + .json (share)", index, index)]
    for part, b, a in rows:
        table.add_row(part, f"{b / n:,.0f}", f"{a / n:,.0f}")
    total_b = sum(b for _, b, _ in rows) - events
    total_a = sum(a for _, _, a in rows) - events - assets  # the shared copy is paid once, not per case
    table.add_row("[b]beyond events[/b]", f"[b]{total_b / n:,.0f}[/b]", f"[b]{total_a / n:,.0f}[/b] + {assets:,} once")
    Console().print(table)
    print(f"100,000 cases beyond events: before {total_b / n * 1e5 / 1e9:.1f} GB, after "
          f"{(total_a / n * 1e5 + assets) / 1e9:.2f} GB (a report writes at most {MAX_CASE_ROWS} case pages)")


if __name__ == "__main__":
    main()
