"""Agents: one role each (prompt + model role + typed output + retry-with-feedback)."""

from rolegraph.agents._agent import Agent, AgentAttempt, AgentResult, OutputInvalid, agents_made

__all__ = ["Agent", "AgentAttempt", "AgentResult", "OutputInvalid", "agents_made"]
