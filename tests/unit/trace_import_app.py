"""A ReAct-style LangGraph app (one model role, two tools) for the trace import tests: run under
OpenTelemetry instrumentation against a stub server, then replayed offline from the imported trace."""

from __future__ import annotations

import warnings

from langgraph.prebuilt import create_react_agent

import rolegraph as rg

TOOLS_RUN: list[str] = []
"""Every tool execution in this process (a replay must add none)."""


def add(a: int, b: int) -> int:
    """Add two integers."""
    TOOLS_RUN.append("add")
    return a + b


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    TOOLS_RUN.append("multiply")
    return a * b


with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # create_react_agent's move to langchain.agents
    app = rg.langchain.app(create_react_agent(rg.langchain.RoleChatModel(role="agent"),
                                              rg.langchain.tools([add, multiply])), name="calculator")
