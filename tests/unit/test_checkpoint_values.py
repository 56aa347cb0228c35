"""Whatever a model answers, a graph run with checkpoints ends with its result or AgentOutputError:
integers of any size survive the checkpoint exactly, NaN and Infinity go back to the model as
invalid output, and the serializer never raises."""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import rolegraph as rg
from rolegraph import Agent, AgentOutputError, Runtime
from rolegraph.graphs._run import CHECKPOINTS, RedactingSerde, state_types
from rolegraph.graphs._saver import open_saver
from rolegraph.models import FunctionModel
from rolegraph.prompts import PromptLibrary
from rolegraph.traces import Redactor, TraceStore


class Out(BaseModel):
    n: int = 0
    x: float = 0.0
    answer: Any = None
    note: str = ""


fuzzed = Agent(name="fuzzed", prompt="fuzzed/ask", output=Out, max_attempts=2)


class Question(BaseModel):
    q: str


class State(BaseModel):
    q: str
    out: Out | None = None
    """The parsed answer kept in the state as it is, so the checkpoint holds it."""


async def ask(state: State, runtime: rg.Runtime) -> dict[str, Any]:
    return {"out": await fuzzed.run(runtime, q=state.q)}


@rg.graph(input=Question, state=State, name="checkpoint_values", agents=[fuzzed])
def checkpoint_values(g: rg.StateGraph) -> None:
    g.add_node(ask)
    g.add_edge(rg.START, "ask")
    g.add_edge("ask", rg.END)


@pytest.fixture
def library(tmp_path: Path) -> PromptLibrary:
    (tmp_path / "prompts" / "fuzzed").mkdir(parents=True)
    (tmp_path / "prompts" / "fuzzed" / "ask.j2").write_text("Answer {{ q }}")
    return PromptLibrary(tmp_path / "prompts")


def _checkpointed(run_dir: Path) -> Any:
    """The final state's `out` as the checkpoint database gives it back."""
    async def read() -> Any:
        async with aiosqlite.connect(str(run_dir / CHECKPOINTS)) as conn:
            saver = await open_saver(conn, RedactingSerde(Redactor(env={}), types=state_types(State)))
            got = await saver.aget_tuple({"configurable": {"thread_id": run_dir.name}})
            assert got is not None
            return got.checkpoint["channel_values"]["out"]
    return asyncio.run(read())


def _run(tmp_path: Path, library: PromptLibrary, *answers: str) -> tuple[Any, FunctionModel]:
    """One checkpointed run whose model gives `answers` in turn (the last one again after that)."""
    said = list(answers)
    model = FunctionModel(lambda request: said.pop(0) if len(said) > 1 else said[0])
    rt = Runtime.from_models({"default": model}, prompts=library, traces=TraceStore(tmp_path / f"runs-{uuid.uuid4().hex}"))
    return rt.run_sync(checkpoint_values.run(Question(q="go"), runtime=rt)), model


def test_integers_beyond_64_bits_survive_the_checkpoint_exactly(tmp_path: Path, library: PromptLibrary) -> None:
    big = {"n": 2**64, "answer": [-(2**63) - 1, {"k": 10**300}, 2**64 - 1], "x": 2**70}
    result, _ = _run(tmp_path, library, json.dumps(big))
    assert result.error is None
    out = _checkpointed(Path(result.trace_dir))
    assert isinstance(out, Out) and out.n == 2**64 and out.answer == big["answer"] and out.x == float(2**70)


@pytest.mark.parametrize("bad", ['"NaN"', '"Infinity"', '"-inf"'])
def test_nan_or_infinity_in_a_float_field_goes_back_to_the_model(
        tmp_path: Path, library: PromptLibrary, bad: str) -> None:
    result, model = _run(tmp_path, library, f'{{"x": {bad}}}', '{"x": 1.5}')
    assert result.error is None and result.state["out"]["x"] == 1.5
    feedback = " ".join(m.content or "" for m in model.requests[1].messages[2:])
    assert "x: Input should be a finite number" in feedback
    with pytest.raises(AgentOutputError, match="finite number"):
        _run(tmp_path, library, f'{{"x": {bad}}}')


BIG = st.one_of(st.integers(2**63, 2**300), st.integers(-(2**300), -(2**63) - 1), st.integers(-5, 5))
CONSTANT = st.sampled_from(["NaN", "Infinity", "-Infinity", '"NaN"', '"Infinity"', '"-inf"', '"nan"', "1e308", "-0.0"])
ODD = st.text(st.one_of(st.characters(), st.integers(0xD800, 0xDFFF).map(chr)), max_size=20).map(json.dumps)
SCALAR = st.one_of(BIG.map(str), CONSTANT, ODD)
DEEP = st.builds(lambda n, v: "[" * n + v + "]" * n, st.integers(1, 126), SCALAR)
VALUE = st.one_of(SCALAR, DEEP, st.lists(SCALAR, max_size=4).map(lambda vs: "[" + ", ".join(vs) + "]"))
ANSWER = st.builds(lambda n, x, a, note: f'{{"n": {n}, "x": {x}, "answer": {a}, "note": {note}}}',
                   BIG.map(str), st.one_of(CONSTANT, BIG.map(str), st.floats(allow_nan=False).map(repr)), VALUE, ODD)


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answer=ANSWER)
def test_a_fuzzed_answer_ends_checkpointed_or_as_agent_output_error(
        tmp_path: Path, library: PromptLibrary, answer: str) -> None:
    try:
        result, _ = _run(tmp_path, library, answer)
    except AgentOutputError:
        return
    assert result.error is None
    out = _checkpointed(Path(result.trace_dir))
    assert isinstance(out, Out) and math.isfinite(out.x)
    assert out.model_dump(mode="json") == result.state["out"]  # the checkpoint gives back what the model said
