"""Answering one multiple-choice question with chain-of-thought: a one-node graph, so each
answer is a recorded, replayable run like any other graph's."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, ConfigDict, Field

from rolegraph.agents import Agent
from rolegraph.evals.answers import parse_answer
from rolegraph.evals.mcq import MCQ, option_label
from rolegraph.graphs._run import GraphSpec, Prepared, run_graph
from rolegraph.runtime import Runtime
from rolegraph.traces import Manifest, RoleInfo, traced_node

NAME = "mcq"
ROLES = ("answerer", "paraphraser")
PROMPTS = ("mcq/answer", "mcq/paraphrase", "agents/retry")


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


class MCQAnswer(BaseModel):
    key: str
    pred_index: int | None
    correct: bool
    response: str
    question: str = ""
    """The stem the model saw (after a paraphrase, if any)."""
    trace_id: str | None = None
    trace_dir: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


def build(runtime: Runtime, options: MCQOptions = MCQOptions()) -> Any:
    """The compiled graph (shared per options; nodes get the runtime from the run's context)."""
    runtime.require_roles(["answerer", "paraphraser"] if options.paraphrase else ["answerer"])
    return _compiled(options)


@lru_cache(maxsize=16)
def _compiled(options: MCQOptions) -> Any:
    answerer = Agent(name="answerer", prompt="mcq/answer", output=str, max_tokens=options.max_tokens)
    paraphraser = Agent(name="paraphraser", prompt="mcq/paraphrase", output=Paraphrase, max_tokens=256)

    async def paraphrase(state: MCQState, runtime: Runtime) -> dict[str, Any]:
        new = await paraphraser.run(runtime, seed=state.seed, question=state.mcq.question)
        return {"mcq": state.mcq.model_copy(update={"question": new.question, "metadata": {
            **state.mcq.metadata, "transform": {"name": "paraphrase", "original": state.mcq.question}}})}

    async def answer(state: MCQState, runtime: Runtime) -> dict[str, Any]:
        mcq = state.mcq
        text = await answerer.run(runtime, seed=state.seed, question=mcq.question, options=mcq.options_text(),
                                  no_image=options.no_image, label_example=option_label(0, mcq.labels))
        return {"response": text, "pred_index": parse_answer(text, len(mcq.choices), mcq.labels)}

    graph = StateGraph(MCQState)
    graph.add_node("answer", traced_node("answer", answer))
    if options.paraphrase:
        graph.add_node("paraphrase", traced_node("paraphrase", paraphrase))
        graph.add_edge(START, "paraphrase")
        graph.add_edge("paraphrase", "answer")
    else:
        graph.add_edge(START, "answer")
    graph.add_edge("answer", END)
    return graph.compile(name=NAME)


def _prepare(manifest: Manifest, runtime: Runtime, graph: Any) -> Prepared:
    options = MCQOptions.model_validate(manifest.options)
    return Prepared(graph if graph is not None else build(runtime, options),
                    MCQState(mcq=MCQ.model_validate(manifest.input), seed=manifest.seed or 0))


def _finish(manifest: Manifest, raw: Any, error: BaseException | None, run_id: str) -> MCQAnswer:
    mcq = MCQ.model_validate(manifest.input)
    state = MCQState.model_validate(raw)
    return MCQAnswer(key=mcq.key, pred_index=state.pred_index, correct=state.pred_index == mcq.correct_index,
                     response=state.response, question=state.mcq.question, trace_id=run_id)


SPEC = GraphSpec(NAME, _prepare, _finish)


async def arun(mcq: MCQ, *, runtime: Runtime, seed: int = 0, options: MCQOptions = MCQOptions(),
               graph: Any = None) -> MCQAnswer:
    graph = graph if graph is not None else build(runtime, options)
    manifest = Manifest(graph=NAME, input=mcq.model_dump(mode="json"), options=options.model_dump(mode="json"),
                        seed=seed, prompts={p: runtime.prompts.get(p).sha256 for p in PROMPTS},
                        roles=dict.fromkeys(ROLES, RoleInfo()), mermaid=graph.get_graph().draw_mermaid())
    result: MCQAnswer = await run_graph(SPEC, manifest, runtime, graph=graph)
    return result
