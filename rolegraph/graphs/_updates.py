"""A node's update checked against the state it updates: a key the state does not have is an error
naming the node, the key and the state's keys, where LangGraph would drop it without a word."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Any

from langgraph.types import Command

from rolegraph._langgraph import state_keys, state_schema
from rolegraph.errors import UserError


def update_checker(builder: Any, node: str) -> Callable[[Any], None]:
    """`check(update)` for node `node` of StateGraph `builder`: raises a UserError for a key of the
    update that the state has no channel for. The keys are read when the first update comes (every
    node and schema is in the builder by then)."""
    known: list[frozenset[str] | None] = []

    def check(update: Any) -> None:
        if not known:
            known.append(state_keys(builder))
        keys = known[0]
        if keys is None:  # a state that is one value: any update is that value
            return
        unknown = [k for k in dict.fromkeys(update_keys(update)) if k not in keys]
        if unknown:
            raise UserError(unknown_keys_message(node, unknown, keys, state_schema(builder)))

    return check


def update_keys(update: Any) -> Iterator[str]:
    """The state keys `update` writes: a dict's keys; a `Command`'s update's (none for one to the
    parent graph, a handoff: those keys are the parent's); each of a list of commands and dicts."""
    if isinstance(update, dict):
        yield from (k for k in update if isinstance(k, str))
    elif isinstance(update, Command):
        if update.graph == Command.PARENT:
            return
        inner = update.update
        if isinstance(inner, dict):
            yield from (k for k in inner if isinstance(k, str))
        elif isinstance(inner, list | tuple):
            yield from (pair[0] for pair in inner
                        if isinstance(pair, tuple | list) and len(pair) == 2 and isinstance(pair[0], str))
    elif isinstance(update, list | tuple) and any(isinstance(u, Command) for u in update):
        for item in update:
            yield from update_keys(item)


def unknown_keys_message(node: str, unknown: list[str], keys: frozenset[str], schema: Any) -> str:
    """What a user reads for an update with keys the state lacks: the node, each key (with the state
    key it most resembles), and the state's keys."""
    fields = sorted(k for k in keys if not k.startswith("__"))
    named = []
    for key in unknown:
        close = difflib.get_close_matches(key, fields, n=1, cutoff=0.6)
        named.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    state = getattr(schema, "__name__", None) or "the state"
    what = "key" if len(unknown) == 1 else "keys"
    return (f"node '{node}' returned {what} {', '.join(named)}, which the state {state} does not have; "
            f"its keys: {', '.join(fields) or '(none)'}. Return only the state's keys (LangGraph would drop "
            f"any other without a word), or add the field to {state}")
