"""A model call's event is written in one place, by the recorder, when the call's block ends: with
the agent attempt's verdict (accept / reject) when an agent made it, and even when the code that
reads the answer raises."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import rolegraph as rg
from rolegraph.models import ChatRequest, FunctionModel, Message
from rolegraph.traces import AgentRetry, Attempt, ModelCall, TraceStore


class Verdict(BaseModel):
    ok: bool


class Q(BaseModel):
    text: str


class S(BaseModel):
    text: str
    ok: bool = False


def _graph(tmp_path: Path, name: str, node: Any, agents: Any = ()) -> rg.Graph[Any]:
    prompts = tmp_path / "prompts"
    prompts.mkdir(exist_ok=True)
    (prompts / "judge.j2").write_text("{% block user %}Judge: {{ text }}{% endblock %}")

    def build(g: rg.StateGraph) -> None:
        g.add_node("judge", node)
        g.add_edge(rg.START, "judge")
        g.add_edge("judge", rg.END)

    build.__module__ = __name__
    return rg.graph(input=Q, state=S, name=name, prompts=str(prompts), agents=agents)(build)


async def test_an_agents_rejected_and_accepted_attempts_are_each_one_call_event(tmp_path: Path) -> None:
    judge = rg.Agent(name="judge", prompt="judge", output=Verdict)

    async def node(state: S, runtime: rg.Runtime) -> dict[str, Any]:
        return {"ok": (await judge.run(runtime, text=state.text)).ok}

    answers = iter(["not json", '{"ok": true}'])
    store = TraceStore(tmp_path / "runs")
    async with rg.Runtime.from_models({"default": FunctionModel(lambda r: next(answers))}, traces=store) as rt:
        result = await _graph(tmp_path, "judged", node, [judge]).run({"text": "x"}, runtime=rt)
    trace = store.load(result.run_id or "")
    calls = trace.of_kind(ModelCall)
    assert [(c.agent, c.attempt, c.parsed, bool(c.error)) for c in calls] == [
        ("judge", 0, None, True), ("judge", 1, {"ok": True}, False)]
    assert calls[0].prompt == "judge" and calls[0].prompt_sha256
    kinds = [type(e).__name__ for e in trace if isinstance(e, (ModelCall, AgentRetry))]
    assert kinds == ["AgentRetry", "ModelCall", "ModelCall"]  # the retry is written as it happens


async def test_a_call_whose_reader_raises_is_still_written_once(tmp_path: Path) -> None:
    async def node(state: S, runtime: rg.Runtime) -> dict[str, Any]:
        request = ChatRequest(messages=(Message(role="user", content=state.text),))
        async with runtime.model("judge").recorded(request, attempt=Attempt("reader", 0)) as call:
            raise RuntimeError(f"cannot read {call.response.text!r}")

    store = TraceStore(tmp_path / "runs")
    async with rg.Runtime.from_models({"default": FunctionModel(lambda r: "an answer")}, traces=store) as rt:
        with pytest.raises(RuntimeError, match="cannot read 'an answer'"):
            await _graph(tmp_path, "raising", node).run({"text": "x"}, runtime=rt)
    (run,) = store.list()
    (call,) = store.load(run.run_id).of_kind(ModelCall)
    assert call.agent == "reader" and call.response is not None and call.response.text == "an answer"
