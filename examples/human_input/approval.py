"""A LangGraph app that asks a person before it publishes: a writer drafts a sentence, then
`interrupt()` stops the run with the draft, and the run goes on from the person's answer. Every
run is recorded, the answer too, so it replays offline and forks with another answer:

    .venv/bin/python examples/human_input/approval.py "the tides"       # stops: status interrupted
    .venv/bin/rolegraph resume RUN --answer '{"approve": false, "note": "say what causes them"}'
    .venv/bin/rolegraph replay RUN                                      # answered from the trace
    .venv/bin/rolegraph replay RUN --live-from 1 --answer '{"approve": true}'   # another answer

The model is the `writer` role of rolegraph.toml (or the embedded CPU model when there is none).
"""

from __future__ import annotations

import sys
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from pydantic import BaseModel

import rolegraph as rg

model = rg.langchain.RoleChatModel(role="writer", max_tokens=60, seed=0)


class Draft(TypedDict, total=False):
    topic: str
    draft: str
    verdict: dict[str, Any]
    final: str


class Topic(BaseModel):
    topic: str


async def write(state: Draft) -> dict[str, Any]:
    answer = await model.ainvoke(f"Write one short sentence about {state['topic']}.")
    return {"draft": str(answer.content).strip()}


def review(state: Draft) -> dict[str, Any]:
    # stops the run here; once resumed, the node runs again and `interrupt` returns the answer
    verdict = interrupt({"question": "Publish this draft?", "draft": state["draft"]})
    return {"verdict": verdict if isinstance(verdict, dict) else {"approve": bool(verdict)}}


async def publish(state: Draft) -> dict[str, Any]:
    verdict = state["verdict"]
    if verdict.get("approve"):
        return {"final": state["draft"]}
    answer = await model.ainvoke(f"Rewrite this sentence ({verdict.get('note', 'better')}): {state['draft']}")
    return {"final": str(answer.content).strip()}


builder = StateGraph(Draft)
builder.add_node("write", write)
builder.add_node("review", review)
builder.add_node("publish", publish)
builder.add_edge(START, "write")
builder.add_edge("write", "review")
builder.add_edge("review", "publish")
builder.add_edge("publish", END)
approval = rg.langchain.app(builder.compile(), name="approval", input=Topic, roles=["writer"])


def main() -> None:
    with rg.Runtime.load() as runtime:
        result = approval.run_sync({"topic": " ".join(sys.argv[1:]) or "the tides"}, runtime=runtime)
    print(f"run {result.run_id}: {result.status}")
    for question in result.interrupts:
        print(f"asks ({question.id}): {question.value}")
    if result.status == "interrupted":
        print(f"answer with: rolegraph resume {result.run_id} --answer '{{\"approve\": true}}'")


if __name__ == "__main__":
    main()
