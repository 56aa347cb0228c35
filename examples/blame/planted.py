"""A six-step pipeline with a planted fault, for `rolegraph blame`: every step asks the `worker`
role; the faulty step answers wrongly with probability q, and a wrong answer there dooms the run,
while the other steps' occasional "unsure" is harmless. `worker` is a deterministic stand-in model
(by the request's seed), so blame's answer can be checked: the decisive call is the faulty step's.

    from planted import planted, worker, Task
    rt = rg.Runtime.from_models({"default": rg.models.FunctionModel(worker)}, traces="runs")
    result = planted.run_sync(Task(fault=3), runtime=rt, seed=1)     # then: rolegraph blame RUN
"""

from __future__ import annotations

import itertools
import random
import re
from typing import Any

from pydantic import BaseModel

import rolegraph as rg
from rolegraph.models import ChatRequest, Message

STEPS = 6


class Task(BaseModel):
    fault: int
    q: float = 0.2
    """How often the faulty step answers wrongly."""
    max_unsure: int | None = None
    """If set, more "unsure" answers than this before the faulty step also fail the run."""


class State(BaseModel):
    fault: int
    q: float
    max_unsure: int | None = None
    seed: int = 0
    answers: list[str] = []


class Done(rg.RunResult):
    success: bool
    answers: list[str]


def _step(i: int) -> Any:
    async def node(state: State, runtime: rg.Runtime) -> dict[str, Any]:
        request = ChatRequest(messages=(Message(role="user", content=f"step {i} fault {state.fault} q {state.q}"),),
                              seed=state.seed * 100 + i)
        # the faulty step is the `decider` role's (falling back to `worker`'s model when it has none)
        reply = await runtime.model("decider" if i == state.fault else "worker").chat(request)
        return {"answers": [*state.answers, reply.text]}

    node.__name__ = f"step{i}"
    return node


def _finish(state: State) -> dict[str, Any]:
    unsure = state.answers[: state.fault].count("unsure")
    ok = state.answers[state.fault] != "wrong" and (state.max_unsure is None or unsure <= state.max_unsure)
    return {"success": ok, "answers": state.answers}


@rg.graph(input=Task, state=State, result=Done, finish=_finish, roles=["worker", "decider"])
def planted(g: rg.StateGraph) -> None:
    names = [f"step{i}" for i in range(STEPS)]
    for i in range(STEPS):
        g.add_node(_step(i))
    for a, b in itertools.pairwise([rg.START, *names, rg.END]):
        g.add_edge(a, b)


def worker(request: ChatRequest) -> str:
    """Right or wrong by the request's seed; wrong at the faulty step with probability q, and
    'unsure' (harmless) elsewhere now and then."""
    m = re.match(r"step (\d+) fault (\d+) q ([\d.]+)", request.messages[-1].content or "")
    assert m is not None
    step, fault, q = int(m[1]), int(m[2]), float(m[3])
    rng = random.Random(request.seed)
    if step == fault:
        return "wrong" if rng.random() < q else "right"
    return "unsure" if rng.random() < 0.3 else "right"


def over_http(body: dict[str, Any]) -> str:
    """`worker` as a stub OpenAI-compatible server's reply (rolegraph.models.servers.loadtest): the
    model named "careful" never makes the fault."""
    text = body["messages"][-1]["content"]
    if body.get("model") == "careful":
        text = re.sub(r"q [\d.]+", "q 0", text)
    return worker(ChatRequest(messages=(Message(role="user", content=text),), seed=body.get("seed")))
