"""RefineBot (MicroVQA): rewrite a multiple-choice question until a model can no longer answer it
without the image. evaluate → reflect → rewrite → check, looped, with the published exit codes."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from rolegraph.agents import Agent
from rolegraph.envs.mcq import LETTERS, MCQ
from rolegraph.errors import AgentOutputError, ModelHTTPError
from rolegraph.graphs._api import END, START, RunResult, StateGraph, graph
from rolegraph.models import Message
from rolegraph.runtime import Runtime

ANSWER_RE = re.compile(r"answer is \(?([a-zA-Z])\)?")


class ExitCode(StrEnum):
    SUCCESS_NO_CHANGE = "SUCCESS_NO_CHANGE"
    """The original question already fails the image-free evaluation."""
    SUCCESS_REWRITE = "SUCCESS_REWRITE"
    """A rewrite fails the image-free evaluation."""
    FAIL_ITERATIONS = "FAIL_ITERATIONS"
    """Still answerable without the image after max_iters evaluations."""
    FAIL_REWRITE = "FAIL_REWRITE"
    """The checker found a rewrite that changed the question's meaning."""
    ERROR = "ERROR"
    """A role gave no valid output after all its attempts (not in the paper; recorded, not lost)."""


class RefineBotOptions(BaseModel):
    """RefineBot's settings; the defaults are the published demo's (max_iters 2, multi_eval 1)."""

    model_config = ConfigDict(frozen=True)

    max_iters: int = Field(default=2, ge=1)
    multi_eval: int = Field(default=1, ge=1)
    """Evaluations per iteration; 'incorrect' is 0 correct when 1, at most 1 correct when more."""
    n_choices: int = Field(default=4, ge=2, le=len(LETTERS))
    """Options in a rewritten question."""
    shuffle: bool = False
    """Shuffle the original options with the run's seed before the first evaluation."""
    eval_max_tokens: int = 384
    reflect_max_tokens: int = 384
    rewrite_max_tokens: int = 1024
    check_max_tokens: int = 256


class Evaluation(BaseModel):
    response_text: str
    pred_index: int | None
    is_correct: bool
    messages: list[Message]


class Reflection(BaseModel):
    text: str
    conversation: list[Message]


class EquivalenceCheck(BaseModel):
    is_equivalent: bool
    explanation: Annotated[str, Field(max_length=400)]


class RewriteBase(BaseModel):
    question_stem: str
    choices: list[str]
    correct_index: int
    explanation: str


@lru_cache(maxsize=16)
def rewrite_type(n_choices: int) -> type[RewriteBase]:
    """The rewriter's output type for `n_choices` options: bounded so a small model can fill it."""
    return create_model(
        "MCQRewrite",
        __base__=RewriteBase,
        question_stem=(str, Field(min_length=1, max_length=1200)),
        choices=(list[Annotated[str, Field(min_length=1, max_length=300)]],
                 Field(min_length=n_choices, max_length=n_choices)),
        correct_index=(int, Field(ge=0, le=n_choices - 1)),
        explanation=(str, Field(max_length=600)),
    )


class RefineState(BaseModel):
    """The graph's state: the original and current MCQ, what each role said, the exit code."""

    original: MCQ
    current: MCQ
    seed: int = 0
    iteration: int = 0
    evaluations: list[list[Evaluation]] = Field(default_factory=list)
    eval_conversation: list[Message] = Field(default_factory=list)
    reflections: list[Reflection] = Field(default_factory=list)
    rewrites: list[RewriteBase] = Field(default_factory=list)
    checks: list[EquivalenceCheck] = Field(default_factory=list)
    exit_code: ExitCode | None = None


class RefineResult(RunResult):
    """One RefineBot run (one MCQ, one seed)."""

    key: str
    seed: int
    exit_code: ExitCode
    iterations: int
    original: MCQ
    final: MCQ
    """The last iteration's MCQ on success; the original otherwise."""
    state: RefineState | None = None

    @property
    def output(self) -> MCQ:
        return self.final


def extract_answer(text: str) -> int | None:
    """The index named by the last 'answer is (x)' in `text`, or None."""
    matches = ANSWER_RE.findall(text)
    if not matches:
        return None
    letter = matches[-1].lower()
    return LETTERS.index(letter) if letter in LETTERS else None


def is_incorrect(correct: list[bool]) -> bool:
    """The published rule: 0 correct when evaluated once, at most 1 correct when more often."""
    hits = sum(correct)
    return hits == 0 if len(correct) == 1 else hits <= 1


def conversations_text(conversations: Iterable[list[Message]]) -> str:
    out = []
    for i, conv in enumerate(conversations, start=1):
        turns = [{"role": m.role, "content": m.content or ""} for m in conv if m.role != "system"]
        out.append(f"CONVERSATION {i}:\n{json.dumps(turns, indent=2)}")
    return "\n".join(out)


def shuffled(mcq: MCQ, seed: int) -> MCQ:
    order = list(range(len(mcq.choices)))
    random.Random(seed).shuffle(order)
    return mcq.model_copy(update={"choices": [mcq.choices[i] for i in order],
                                  "correct_index": order.index(mcq.correct_index)})


