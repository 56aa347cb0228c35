"""Evaluate the no-image MCQ benchmark from Python on whatever `Runtime.load()` finds (the
embedded CPU model by default), then write the HTML report.

    .venv/bin/python examples/eval_mcq.py [N]
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from rolegraph import Runtime
from rolegraph.evals import EvalStore, run_eval, write_report
from rolegraph.evals.mcq import mcq_benchmark

DATA = Path(__file__).parent / "data" / "microscopy_mcqs.jsonl"


async def main(limit: int) -> None:
    with Runtime.load() as runtime:
        store = EvalStore(Path("evals") / "example-mcq" / "results.sqlite")
        summary = await run_eval(mcq_benchmark(DATA), runtime, store=store, concurrency=2, limit=limit,
                                 resume=True)
        await runtime.aclose()
    print(f"{summary.ran} new results ({summary.skipped} already there); report: {write_report(store)}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5))
