"""Answering one multiple-choice question with chain-of-thought: a one-node graph, so each
answer is a recorded, replayable run like any other graph's."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rolegraph.agents import Agent
from rolegraph.envs.mcq import MCQ, option_label, parse_answer
from rolegraph.graphs._api import END, START, RunResult, StateGraph, graph
from rolegraph.runtime import Runtime


class MCQOptions(BaseModel):
    model_config = ConfigDict(frozen=True)

    no_image: bool = True
    """Tell the model there is no image (the language-shortcut setting)."""
    max_tokens: int = 384
    paraphrase: bool = False
    """First have the paraphraser reword the stem (a robustness transform), then answer that."""


class Paraphrase(BaseModel):
    question: str = Field(min_length=1, max_length=1200)


class MCQState(BaseModel):
    mcq: MCQ
    seed: int = 0
    response: str = ""
    pred_index: int | None = None


class MCQAnswer(RunResult):
    key: str
    pred_index: int | None
    correct: bool
    response: str
    question: str = ""
    """The stem the model saw (after a paraphrase, if any)."""


def _finish(state: MCQState, input: MCQ) -> MCQAnswer:
    return MCQAnswer(key=input.key, pred_index=state.pred_index, correct=state.pred_index == input.correct_index,
                     response=state.response, question=state.mcq.question)


@graph(input=MCQ, state=MCQState, result=MCQAnswer, options=MCQOptions,
       start=lambda mcq, seed: MCQState(mcq=mcq, seed=seed), finish=_finish)
def mcq(g: StateGraph, options: MCQOptions) -> None:
    """Answer the question (after rewording its stem, with `paraphrase`)."""
    answerer = Agent(name="answerer", prompt="mcq/answer", output=str, max_tokens=options.max_tokens)

    async def answer(state: MCQState, runtime: Runtime) -> dict[str, Any]:
        q = state.mcq
        text = await answerer.run(runtime, seed=state.seed, question=q.question, options=q.options_text(),
                                  no_image=options.no_image, label_example=option_label(0, q.labels))
        return {"response": text, "pred_index": parse_answer(text, len(q.choices), q.labels)}

    g.add_node(answer)
    g.add_edge("answer", END)
    if not options.paraphrase:
        g.add_edge(START, "answer")
        return
    paraphraser = Agent(name="paraphraser", prompt="mcq/paraphrase", output=Paraphrase, max_tokens=256)

    async def paraphrase(state: MCQState, runtime: Runtime) -> dict[str, Any]:
        new = await paraphraser.run(runtime, seed=state.seed, question=state.mcq.question)
        return {"mcq": state.mcq.model_copy(update={"question": new.question, "metadata": {
            **state.mcq.metadata, "transform": {"name": "paraphrase", "original": state.mcq.question}}})}

    g.add_node(paraphrase)
    g.add_edge(START, "paraphrase")
    g.add_edge("paraphrase", "answer")


run, run_sync = mcq.run, mcq.run_sync
