"""Recorded values back as the Python values a node or a task was given: a trace holds a step's
input as JSON; replaying the step alone validates it into the type its function declares, and
rebuilds the LangChain messages in it."""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

from langchain_core.messages import messages_from_dict
from pydantic import BaseModel, TypeAdapter

MESSAGE_TYPES = frozenset({"human", "ai", "system", "tool", "chat", "function", "AIMessageChunk",
                           "HumanMessageChunk", "SystemMessageChunk", "ToolMessageChunk", "ChatMessageChunk"})


def hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """`fn`'s resolved annotations, each one that can be (not one naming a class defined inside a
    function, say, under `from __future__ import annotations`)."""
    try:
        return typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001 - one annotation failed: resolve them one by one
        pass
    found: dict[str, Any] = {}
    for key, annotation in getattr(fn, "__annotations__", {}).items():
        def one() -> None: ...

        one.__annotations__ = {key: annotation}
        try:
            found.update(typing.get_type_hints(one, globalns=getattr(fn, "__globals__", None)))
        except Exception:  # noqa: BLE001 - left out: the caller treats it as not annotated
            continue
    return found


def first_parameter_type(fn: Callable[..., Any]) -> Any | None:
    """The annotation of `fn`'s first parameter (a node's state or a Send payload), or None."""
    import inspect

    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    return hints(fn).get(params[0].name) if params else None


def messages_revived(value: Any) -> Any:
    """`value` with each dict that is a dumped LangChain message (its `type` and `content`) made a
    message again, at any depth."""
    if isinstance(value, list):
        return [messages_revived(v) for v in value]
    if isinstance(value, dict):
        if value.get("type") in MESSAGE_TYPES and "content" in value:
            return messages_from_dict([{"type": value["type"], "data": value}])[0]
        return {k: messages_revived(v) for k, v in value.items()}
    return value


def revived(annotation: Any | None, value: Any) -> Any:
    """A recorded JSON `value` as the `annotation` type (a pydantic model, a TypedDict, a dataclass,
    a list of them...), its LangChain messages rebuilt. Left as JSON (messages rebuilt) when it has
    no annotation or does not validate as it: the replayed step then shows what differs."""
    if annotation is not None and annotation is not Any:
        try:
            value = TypeAdapter(annotation).validate_python(value)
        except Exception:  # noqa: BLE001 - an annotation pydantic cannot use, or JSON that is no longer it
            return messages_revived(value)
        if isinstance(value, BaseModel):
            return value
    return messages_revived(value)
