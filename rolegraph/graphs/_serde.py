"""The checkpoint encoding of values LangGraph's msgpack refuses: an integer outside 64 bits (a
model may answer 2**64) is written in LangGraph's own format as `int(hex, 16)`, so any reader of
the checkpoint gets the exact integer back, and nothing a model says crashes the serializer."""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

import ormsgpack
from langgraph.checkpoint.serde import jsonplus
from langgraph.checkpoint.serde.types import SendProtocol
from pydantic import BaseModel

WIDE_INT = ("builtins", "int")
"""The constructor a wide integer is rebuilt with (it must be on the reader's msgpack allowlist)."""

# LangGraph's msgpack options, plus: integers outside 64 bits go to `_default` instead of failing
_OPTIONS = (ormsgpack.OPT_NON_STR_KEYS | ormsgpack.OPT_PASSTHROUGH_DATACLASS | ormsgpack.OPT_PASSTHROUGH_DATETIME
            | ormsgpack.OPT_PASSTHROUGH_ENUM | ormsgpack.OPT_PASSTHROUGH_UUID | ormsgpack.OPT_REPLACE_SURROGATES
            | ormsgpack.OPT_PASSTHROUGH_BIG_INT)


def wide_msgpack(obj: Any) -> bytes:
    """`obj` as LangGraph's "msgpack" checkpoint format, wide integers included; read back by
    JsonPlusSerializer.loads_typed. Used only when LangGraph's own encoder refused `obj` (the bytes
    are the same for everything else, at a little more Python cost)."""
    return ormsgpack.packb(obj, default=_default, option=_OPTIONS)


def _ext(code: int, obj: Any, arg: Any) -> ormsgpack.Ext:
    cls = type(obj)
    return ormsgpack.Ext(code, wide_msgpack((cls.__module__, cls.__name__, arg)))


def _default(obj: Any) -> Any:
    # the containers LangGraph encodes by calling its own encoder are encoded here with this one,
    # so a wide integer inside them is reached too; everything else is LangGraph's
    if type(obj) is int:  # an IntEnum stays LangGraph's (an enum)
        return ormsgpack.Ext(jsonplus.EXT_CONSTRUCTOR_POS_ARGS, wide_msgpack((*WIDE_INT, (format(obj, "x"), 16))))
    if isinstance(obj, BaseModel):
        return ormsgpack.Ext(jsonplus.EXT_PYDANTIC_V2, wide_msgpack(
            (type(obj).__module__, type(obj).__name__, obj.model_dump(), "model_validate_json")))
    if isinstance(obj, SendProtocol):
        timeout = getattr(obj, "timeout", None)
        return _ext(jsonplus.EXT_CONSTRUCTOR_POS_ARGS, obj,
                    (obj.node, obj.arg) if timeout is None else (obj.node, obj.arg, timeout))
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _ext(jsonplus.EXT_CONSTRUCTOR_KW_ARGS, obj, {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    if isinstance(obj, (set, frozenset, collections.deque)):
        return _ext(jsonplus.EXT_CONSTRUCTOR_SINGLE_ARG, obj, tuple(obj))
    return jsonplus._msgpack_default(obj)
