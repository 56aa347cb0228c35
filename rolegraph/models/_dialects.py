"""Server dialects: how each OpenAI-compatible server wants structured output asked for.

llama-cpp-python's server takes `{"type": "json_object", "schema": S}` (and answers 500 to
`json_schema`); llama.cpp's own `llama-server`, vLLM and OpenAI take `json_schema`. llama-server
also chooses LoRA adapters per request and forces a tool only by `tool_choice: "required"`.

Small models also need schemas they can satisfy: bounded integers become enums and strings get a
maxLength, since llama.cpp's grammar enforces neither integer bounds nor stops an unbounded string
before max_tokens.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

Dialect = Literal["llama_server", "llama_cpp", "vllm", "openai"]
DialectSetting = Literal["auto", "llama_server", "llama_cpp", "vllm", "openai"]
#: The dialects of llama.cpp's grammar-constrained servers, which small-model schemas are made for.
LLAMA_DIALECTS = ("llama_server", "llama_cpp")
#: The dialects whose servers stream an answer with its usage at the end (`stream_options:
#: {"include_usage": true}`). llama-cpp-python's server streams no usage, so there an answer is asked
#: for whole and passed on in one piece: the recorded call keeps its token counts.
STREAMING_DIALECTS = ("llama_server", "vllm", "openai")

#: Integer ranges up to this size become enums.
MAX_ENUM_RANGE = 64
#: The maxLength given to strings that have no bound of their own.
DEFAULT_MAX_STRING = 600
#: llama.cpp rejects a grammar whose string repeats more than this ("exceeds sane defaults"),
#: and the server then fails the request; longer bounds are lowered to it.
GRAMMAR_MAX_STRING = 1000


def dialect_from_models_listing(payload: dict[str, Any]) -> Dialect:
    """Guess the dialect from a GET /v1/models answer (`owned_by` names the server)."""
    owners = {str(m.get("owned_by", "")).lower() for m in payload.get("data", []) or []}
    if "vllm" in owners:
        return "vllm"
    if "llamacpp" in owners:  # llama-server
        return "llama_server"
    if owners & {"me", "llama.cpp", "llama-cpp"}:  # llama-cpp-python's server says "me"
        return "llama_cpp"
    return "openai"


#: Characters a token is assumed to carry in the worst case seen (random identifiers ~1.5).
CHARS_PER_TOKEN = 1.5


#: Per dialect: tokens the JSON around each key and each string costs besides their text, and the
#: characters a token of string carries in the worst case. llama-server's grammar lets the model lay
#: the JSON out on indented lines, and under its sampling the embedded model writes identifiers of
#: digits and dashes (about one character a token); llama-cpp-python's answers were compact.
LAYOUT: dict[str, tuple[int, int, float]] = {"llama_server": (6, 3, 1.0)}
DEFAULT_LAYOUT = (3, 0, CHARS_PER_TOKEN)


def constrain_schema(schema: dict[str, Any], *, max_tokens: int | None = None,
                     max_string: int = DEFAULT_MAX_STRING,
                     max_enum_range: int = MAX_ENUM_RANGE, dialect: str | None = None) -> dict[str, Any]:
    """A copy of `schema` that a grammar-constrained small model can satisfy exactly.

    Bounded integers become enums and every string gets a maxLength. With `max_tokens`, string
    bounds are scaled down together until the longest answer fits the token limit, so the JSON
    closes before the limit cuts it (the layout the `dialect`'s server allows counted too).
    Lowering a bound is safe: output valid under the copy is valid under the original.
    """
    out = copy.deepcopy(schema)
    strings: list[tuple[dict[str, Any], int]] = []
    keys = _constrain(out, max_string, max_enum_range, strings, 1)
    if max_tokens is not None and strings:
        per_key, per_string, chars_per_token = LAYOUT.get(dialect or "", DEFAULT_LAYOUT)
        layout = per_key * keys + per_string * sum(repeat for _, repeat in strings)
        budget = (max_tokens - 10 - layout) * chars_per_token
        demand = sum(node["maxLength"] * repeat for node, repeat in strings)
        if demand > budget:
            scale = max(budget, 0) / demand
            for node, _ in strings:
                node["maxLength"] = max(int(node.get("minLength", 1)), 8, int(node["maxLength"] * scale))
    return out


def _constrain(node: Any, max_string: int, max_enum_range: int,
               strings: list[tuple[dict[str, Any], int]], repeat: int) -> int:
    """Constrain `node` in place; collect its string nodes; return how many object keys it has."""
    if isinstance(node, list):
        return sum(_constrain(n, max_string, max_enum_range, strings, repeat) for n in node)
    if not isinstance(node, dict):
        return 0
    kind = node.get("type")
    has_choice = any(k in node for k in ("enum", "const"))
    choices = [*node.get("enum", ()), *([node["const"]] if "const" in node else [])]
    bad = [c for c in choices if isinstance(c, str) and ('"' in c or "\\" in c)]
    if bad:
        # llama-cpp-python 0.3.36 writes such a choice into a grammar it then cannot parse, and its
        # server dies on the request: refuse it here, with the reason
        raise ValueError(f"a schema enum/const string containing '\"' or '\\' breaks llama.cpp's grammar: {bad[0]!r}")
    if kind == "integer" and not has_choice:
        low = node.get("minimum", node["exclusiveMinimum"] + 1 if "exclusiveMinimum" in node else None)
        high = node.get("maximum", node["exclusiveMaximum"] - 1 if "exclusiveMaximum" in node else None)
        if low is not None and high is not None and 0 <= high - low < max_enum_range:
            node["enum"] = list(range(int(low), int(high) + 1))
            for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                node.pop(key, None)
    if kind == "string" and not has_choice and "pattern" not in node:
        node["maxLength"] = min(node.get("maxLength", max_string), GRAMMAR_MAX_STRING)
        strings.append((node, repeat))
    keys = len(node.get("properties", {})) * repeat if isinstance(node.get("properties"), dict) else 0
    for key, value in node.items():
        if isinstance(value, (dict, list)):
            inner = repeat * int(node.get("maxItems", 4)) if key == "items" else repeat
            if key == "properties" and isinstance(value, dict):
                keys += sum(_constrain(v, max_string, max_enum_range, strings, inner) for v in value.values())
            else:
                keys += _constrain(value, max_string, max_enum_range, strings, inner)
    return keys


def response_format(dialect: Dialect, schema: dict[str, Any], name: str) -> dict[str, Any]:
    """The `response_format` body field for this dialect."""
    if dialect == "llama_cpp":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}
