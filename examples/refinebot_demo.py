"""Refine one sample MCQ with RefineBot on whatever `Runtime.load()` finds (the embedded CPU model
by default) and print what happened at each iteration.

    .venv/bin/python examples/refinebot_demo.py [N]
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

from rolegraph import Runtime
from rolegraph.envs.mcq import load_mcqs
from rolegraph.graphs import refinebot

DATA = Path(__file__).parent / "data" / "microscopy_mcqs.jsonl"


def main(index: int = 0) -> None:
    mcq = next(itertools.islice(load_mcqs(DATA), index, None))
    with Runtime.load() as rt:
        result = refinebot.run_sync(mcq, runtime=rt, seed=0)
    print(f"{mcq.key}: {result.exit_code} after {result.iterations} iteration(s)")
    if result.state is not None:
        for i, evals in enumerate(result.state.evaluations):
            picks = ", ".join("none" if e.pred_index is None else "abcdefghijk"[e.pred_index] for e in evals)
            print(f"  iteration {i}: evaluator picked {picks} (correct: {'abcdefghijk'[mcq.correct_index]})")
    print("final question:", result.output.question)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