def _start(mcq: MCQ, options: RefineBotOptions, seed: int) -> RefineState:
    start = shuffled(mcq, seed) if options.shuffle else mcq
    return RefineState(original=start, current=start, seed=seed)


def _finish(state: RefineState | None, input: MCQ, options: RefineBotOptions, seed: int,
            error: BaseException | None) -> RefineResult:
    start = shuffled(input, seed) if options.shuffle else input
    if error is not None or state is None:
        return RefineResult(key=input.key, seed=seed, exit_code=ExitCode.ERROR, iterations=0,
                            original=start, final=start, error=str(error))
    assert state.exit_code is not None
    success = state.exit_code in (ExitCode.SUCCESS_NO_CHANGE, ExitCode.SUCCESS_REWRITE)
    return RefineResult(key=input.key, seed=seed, exit_code=state.exit_code, iterations=state.iteration,
                        original=start, final=state.current if success else start, state=state)


def recursion_limit(options: RefineBotOptions) -> int:
    return 4 * options.max_iters + 4


@graph(input=MCQ, state=RefineState, result=RefineResult, options=RefineBotOptions, start=_start, finish=_finish,
       # a question the model refuses for good (HTTP 400, 5xx after retries) fails alone, not the batch
       recorded_failures=(AgentOutputError, ModelHTTPError),
       recursion_limit=lambda mcq, options: recursion_limit(options), output_exclude=("state",))
def refinebot(g: StateGraph, options: RefineBotOptions) -> None:
    """evaluate -> reflect -> rewrite -> check, until the question fails the image-free evaluation."""
    evaluator = Agent(name="evaluator", prompt="refinebot/evaluate", output=str,
                      max_tokens=options.eval_max_tokens)
    reflector = Agent(name="reflector", prompt="refinebot/reflect", output=str,
                      max_tokens=options.reflect_max_tokens)
    rewriter = Agent(name="rewriter", prompt="refinebot/rewrite", output=rewrite_type(options.n_choices),
                     max_tokens=options.rewrite_max_tokens)
    checker = Agent(name="checker", prompt="refinebot/check", output=EquivalenceCheck,
                    max_tokens=options.check_max_tokens)

    async def evaluate(state: RefineState, runtime: Runtime) -> dict[str, Any]:
        mcq = state.current
        evals = []
        for i in range(options.multi_eval):
            result = await evaluator.invoke(runtime, seed=state.seed + i, question=mcq.question,
                                            options=mcq.options_text())
            pred = extract_answer(result.output)
            evals.append(Evaluation(response_text=result.output, pred_index=pred,
                                    is_correct=pred == mcq.correct_index, messages=list(result.messages)))
        correct = [e.is_correct for e in evals]
        # the conversation carried to the reflector: the first correct one
        first = next((e for e in evals if e.is_correct), evals[0])
        update: dict[str, Any] = {"evaluations": [*state.evaluations, evals],
                                  "eval_conversation": first.messages}
        if is_incorrect(correct):
            update["exit_code"] = (ExitCode.SUCCESS_NO_CHANGE if state.iteration == 0
                                   else ExitCode.SUCCESS_REWRITE)
        elif state.iteration == options.max_iters - 1:
            update["exit_code"] = ExitCode.FAIL_ITERATIONS
        return update

    async def reflect(state: RefineState, runtime: Runtime) -> dict[str, Any]:
        result = await reflector.invoke(runtime, history=state.eval_conversation, seed=state.seed)
        return {"reflections": [*state.reflections,
                                Reflection(text=result.output, conversation=list(result.messages))]}

    async def rewrite(state: RefineState, runtime: Runtime) -> dict[str, Any]:
        new = await rewriter.run(
            runtime, seed=state.seed,
            n_chat=len(state.reflections), n_choices=options.n_choices,
            question_stem_original=state.original.question, answer_original=state.original.answer,
            conversations=conversations_text(r.conversation for r in state.reflections),
        )
        return {"rewrites": [*state.rewrites, RewriteBase.model_validate(new.model_dump())]}

    async def check(state: RefineState, runtime: Runtime) -> dict[str, Any]:
        new = state.rewrites[-1]
        verdict = await checker.run(
            runtime, seed=state.seed,
            question_stem_1=state.original.question, answer_1=state.original.answer,
            question_stem_2=new.question_stem, answer_2=new.choices[new.correct_index],
        )
        update: dict[str, Any] = {"checks": [*state.checks, verdict]}
        if not verdict.is_equivalent:
            update["exit_code"] = ExitCode.FAIL_REWRITE
        else:
            update["current"] = state.current.model_copy(update={
                "question": new.question_stem, "choices": new.choices, "correct_index": new.correct_index})
            update["iteration"] = state.iteration + 1
        return update

    def route(state: RefineState) -> str:
        return END if state.exit_code is not None else "next"

    for fn in (evaluate, reflect, rewrite, check):
        g.add_node(fn)
    g.add_edge(START, "evaluate")
    g.add_conditional_edges("evaluate", route, {END: END, "next": "reflect"})
    g.add_edge("reflect", "rewrite")
    g.add_edge("rewrite", "check")
    g.add_conditional_edges("check", route, {END: END, "next": "evaluate"})


run, run_sync, run_many = refinebot.run, refinebot.run_sync, refinebot.run_many
ROLES = tuple(refinebot.roles())
