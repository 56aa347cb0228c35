"""How the LangChain and LangGraph values a tool returns are written in a trace and read back: a
`ToolMessage`, a `Command` (a handoff) and the messages inside one, so that a tool answered from
the trace gives what the tool gave, and a graph that routes on it takes the same path.

A tool given the graph's state (`InjectedState`) often returns the state's messages again inside
its command (a swarm's handoff does). Those are written as "the first n messages of the state the
tool was given" and read back from the state given now: LangGraph draws their ids at random, and
a replay's ids are not the recorded ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict
from langgraph.types import Command, Send
from pydantic_core import to_jsonable_python

MARK = "$rolegraph_lc"
"""The key that marks an encoded LangChain or LangGraph value in a recorded tool output."""


def is_langchain_value(value: Any) -> bool:
    """Whether a tool's output is one this module writes (a message, a command, or a list of them)."""
    if isinstance(value, list) and value:
        return all(is_langchain_value(v) for v in value)
    return isinstance(value, (BaseMessage, Command))


def encode(value: Any, state: Any = None) -> Any:
    """`value` as JSON, its messages and commands marked; lists in a command's update that begin with
    the same list of `state` are written as a reference to it."""
    if isinstance(value, BaseMessage):
        return {MARK: "message", "value": message_to_dict(value)}
    if isinstance(value, Command):
        update = value.update
        if isinstance(update, Mapping):
            update = {k: _state_prefix(k, v, state) for k, v in update.items()}
        return {MARK: "command", "graph": value.graph, "goto": encode(value.goto),
                "update": encode(update), "resume": encode(value.resume)}
    if isinstance(value, Send):
        return {MARK: "send", "node": value.node, "arg": encode(value.arg)}
    if isinstance(value, _StatePrefix):
        return {MARK: "state", "key": value.key, "count": value.count, "rest": encode(value.rest)}
    if isinstance(value, (list, tuple)):
        return [encode(v, state) for v in value]
    if isinstance(value, Mapping):
        return {str(k): encode(v, state) for k, v in value.items()}
    return to_jsonable_python(value, fallback=str)


def decode(value: Any, state: Any = None) -> Any:
    """The value `encode` wrote, made again; references to the state's lists take `state`'s now."""
    if isinstance(value, list):
        return [decode(v, state) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get(MARK)
    if kind == "message":
        return messages_from_dict([value["value"]])[0]
    if kind == "command":
        update = decode(value["update"], state)
        return Command(graph=value["graph"], goto=decode(value["goto"]), update=update, resume=decode(value["resume"]))
    if kind == "send":
        return Send(value["node"], decode(value["arg"]))
    if kind == "state":
        head = list(_field(state, value["key"]) or [])[: value["count"]]
        return [*head, *decode(value["rest"], state)]
    return {k: decode(v, state) for k, v in value.items()}


def _state_prefix(key: str, value: Any, state: Any) -> Any:
    """A command's update value, with a leading run of `state[key]` (the messages the tool was given)
    kept as a reference: {MARK: "state", key, count, rest}."""
    given = _field(state, key)
    if not isinstance(value, list) or not isinstance(given, list) or not given or len(value) < len(given):
        return value
    if any(a is not b and a != b for a, b in zip(given, value, strict=False)):
        return value
    return _StatePrefix(key, len(given), value[len(given):])


class _StatePrefix:
    """A run of the state's own list inside a command's update (see `_state_prefix`)."""

    def __init__(self, key: str, count: int, rest: list[Any]) -> None:
        self.key, self.count, self.rest = key, count, rest


def _field(state: Any, key: str) -> Any:
    if state is None:
        return None
    return state.get(key) if isinstance(state, Mapping) else getattr(state, key, None)

