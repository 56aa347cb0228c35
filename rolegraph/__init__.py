"""rolegraph: multi-agent LLM graphs you can run from Python, trace, replay and evaluate.

    import rolegraph as rg

    @rg.graph(input=Question, state=State, result=Answer, prompts="prompts/")
    def writer_critic(g: rg.StateGraph) -> None:
        g.add_node(write)                   # traced; the node's name is the function's
        ...

    rt = rg.Runtime.load()                  # rolegraph.toml if present, else the embedded CPU model
    answer = writer_critic.run_sync(Question(text="..."), runtime=rt)
"""

from importlib.metadata import PackageNotFoundError, version

from rolegraph.agents import Agent, AgentResult, OutputInvalid
from rolegraph.config import RuntimeConfig, load_config
from rolegraph.errors import (
    AgentOutputError,
    ConfigError,
    HumanInputNeeded,
    InputError,
    ModelError,
    ModelHTTPError,
    ModelStreamError,
    ModelUnreachable,
    RolegraphError,
    ScriptError,
    ServerStartError,
    UnknownRoleError,
    UserError,
)
from rolegraph.graphs import END, START, Graph, RunFailure, RunResult, StateGraph, StateResult, graph, run_totals
from rolegraph.runtime import Runtime


def __getattr__(name: str) -> object:
    """`rg.langchain` (LangChain chat model, tools and LangGraph apps), imported when first used."""
    if name == "langchain":
        import importlib

        return importlib.import_module("rolegraph.langchain")
    raise AttributeError(f"module 'rolegraph' has no attribute {name!r}")


try:
    __version__ = version("rolegraph")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "END",
    "START",
    "Agent",
    "AgentOutputError",
    "AgentResult",
    "ConfigError",
    "Graph",
    "HumanInputNeeded",
    "InputError",
    "ModelError",
    "ModelHTTPError",
    "ModelStreamError",
    "ModelUnreachable",
    "OutputInvalid",
    "RolegraphError",
    "RunFailure",
    "RunResult",
    "Runtime",
    "RuntimeConfig",
    "ScriptError",
    "ServerStartError",
    "StateGraph",
    "StateResult",
    "UnknownRoleError",
    "UserError",
    "__version__",
    "graph",
    "load_config",
    "run_totals",
]
