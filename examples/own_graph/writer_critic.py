"""A writer drafts a short answer; a critic approves it or sends it back with feedback, at most
twice. Run it from this folder:

    rolegraph run writer_critic.py:writer_critic --input questions.jsonl
    rolegraph replay last
"""

from typing import Any

from pydantic import BaseModel, Field

import rolegraph as rg


class Question(BaseModel):
    question: str


class Review(BaseModel):
    ok: bool
    feedback: str = Field(default="", max_length=300)


class State(BaseModel):
    question: str
    draft: str = ""
    feedback: str = ""
    rounds: int = 0
    approved: bool = False


class Answer(rg.RunResult):
    draft: str
    approved: bool
    rounds: int


writer = rg.Agent(name="writer", prompt="write", output=str, max_tokens=160)
critic = rg.Agent(name="critic", prompt="critique", output=Review, max_tokens=120)


async def write(state: State, runtime: rg.Runtime) -> dict[str, Any]:
    draft = await writer.run(runtime, question=state.question, draft=state.draft, feedback=state.feedback)
    return {"draft": draft}


async def critique(state: State, runtime: rg.Runtime) -> dict[str, Any]:
    review = await critic.run(runtime, question=state.question, draft=state.draft)
    return {"approved": review.ok, "feedback": review.feedback, "rounds": state.rounds + 1}


def route(state: State) -> str:
    return rg.END if state.approved or state.rounds >= 3 else "write"  # at most two loops back


@rg.graph(input=Question, state=State, result=Answer, prompts="prompts/", agents=[writer, critic])
def writer_critic(g: rg.StateGraph) -> None:
    g.add_node(write)
    g.add_node(critique)
    g.add_edge(rg.START, "write")
    g.add_edge("write", "critique")
    g.add_conditional_edges("critique", route, ["write", rg.END])


if __name__ == "__main__":
    with rg.Runtime.load() as rt:
        answer = writer_critic.run_sync(Question(question="Why is the sky blue?"), runtime=rt)
    print(answer.draft, f"(approved: {answer.approved}, run {answer.run_id})")
