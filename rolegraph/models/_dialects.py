"""Server dialects: how each OpenAI-compatible server wants structured output asked for.

llama-cpp-python takes `{"type": "json_object", "schema": S}` (and answers 500 to `json_schema`);
vLLM and OpenAI take `json_schema`. Small models also need schemas they can satisfy: bounded
integers become enums and strings get a maxLength, since llama.cpp's grammar enforces neither
integer bounds nor stops an unbounded string before max_tokens.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

Dialect = Literal["llama_cpp", "vllm", "openai"]
DialectSetting = Literal["auto", "llama_cpp", "vllm", "openai"]

#: Integer ranges up to this size become enums.
MAX_ENUM_RANGE = 64
#: The maxLength given to strings that have no bound of their own.
DEFAULT_MAX_STRING = 600


def dialect_from_models_listing(payload: dict[str, Any]) -> Dialect:
    """Guess the dialect from a GET /v1/models answer (`owned_by` names the server)."""
    owners = {str(m.get("owned_by", "")).lower() for m in payload.get("data", []) or []}
    if "vllm" in owners:
        return "vllm"
    if owners & {"me", "llamacpp", "llama.cpp", "llama-cpp"}:
        return "llama_cpp"
    return "openai"


def constrain_schema(schema: dict[str, Any], *, max_string: int = DEFAULT_MAX_STRING,
                     max_enum_range: int = MAX_ENUM_RANGE) -> dict[str, Any]:
    """A copy of `schema` that a grammar-constrained small model can satisfy exactly."""
    out = copy.deepcopy(schema)
    _constrain(out, max_string, max_enum_range)
    return out


def _constrain(node: Any, max_string: int, max_enum_range: int) -> None:
    if isinstance(node, list):
        for item in node:
            _constrain(item, max_string, max_enum_range)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    has_choice = any(k in node for k in ("enum", "const"))
    if kind == "integer" and not has_choice:
        low = node.get("minimum", node["exclusiveMinimum"] + 1 if "exclusiveMinimum" in node else None)
        high = node.get("maximum", node["exclusiveMaximum"] - 1 if "exclusiveMaximum" in node else None)
        if low is not None and high is not None and 0 <= high - low < max_enum_range:
            node["enum"] = list(range(int(low), int(high) + 1))
            for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                node.pop(key, None)
    if kind == "string" and not has_choice and "maxLength" not in node and "pattern" not in node:
        node["maxLength"] = max_string
    for value in node.values():
        if isinstance(value, (dict, list)):
            _constrain(value, max_string, max_enum_range)


def response_format(dialect: Dialect, schema: dict[str, Any], name: str) -> dict[str, Any]:
    """The `response_format` body field for this dialect."""
    if dialect == "llama_cpp":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}
