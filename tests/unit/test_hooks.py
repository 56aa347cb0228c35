"""A graph's hooks are checked when the graph is declared: a parameter rolegraph does not pass (a
misspelt `opitons`) is one UserError naming it and what rolegraph passes, never None on every run."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

import rolegraph as rg
from rolegraph import UserError


class Q(BaseModel):
    text: str


class S(BaseModel):
    text: str
    seen: str = ""


class Opts(BaseModel):
    shout: bool = False


def build(g: rg.StateGraph) -> None:
    async def echo(state: S) -> dict[str, Any]:
        return {"seen": state.text}

    g.add_node(echo)
    g.add_edge(rg.START, "echo")
    g.add_edge("echo", rg.END)


def test_a_misspelt_hook_parameter_fails_when_the_graph_is_declared() -> None:
    def prepare(value: Q, opitons: Opts | None = None) -> Q:
        return value

    with pytest.raises(UserError, match=r"graph 'g1': the prepare hook .*'opitons'.* it passes options, runtime, seed"):
        rg.graph(input=Q, state=S, options=Opts, name="g1", prepare=prepare)(build)

    with pytest.raises(UserError, match=r"finish hook .*'state_'"):
        rg.graph(input=Q, state=S, name="g2", finish=lambda state, state_: state)(build)


def test_hooks_that_name_what_rolegraph_passes_are_declared_and_called() -> None:
    calls: list[str] = []

    def prepare(value: Q, *, options: Opts, seed: int, runtime: rg.Runtime) -> Q:
        calls.append(f"prepare seed={seed} shout={options.shout}")
        return value

    def finish(state: S, **everything: Any) -> dict[str, Any]:  # **kwargs takes every argument
        calls.append(f"finish {sorted(everything)}")
        return {"state": state.model_dump()}

    g = rg.graph(input=Q, state=S, options=Opts, name="g3", prepare=prepare, finish=finish,
                 recursion_limit=lambda value, options: 10)(build)
    rt = rg.Runtime.from_models({})
    result = g.run_sync({"text": "hi"}, runtime=rt, seed=3, options={"shout": True})
    assert result.state["seen"] == "hi"
    assert calls == ["prepare seed=3 shout=True", "finish ['error', 'input', 'options', 'run_id', 'seed']"]


def test_a_solver_hook_with_a_misspelt_parameter_is_refused() -> None:
    g = rg.graph(input=Q, state=S, name="g4")(build)
    with pytest.raises(UserError, match=r"solver seed hook .*'sed'"):
        g.solver(seed=lambda case, sed: 0)
    assert g.solver(seed=lambda case, repeat, seed: seed + repeat) is not None
