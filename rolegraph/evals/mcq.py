"""The MicroVQA-style MCQ benchmark: each question answered with chain-of-thought and scored by
accuracy, in no-image variants that measure language shortcuts (the question as given, the
choices only, the last sentence only), optionally under a robustness transform."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolegraph.envs.mcq import MCQ, load_mcqs
from rolegraph.evals._core import Benchmark, Case, Match, Score
from rolegraph.evals._store import EvalStore
from rolegraph.evals.transforms import Paraphrase, Transform, apply
from rolegraph.graphs import mcq as mcq_graph

VARIANTS = ("question", "choices_only", "last_sentence")
CHOICES_ONLY_STEM = "Which of the following options is correct?"


def last_sentence(text: str) -> str:
    """The stem's last sentence (MicroVQA's shortcut probe keeps only the question itself)."""
    parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+", text.strip()) if p.strip()]
    return parts[-1] if parts else text


def variant(mcq: MCQ, name: str) -> MCQ:
    if name == "question":
        return mcq
    if name == "choices_only":
        return mcq.model_copy(update={"question": CHOICES_ONLY_STEM})
    if name == "last_sentence":
        return mcq.model_copy(update={"question": last_sentence(mcq.question)})
    raise ValueError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")


def mcq_solver(options: mcq_graph.MCQOptions) -> Any:
    """The one-node MCQ graph per case (recorded); the predicted index is scored."""
    return mcq_graph.mcq.solver(options=options, output=lambda answer: answer.pred_index)


def mcq_benchmark(data: str | Path, *, variant_name: str = "question", transform: Transform | None = None,
                  seed: int = 0, options: mcq_graph.MCQOptions | None = None) -> Benchmark:
    """The benchmark over the MCQs in `data` (JSONL or MicroVQA CSV)."""
    if variant_name not in VARIANTS:
        raise ValueError(f"unknown variant {variant_name!r}; known: {', '.join(VARIANTS)}")
    paraphrase = isinstance(transform, Paraphrase)
    options = (options or mcq_graph.MCQOptions()).model_copy(update={"paraphrase": paraphrase})
    static = None if paraphrase else transform

    def cases() -> Iterator[Case]:
        for original in load_mcqs(data):
            m = variant(original, variant_name)
            if static is not None:
                m = apply(static, m, seed)
            yield Case(id=original.key, input=m, target=m.correct_index,
                       metadata={"category": str(original.metadata.get("category", original.metadata.get(
                           "use_case", ""))), "variant": variant_name,
                                 "transform": transform.name if transform else "clean"})

    name = f"mcq-{variant_name}" + (f"-{transform.name}" if transform else "")
    return Benchmark(name=name, cases=cases, solver=mcq_solver(options), scorers=[Match("accuracy")],
                     config={"data": str(data), "variant": variant_name,
                             "transform": repr(transform) if transform else None, "options": options.model_dump()})


def refine_solver(options: Any = None) -> Any:
    """RefineBot on a case; the exit code and the final MCQ are scored."""
    from rolegraph.graphs import refinebot

    return refinebot.refinebot.solver(options=options, output=lambda result: {
        "exit_code": result.exit_code.value, "final": result.final.model_dump(mode="json")})


@dataclass(frozen=True)
class ExitCodeScorer:
    """1.0 when RefineBot ended in success (the question no longer answerable without the image)."""

    name: str = "refined"

    async def __call__(self, case: Case, output: Any) -> Score:
        code = output["exit_code"]
        return Score(value=1.0 if code.startswith("SUCCESS") else 0.0, explanation=code, metadata={"exit_code": code})


def refine_benchmark(data: str | Path, *, options: Any = None) -> Benchmark:
    """RefineBot over every MCQ in `data` (MicroVQA's --refine stage)."""

    def cases() -> Iterator[Case]:
        for m in load_mcqs(data):
            yield Case(id=m.key, input=m, target=None)

    solver = refine_solver(options)
    return Benchmark(name="refinebot", cases=cases, solver=solver, scorers=[ExitCodeScorer()],
                     config={"data": str(data), "options": solver.options.model_dump()})


def refined_mcq_benchmark(refined: EvalStore, *, data: str | Path) -> Benchmark:
    """The no-image MCQ benchmark over RefineBot's final questions (the original where it failed)."""

    def cases() -> Iterator[Case]:
        for r in refined.records():
            if r.status == "ok" and r.repeat == 0:
                m = MCQ.model_validate(r.output["final"])
                yield Case(id=r.case_id, input=m, target=m.correct_index,
                           metadata={"category": r.output["exit_code"], "variant": "refined"})

    return Benchmark(name="mcq-refined", cases=cases, solver=mcq_solver(mcq_graph.MCQOptions()),
                     scorers=[Match("accuracy")], config={"data": str(data), "variant": "refined"})
