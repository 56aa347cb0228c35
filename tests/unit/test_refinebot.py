"""RefineBot's control flow on scripted models: every exit code, the multi-eval rule, and what
each role is shown."""

from __future__ import annotations

import pytest

from rolegraph import Runtime
from rolegraph.envs.mcq import MCQ
from rolegraph.graphs import refinebot
from rolegraph.graphs.refinebot import ExitCode, RefineBotOptions
from rolegraph.models import ScriptedModel

MCQ_A = MCQ(key="q1", question="Which organelle makes ATP in the cell shown?",
            choices=["Nucleus", "Mitochondrion", "Golgi", "Lysosome"], correct_index=1)

RIGHT = "The cristae are typical of this organelle. The answer is (b)"
WRONG = "It must be where DNA lives. The answer is (a)"


def rewrite(stem: str = "Which structure in the image produces most of the cell's ATP?", idx: int = 2) -> dict:
    choices = ["Peroxisome", "Nucleolus", "Mitochondrion", "Endosome"]
    return {"question_stem": stem, "choices": choices, "correct_index": idx, "explanation": "harder"}


def runtime(**scripts: list) -> tuple[Runtime, dict[str, ScriptedModel]]:
    models = {role: ScriptedModel(scripts.get(role, []), name=role) for role in refinebot.ROLES}
    return Runtime.from_models(models), models


async def run(rt: Runtime, options: RefineBotOptions = RefineBotOptions(), seed: int = 0) -> refinebot.RefineResult:
    result = await refinebot.run(MCQ_A, runtime=rt, seed=seed, options=options)
    await rt.aclose()  # raises if any scripted step was left unused
    return result


async def test_incorrect_at_first_is_success_no_change() -> None:
    rt, _ = runtime(evaluator=[WRONG])
    result = await run(rt)
    assert result.exit_code is ExitCode.SUCCESS_NO_CHANGE
    assert result.iterations == 0
    assert result.final == MCQ_A


async def test_rewrite_that_fools_the_evaluator_is_success_rewrite() -> None:
    rt, models = runtime(evaluator=[RIGHT, "Hmm. The answer is (a)"], reflector=["I matched 'ATP' to the powerhouse."],
                         rewriter=[rewrite()], checker=[{"is_equivalent": True, "explanation": "same"}])
    result = await run(rt)
    assert result.exit_code is ExitCode.SUCCESS_REWRITE
    assert result.iterations == 1
    assert result.final.question.startswith("Which structure in the image")
    assert result.final.correct_index == 2
    # the second evaluation saw the rewritten options, written (a) ... (d)
    second = models["evaluator"].requests[1].messages[-1].content or ""
    assert "(c) Mitochondrion" in second and "(a) Peroxisome" in second


async def test_still_answerable_after_max_iters_is_fail_iterations() -> None:
    rt, _ = runtime(evaluator=[RIGHT, "The answer is (c)"], reflector=["r1"], rewriter=[rewrite()],
                    checker=[{"is_equivalent": True, "explanation": "same"}])
    result = await run(rt, RefineBotOptions(max_iters=2))
    assert result.exit_code is ExitCode.FAIL_ITERATIONS
    assert result.final == MCQ_A  # the original is kept when refinement fails


async def test_max_iters_one_stops_after_one_correct_evaluation() -> None:
    rt, _ = runtime(evaluator=[RIGHT])
    result = await run(rt, RefineBotOptions(max_iters=1))
    assert result.exit_code is ExitCode.FAIL_ITERATIONS


async def test_non_equivalent_rewrite_is_fail_rewrite() -> None:
    rt, _ = runtime(evaluator=[RIGHT], reflector=["r1"], rewriter=[rewrite("Which dye stains DNA?")],
                    checker=[{"is_equivalent": False, "explanation": "asks something else"}])
    result = await run(rt)
    assert result.exit_code is ExitCode.FAIL_REWRITE
    assert result.final == MCQ_A
    assert result.state is not None and result.state.checks[-1].explanation == "asks something else"


async def test_reflector_continues_the_evaluation_conversation() -> None:
    rt, models = runtime(evaluator=[RIGHT], reflector=["strategies"], rewriter=[rewrite()],
                         checker=[{"is_equivalent": False, "explanation": "x"}])
    await run(rt)
    sent = models["reflector"].requests[0].messages
    assert [m.role for m in sent] == ["user", "assistant", "user"]
    assert sent[1].content == RIGHT
    assert (sent[2].content or "").startswith("That is correct. Explain how you were able to answer without the image")


