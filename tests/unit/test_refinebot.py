"""RefineBot's control flow on scripted models: every exit code, the multi-eval rule, and what
each role is shown; many runs, where one that raises is a failed result; `rolegraph run refinebot`."""

from __future__ import annotations

from pathlib import Path

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


async def test_a_run_that_raises_is_a_failed_result_and_the_others_go_on() -> None:
    from rolegraph import RunFailure
    from rolegraph.models import ChatRequest, FunctionModel

    def evaluator(request: ChatRequest) -> str:
        if "poison" in (request.messages[-1].content or ""):
            raise RuntimeError("a bug in a tool\nwith a second line")  # not one of refinebot's recorded failures
        return WRONG

    mcqs = [MCQ_A, MCQ_A.model_copy(update={"key": "q2", "question": "poison?"}), MCQ_A.model_copy(update={"key": "q3"})]
    rt = Runtime.from_models({"default": FunctionModel(evaluator)})
    done = {(index, seed): result async for index, seed, result in refinebot.refinebot.run_batch(
        mcqs, runtime=rt, seeds=[0, 1], concurrency=2)}
    assert sorted(done) == [(i, s) for i in range(3) for s in (0, 1)]
    for seed in (0, 1):
        failed = done[1, seed]
        assert isinstance(failed, RunFailure) and failed.status == "error"
        assert failed.error == "RuntimeError: a bug in a tool"
        assert done[0, seed].exit_code is done[2, seed].exit_code is ExitCode.SUCCESS_NO_CHANGE
        assert (done[0, seed].key, done[2, seed].seed) == ("q1", seed)
    many = [r async for r in refinebot.run_many(mcqs, runtime=rt, seeds=[0])]
    assert sorted(type(r).__name__ for r in many) == ["RefineResult", "RefineResult", "RunFailure"]
    await rt.aclose()


def test_cli_runs_refinebot_as_any_graph_with_its_options_as_flags(tmp_path: Path) -> None:
    """`rolegraph run refinebot` (the README's demo) over a stub server: the graph's options as
    flags, seeds 0,1 by default, the exit-code table, and a results row per run."""
    import asyncio
    import json
    import subprocess
    import sys

    from rolegraph.models.servers.loadtest import LoadTestServer

    cases = tmp_path / "cases.jsonl"
    cases.write_text(MCQ_A.model_dump_json(exclude={"key"}) + "\n"
                     + MCQ_A.model_copy(update={"correct_index": 0}).model_dump_json(exclude={"key"}) + "\n")

    def rolegraph(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "rolegraph", *args], capture_output=True, text=True, check=False,
                              cwd=tmp_path, timeout=120)

    async def run_it() -> subprocess.CompletedProcess[str]:
        async with LoadTestServer(delay_s=0, reply=WRONG) as server:
            (tmp_path / "rolegraph.toml").write_text(
                f'[traces]\ndir = "{(tmp_path / "runs").as_posix()}"\n[endpoints.stub]\nbase_url = "{server.base_url}"\n'
                'dialect = "openai"\n[roles.default]\nendpoint = "stub"\nmodel = "stub"\n')
            return await asyncio.to_thread(rolegraph, "run", "refinebot", "--input", str(cases), "--max-iters", "2",
                                           "--multi-eval=1", "--out", "out/results.jsonl", "--concurrency", "2")

    done = asyncio.run(run_it())
    assert done.returncode == 0, done.stderr
    assert "RefineBot: 2 questions x 2 seeds" in done.stdout and "results: out/results.jsonl" in done.stdout
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert sorted((r["key"], r["seed"]) for r in rows) == [("1", 0), ("1", 1), ("2", 0), ("2", 1)]  # keys: line numbers
    # the question the stub answers wrongly needs no rewrite; the other's rewrite is not JSON: an ERROR, recorded
    assert {r["key"]: r["exit_code"] for r in rows} == {"1": "SUCCESS_NO_CHANGE", "2": "ERROR"}
    assert all("state" not in r and "trace_dir" not in r for r in rows)
    assert "│ SUCCESS_NO_CHANGE │    2 │   50% │" in done.stdout and "│ ERROR             │    2 │   50% │" in done.stdout

    bad = rolegraph("run", "refinebot", "--input", str(cases), "--max-iters", "0")
    assert bad.returncode == 1 and "error: graph 'refinebot': option max_iters: Input should be greater than or equal " \
                                   "to 1" in bad.stderr
    typo = rolegraph("run", "refinebot", "--input", str(cases), "--max-iter", "1")
    assert typo.returncode == 1 and "graph 'refinebot' has no option --max-iter; the graph's options: --max-iters" \
                                    in typo.stderr
