"""A `langgraph-swarm` app on rolegraph, used as swarms are: several user turns of one conversation.
Two `create_react_agent` agents hand the conversation to each other with `create_handoff_tool`,
whose tools go through `rg.langchain.tools` like any other (a tool given its call's id and the
graph's state works there too). Each turn is one recorded run, started from the last turn's
state: the conversation and the agent the swarm left active. Each turn replays offline by itself:

    .venv/bin/python examples/multiagent/swarm.py
    .venv/bin/rolegraph trace show last              # turn 2: bob hands back to alice
    .venv/bin/rolegraph replay last                  # offline, with turn 1's answers as its input

A rolegraph run keeps its own checkpoints (one thread per run, what resume and fork use), so the
app is compiled without a checkpointer of its own: the state the next turn needs is the run's result.
The models are scripted here; with real ones, bind the roles `alice` and `bob` in rolegraph.toml.
"""

from __future__ import annotations

import warnings
from typing import Annotated, Any

from langchain_core.messages import ToolMessage, convert_to_openai_messages
from langchain_core.tools import InjectedToolCallId, tool
from langgraph.prebuilt import InjectedState, create_react_agent
from langgraph.types import Command
from langgraph_swarm import create_handoff_tool, create_swarm

import rolegraph as rg
from rolegraph.models import ChatRequest, ChatResponse, FunctionModel, ToolCall


@tool
def flight(to: str) -> str:
    """Find a flight to a city."""
    return f"flight to {to}: AF1234, 9:05"


@tool
def book_hotel(city: str, call_id: Annotated[str, InjectedToolCallId], state: Annotated[Any, InjectedState]) -> Command:
    """Book a hotel in a city."""
    asked = sum(1 for m in state["messages"] if m.type == "human")
    return Command(update={"messages": [ToolMessage(f"hotel in {city} booked ({asked} request(s) so far)",
                                                    tool_call_id=call_id)]})


with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # LangGraph 1.x points to langchain.agents.create_agent; this one still works
    alice = create_react_agent(rg.langchain.RoleChatModel(role="alice"),
                               rg.langchain.tools([flight, create_handoff_tool(agent_name="bob")]),
                               name="alice", prompt="You find flights; hand hotels to bob.")
    bob = create_react_agent(rg.langchain.RoleChatModel(role="bob"),
                             rg.langchain.tools([book_hotel, create_handoff_tool(agent_name="alice")]),
                             name="bob", prompt="You book hotels; hand flights to alice.")


class Turn(rg.langchain.Messages):
    """One user turn: the conversation so far and the agent that answers first."""

    active_agent: str = "alice"


travel = rg.langchain.app(create_swarm([alice, bob], default_active_agent="alice").compile(), name="travel_swarm",
                          input=Turn)


def _call(name: str, arguments: str) -> ChatResponse:
    return ChatResponse(tool_calls=[ToolCall(id=f"call-{name}", name=name, arguments=arguments)])


def alice_model(request: ChatRequest) -> ChatResponse | str:
    last = request.messages[-1]
    if last.role == "tool" and (last.content or "").startswith("flight"):
        return last.content or ""
    if last.role == "tool":  # bob handed the conversation back
        return _call("flight", '{"to": "Lisbon"}')
    return _call("flight", '{"to": "Rome"}') if "Rome" in (last.content or "") else _call("transfer_to_bob", "{}")


def bob_model(request: ChatRequest) -> ChatResponse | str:
    last = request.messages[-1]
    if last.role == "tool" and (last.content or "").startswith("hotel"):
        return last.content or ""
    if last.role == "user" and "flight" in (last.content or ""):
        return _call("transfer_to_alice", "{}")
    return _call("book_hotel", '{"city": "Rome"}')


def main() -> None:
    turns = ["A flight to Rome, please.", "And a hotel there.", "Make the flight Lisbon instead."]
    models = {"alice": FunctionModel(alice_model), "bob": FunctionModel(bob_model)}
    history: list[dict[str, Any]] = []
    active = "alice"
    with rg.Runtime.from_models(models, traces="runs") as runtime:
        for text in turns:
            result = travel.run_sync({"messages": [*history, {"role": "user", "content": text}],
                                      "active_agent": active}, runtime=runtime)
            history = convert_to_openai_messages(result.state["messages"])
            active = result.state["active_agent"]
            print(f"user: {text}\n{active}: {result.state['messages'][-1].content}   (run {result.run_id})")


if __name__ == "__main__":
    main()
