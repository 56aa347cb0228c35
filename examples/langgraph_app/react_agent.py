"""A LangGraph app written for plain LangGraph, on rolegraph: the prebuilt ReAct agent with two small
deterministic tools. Only the model and the tools are made through `rolegraph.langchain`; the
graph is LangGraph's own. Every run is recorded, so it can be replayed offline and forked:

    .venv/bin/python examples/langgraph_app/react_agent.py "How many kilometres is a marathon?"
    .venv/bin/rolegraph replay last                     # no model, no tool: answered from the trace
    .venv/bin/rolegraph replay last --live-from 2 --model agent=OTHER_MODEL   # live from step 2

The model is the `agent` role of rolegraph.toml (or the embedded CPU model when there is none).
"""

from __future__ import annotations

import sys
import warnings
from typing import Literal

from langchain_core.tools import tool
from langgraph.prebuilt import create_react_agent

import rolegraph as rg

FACTORS = {("mi", "km"): 1.609344, ("km", "mi"): 1 / 1.609344, ("kg", "lb"): 2.204623, ("lb", "kg"): 1 / 2.204623,
           ("m", "ft"): 3.280840, ("ft", "m"): 1 / 3.280840}
FACTS = {"marathon": "A marathon is 26.2 mi long.", "everest": "Mount Everest is 8849 m high.",
         "bowling ball": "A heavy bowling ball weighs 16 lb."}


Unit = Literal["mi", "km", "kg", "lb", "m", "ft"]
Topic = Literal["marathon", "everest", "bowling ball"]  # enums: the grammar keeps a small model to them


@tool
def convert_units(value: float, from_unit: Unit, to_unit: Unit) -> str:
    """Convert a value between units: mi and km, kg and lb, m and ft."""
    factor = FACTORS.get((from_unit.strip().lower(), to_unit.strip().lower()))
    if factor is None:
        return f"cannot convert {from_unit} to {to_unit}; known: " + ", ".join(f"{a}->{b}" for a, b in FACTORS)
    return f"{value:g} {from_unit} = {value * factor:.2f} {to_unit}"


@tool
def lookup(topic: Topic) -> str:
    """Look up a fact about a topic: marathon, everest or bowling ball."""
    key = topic.strip().lower()
    return next((fact for name, fact in FACTS.items() if name in key or key in name), f"no fact about {topic!r}")


SYSTEM = ("You answer questions about distances, heights and weights. Call lookup to find a fact, then "
          "convert_units to change its unit, then answer in one sentence.")
TOOLS = rg.langchain.tools([convert_units, lookup])
model = rg.langchain.RoleChatModel(role="agent", max_tokens=160, seed=0)


def pick_model(state: dict, runtime: object) -> object:
    """LangGraph's dynamic model: a small model is told which tool comes next (lookup, then
    convert_units, then none: answer). With a capable model, pass `model` itself instead."""
    used = {m.name for m in state["messages"] if m.type == "tool"}
    step = next((t for t in ("lookup", "convert_units") if t not in used), "none")
    return model.bind_tools(TOOLS, tool_choice=step)


with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # LangGraph 1.x points to langchain.agents.create_agent; this one still works
    agent = rg.langchain.app(create_react_agent(pick_model, TOOLS, prompt=SYSTEM), name="react_agent",
                             roles=["agent"], recursion_limit=12)


def main() -> None:
    question = " ".join(sys.argv[1:]) or "How many kilometres is a marathon?"
    with rg.Runtime.load() as runtime:
        result = agent.run_sync({"messages": [{"role": "user", "content": question}]}, runtime=runtime)
    for message in result.state["messages"]:
        calls = ", ".join(f"{c['name']}({c['args']})" for c in getattr(message, "tool_calls", []))
        print(f"{message.type:>6}: {message.content or calls}")
    print(f"run {result.run_id}: rolegraph trace show {result.run_id}")


if __name__ == "__main__":
    main()
