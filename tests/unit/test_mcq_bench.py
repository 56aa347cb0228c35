"""The MCQ benchmark: no-image variants, the model-based paraphrase, and the --refine pipeline,
on scripted models."""

from __future__ import annotations

from pathlib import Path

from rolegraph import Runtime
from rolegraph.envs.mcq import MCQ
from rolegraph.evals import EvalStore, run_eval
from rolegraph.evals.mcq import (
    CHOICES_ONLY_STEM,
    last_sentence,
    mcq_benchmark,
    refine_benchmark,
    refined_mcq_benchmark,
    variant,
)
from rolegraph.evals.transforms import parse_transforms
from rolegraph.models import ChatRequest, FunctionModel
from tests.conftest import SAMPLE_MCQS

Q = MCQ(key="k", question="Cells were stained with DAPI. Nuclei look fragmented. What process is this?",
        choices=["Apoptosis", "Mitosis"], correct_index=0)


def test_variants() -> None:
    assert last_sentence(Q.question) == "What process is this?"
    assert variant(Q, "last_sentence").question == "What process is this?"
    assert variant(Q, "choices_only").question == CHOICES_ONLY_STEM
    assert variant(Q, "question") is Q


def always(letter: str):  # type: ignore[no-untyped-def]
    def answer(request: ChatRequest) -> object:
        fields = set((request.response_schema or {}).get("properties", {}))
        if "question_stem" in fields:
            return {"question_stem": "Reworded stem?", "choices": ["x", "y", "z", "w"], "correct_index": 2,
                    "explanation": "e"}
        if "is_equivalent" in fields:
            return {"is_equivalent": True, "explanation": "same"}
        if fields == {"question"}:
            return {"question": "A reworded stem about stained nuclei?"}
        last = request.messages[-1].content or ""
        return "Strategies: matching words." if last.startswith("That is correct") else f"The answer is ({letter})"

    return answer


async def test_choices_only_variant_reaches_the_model(tmp_path: Path) -> None:
    model = FunctionModel(always("a"))
    rt = Runtime.from_models({"default": model})
    store = EvalStore(tmp_path / "r" / "results.sqlite")
    await run_eval(mcq_benchmark(SAMPLE_MCQS, variant_name="choices_only"), rt, store=store, limit=3, progress=False)
    assert all(CHOICES_ONLY_STEM in (r.messages[-1].content or "") for r in model.requests)
    assert [r.output for r in store.records()] == [0, 0, 0]


async def test_paraphrase_transform_rewords_the_stem_first(tmp_path: Path) -> None:
    model = FunctionModel(always("a"))
    rt = Runtime.from_models({"default": model}, traces=tmp_path / "runs")
    (t,) = parse_transforms("paraphrase")
    store = EvalStore(tmp_path / "p" / "results.sqlite")
    await run_eval(mcq_benchmark(SAMPLE_MCQS, transform=t), rt, store=store, limit=2, progress=False)
    answered = [r for r in model.requests if r.response_schema is None]
    assert len(answered) == 2 and all("A reworded stem about stained nuclei?" in (r.messages[-1].content or "")
                                      for r in answered)
    assert all(r.run_id for r in store.records())  # each case is a recorded run


async def test_refine_pipeline(tmp_path: Path) -> None:
    rt = Runtime.from_models({"default": FunctionModel(always("b"))})
    refined_store = EvalStore(tmp_path / "refinebot" / "results.sqlite")
    await run_eval(refine_benchmark(SAMPLE_MCQS), rt, store=refined_store, limit=4, progress=False)
    codes = [r.output["exit_code"] for r in refined_store.records()]
    assert len(codes) == 4 and set(codes) <= {"SUCCESS_NO_CHANGE", "SUCCESS_REWRITE", "FAIL_ITERATIONS"}
    after = EvalStore(tmp_path / "after" / "results.sqlite")
    await run_eval(refined_mcq_benchmark(refined_store, data=SAMPLE_MCQS), rt, store=after, progress=False)
    by_case = {r.case_id: r for r in after.records()}
    for r in refined_store.records():
        final = MCQ.model_validate(r.output["final"])
        assert by_case[r.case_id].target == final.correct_index
        if r.output["exit_code"] == "SUCCESS_REWRITE":
            assert final.question == "Reworded stem?"