async def test_rewriter_sees_all_reflections_and_the_original_question() -> None:
    second_rewrite = rewrite("Which labelled compartment in the micrograph produces ATP?", 1)
    second_rewrite["choices"] = ["Peroxisome", "Mitochondrion", "Nucleolus", "Endosome"]
    rt, models = runtime(
        evaluator=[RIGHT, "The answer is (c)", "The answer is (d)"],
        reflector=["first reflection", "second reflection"],
        rewriter=[rewrite(), second_rewrite],
        checker=[{"is_equivalent": True, "explanation": "ok"}] * 2,
    )
    result = await run(rt, RefineBotOptions(max_iters=3))
    assert result.exit_code is ExitCode.SUCCESS_REWRITE and result.iterations == 2
    prompt = models["rewriter"].requests[1].messages[-1].content or ""
    assert "CONVERSATION 1" in prompt and "CONVERSATION 2" in prompt
    assert "first reflection" in prompt and "second reflection" in prompt
    assert MCQ_A.question in prompt and "Correct answer: Mitochondrion" in prompt
    # the checker compares against the ORIGINAL question, not the previous rewrite
    check_prompt = models["checker"].requests[1].messages[-1].content or ""
    assert f"Question 1: {MCQ_A.question}" in check_prompt


@pytest.mark.parametrize(
    ("answers", "exit_code"),
    [
        ([RIGHT, RIGHT, WRONG], None),  # 2 of 3 correct: still answerable
        ([RIGHT, WRONG, WRONG], ExitCode.SUCCESS_NO_CHANGE),  # 1 of 3 counts as incorrect
        ([WRONG, "no letter at all", WRONG], ExitCode.SUCCESS_NO_CHANGE),
    ],
)
async def test_multi_eval_rule(answers: list[str], exit_code: ExitCode | None) -> None:
    if exit_code is None:
        rt, models = runtime(evaluator=answers, reflector=["r"], rewriter=[rewrite()],
                             checker=[{"is_equivalent": False, "explanation": "x"}])
    else:
        rt, models = runtime(evaluator=answers)
    result = await run(rt, RefineBotOptions(multi_eval=3), seed=10)
    assert result.exit_code is (exit_code or ExitCode.FAIL_REWRITE)
    # each evaluation uses seed + its index, as published
    assert [r.seed for r in models["evaluator"].requests] == [10, 11, 12]


def test_is_incorrect_rule() -> None:
    assert refinebot.is_incorrect([False]) and not refinebot.is_incorrect([True])
    assert refinebot.is_incorrect([True, False]) and not refinebot.is_incorrect([True, True])
    assert refinebot.is_incorrect([False, False, True]) and not refinebot.is_incorrect([True, False, True])


def test_extract_answer_takes_the_last_match() -> None:
    assert refinebot.extract_answer("the answer is (a) ... no wait, the answer is (C)") == 2
    assert refinebot.extract_answer("so the answer is b") == 1
    assert refinebot.extract_answer("I cannot tell") is None


async def test_role_without_valid_output_is_recorded_as_error() -> None:
    bad = {"question_stem": "x", "choices": ["only one"], "correct_index": 0, "explanation": ""}
    rt, _ = runtime(evaluator=[RIGHT], reflector=["r"], rewriter=[bad, "not json", bad])
    result = await run(rt)
    assert result.exit_code is ExitCode.ERROR
    assert result.error is not None and "rewriter" in result.error
    assert result.final == MCQ_A


async def test_shuffle_option_permutes_choices_with_the_seed() -> None:
    rt, _ = runtime(evaluator=[WRONG])
    result = await run(rt, RefineBotOptions(shuffle=True), seed=3)
    assert sorted(result.original.choices) == sorted(MCQ_A.choices)
    assert result.original.answer == MCQ_A.answer


def test_sync_run_and_output_alias() -> None:
    rt, _ = runtime(evaluator=[WRONG])
    result = refinebot.run_sync(MCQ_A, runtime=rt)
    assert result.output is result.final
    assert result.exit_code is ExitCode.SUCCESS_NO_CHANGE


async def test_arun_many_runs_every_question_seed_pair() -> None:
    rt, _ = runtime(evaluator=[WRONG] * 6)
    other = MCQ_A.model_copy(update={"key": "q2"})
    results = [r async for r in refinebot.run_many([MCQ_A, other, MCQ_A.model_copy(update={"key": "q3"})],
                                                    runtime=rt, seeds=[0, 1], concurrency=2)]
    assert sorted((r.key, r.seed) for r in results) == [(k, s) for k in ("q1", "q2", "q3") for s in (0, 1)]
    await rt.aclose()
