"""A `langgraph-supervisor` app on rolegraph: a supervisor that hands each part of a task to one of
two `create_react_agent` experts. Only the models and the tools are made through
`rolegraph.langchain`; the graph is the package's own. Each handoff is recorded as the step's
outcome (where control went, and the update it carried), each expert's role is found inside its
agent, and the run replays offline and forks at any step:

    .venv/bin/python examples/multiagent/supervisor.py
    .venv/bin/rolegraph trace show last              # the steps, with a handoff column
    .venv/bin/rolegraph trace show last --calls      # each decision (a transfer_to_... call) and tool call
    .venv/bin/rolegraph trace view last              # the page: handoffs, decisions, tool calls
    .venv/bin/rolegraph replay last                  # offline: every call answered from the trace

The models are scripted here (a small CPU model does not choose between handoff tools reliably);
to use real ones, run the app with `rg.Runtime.load()` and bind the roles `supervisor`, `math` and
`research` in rolegraph.toml.
"""

from __future__ import annotations

import warnings

from langchain_core.tools import tool
from langgraph.prebuilt import create_react_agent
from langgraph_supervisor import create_supervisor

import rolegraph as rg
from rolegraph.models import ChatRequest, ChatResponse, FunctionModel, ToolCall


@tool
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@tool
def lookup(topic: str) -> str:
    """Look up a fact."""
    facts = {"everest": "Mount Everest is 8849 m high.", "marathon": "A marathon is 42.195 km long."}
    return next((fact for name, fact in facts.items() if name in topic.lower()), f"no fact about {topic!r}")


with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # LangGraph 1.x points to langchain.agents.create_agent; this one still works
    math = create_react_agent(rg.langchain.RoleChatModel(role="math"), rg.langchain.tools([add]),
                              name="math_expert", prompt="You add numbers with the add tool.")
    research = create_react_agent(rg.langchain.RoleChatModel(role="research"), rg.langchain.tools([lookup]),
                                  name="research_expert", prompt="You look facts up with the lookup tool.")
team = rg.langchain.app(
    create_supervisor([math, research], model=rg.langchain.RoleChatModel(role="supervisor"),
                      prompt="Hand each part of the task to the expert for it, then answer.").compile(),
    name="supervisor_team")


def _call(name: str, arguments: str) -> ChatResponse:
    return ChatResponse(tool_calls=[ToolCall(id=f"call-{name}", name=name, arguments=arguments)])


def supervisor(request: ChatRequest) -> ChatResponse | str:
    """Research first, then math, then the answer (it counts the experts' answers it has seen)."""
    answers = [m.content for m in request.messages if m.role == "assistant" and m.content and not m.tool_calls]
    if not answers:
        return _call("transfer_to_research_expert", "{}")
    if len(answers) == 1:
        return _call("transfer_to_math_expert", "{}")
    return f"{answers[0]} Two of them: {answers[1]}"


def expert(tool_name: str, arguments: str, answer: str) -> FunctionModel:
    def reply(request: ChatRequest) -> ChatResponse | str:
        last = request.messages[-1]
        if last.role == "tool" and not (last.content or "").startswith("Successfully transferred"):
            return answer.format(result=last.content)
        return _call(tool_name, arguments)
    return FunctionModel(reply)


def main() -> None:
    models = {"supervisor": FunctionModel(supervisor),
              "research": expert("lookup", '{"topic": "everest"}', "{result}"),
              "math": expert("add", '{"a": 8849, "b": 8849}', "8849 + 8849 = {result} m.")}
    with rg.Runtime.from_models(models, traces="runs") as runtime:
        result = team.run_sync({"messages": [{"role": "user", "content": "How high is Everest, and twice that?"}]},
                               runtime=runtime)
    print(result.state["messages"][-1].content)
    print(f"run {result.run_id}: rolegraph trace show {result.run_id}")


if __name__ == "__main__":
    main()
