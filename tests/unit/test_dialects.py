"""Schemas a small grammar-constrained model can satisfy, and per-server dialects."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from rolegraph.models import constrain_schema
from rolegraph.models._dialects import (
    GRAMMAR_MAX_STRING,
    dialect_from_models_listing,
    response_format,
)


class Pick(BaseModel):
    index: int = Field(ge=0, le=3)
    big: int = Field(ge=0, le=10_000)
    reason: str
    tags: list[str] = Field(max_length=5)
    essay: str = Field(max_length=5000)


def test_bounded_ints_become_enums_and_strings_get_bounds() -> None:
    original = Pick.model_json_schema()
    s = constrain_schema(original)
    props = s["properties"]
    assert props["index"]["enum"] == [0, 1, 2, 3] and "maximum" not in props["index"]
    assert "enum" not in props["big"] and props["big"]["maximum"] == 10_000  # too wide for an enum
    assert props["reason"]["maxLength"] == 600
    assert props["essay"]["maxLength"] == GRAMMAR_MAX_STRING  # llama.cpp rejects longer repeats
    assert "maxLength" not in original["properties"]["reason"]  # the input is not modified


def test_string_bounds_shrink_to_fit_max_tokens() -> None:
    s = constrain_schema(Pick.model_json_schema(), max_tokens=200)
    props = s["properties"]
    longest = props["reason"]["maxLength"] + 5 * props["tags"]["items"]["maxLength"] + props["essay"]["maxLength"]
    assert longest <= 200 * 1.5
    assert props["essay"]["maxLength"] > props["reason"]["maxLength"]  # proportions are kept


def test_dialect_detection_and_formats() -> None:
    assert dialect_from_models_listing({"data": [{"id": "x", "owned_by": "vllm"}]}) == "vllm"
    assert dialect_from_models_listing({"data": [{"id": "x", "owned_by": "me"}]}) == "llama_cpp"
    assert dialect_from_models_listing({"data": [{"id": "x", "owned_by": "openai"}]}) == "openai"
    schema = {"type": "object"}
    assert response_format("llama_cpp", schema, "n") == {"type": "json_object", "schema": schema}
    assert response_format("vllm", schema, "n")["json_schema"] == {"name": "n", "schema": schema}


def test_enum_strings_with_double_quotes_are_refused_before_they_reach_llama_cpp() -> None:
    schema = {"type": "object", "properties": {"action": {"type": "string", "enum": ['grab(name="cup")']}}}
    with pytest.raises(ValueError, match=r"breaks llama\.cpp's grammar"):
        constrain_schema(schema)
    ok = {"type": "object", "properties": {"action": {"type": "string", "enum": ["grab(name='cup')"]}}}
    assert constrain_schema(ok)["properties"]["action"]["enum"] == ["grab(name='cup')"]
