"""A pipeline of N model calls (30, 100, ...) with a planted fault, for `rolegraph blame` on long
runs: one node runs N times, each a call of the `worker` role. The faulty call (position `fault`)
answers wrongly with probability q and a wrong answer dooms the run, so in a failed run the decisive
call is known exactly. Answers are opaque tokens (a wrong one is a multiple of 7): neither the
transcript nor the role says which call was wrong.

Noise: other calls "slip" with probability `slip`; more than `max_slips` slips before the fault
also fail the run (failed runs with a wrong fault and few slips have one cause), and they make the
success rate drift along the run. A `second` fault after the first makes two drops: it answers
wrongly (probability `q2`) only when the first one did, and only it decides the run.

    from chain import chain, worker, Chain
    rt = rg.Runtime.from_models({"default": rg.models.FunctionModel(worker)}, traces="runs")
    result = chain.run_sync(Chain(length=30, fault=17), runtime=rt, seed=3)   # then: rolegraph blame RUN
"""

from __future__ import annotations

import random
import re
from typing import Any

from pydantic import BaseModel

import rolegraph as rg
from rolegraph.models import ChatRequest, Message


class Chain(BaseModel):
    length: int = 30
    fault: int = 10
    q: float = 0.2
    """How often the faulty call answers wrongly."""
    slip: float = 0.0
    """How often any other call slips."""
    max_slips: int | None = None
    """If set, more slips than this before the fault also fail the run."""
    second: int | None = None
    """A second fault, after the first: it answers wrongly (probability q2) only if the first did."""
    q2: float = 0.5


class State(Chain):
    answers: list[str] = []


class Done(rg.RunResult):
    success: bool
    answers: list[str]


def wrong(token: str) -> bool:
    return int(token, 16) % 7 == 0


def slipped(token: str) -> bool:
    return int(token, 16) % 7 == 1


async def work(state: State, runtime: rg.Runtime) -> dict[str, Any]:
    i = len(state.answers)
    first_wrong = state.second is not None and i == state.second and wrong(state.answers[state.fault])
    content = (f"call {i} fault {state.fault} q {state.q} slip {state.slip} second {state.second} "
               f"q2 {state.q2} first_wrong {int(first_wrong)}")
    reply = await runtime.model("worker").chat(ChatRequest(messages=(Message(role="user", content=content),), max_tokens=8))
    return {"answers": [*state.answers, reply.text]}


def _finish(state: State) -> dict[str, Any]:
    slips = sum(slipped(a) for a in state.answers[: state.fault])
    deciding = state.second if state.second is not None else state.fault  # a second fault decides alone
    ok = not wrong(state.answers[deciding]) and (state.max_slips is None or slips <= state.max_slips)
    return {"success": ok, "answers": state.answers}


def _more(state: State) -> str:
    return "work" if len(state.answers) < state.length else rg.END


@rg.graph(input=Chain, state=State, result=Done, finish=_finish, roles=["worker"],
          recursion_limit=lambda task: task.length + 10)
def chain(g: rg.StateGraph) -> None:
    g.add_node(work)
    g.add_edge(rg.START, "work")
    g.add_conditional_edges("work", _more, ["work", rg.END])


_REQUEST = re.compile(r"call (\d+) fault (\d+) q ([\d.]+) slip ([\d.]+) second (\w+) q2 ([\d.]+) first_wrong (\d)")


def _token(rng: random.Random, kind: int | None) -> str:
    """A 4-hex-digit token: a multiple of 7 (kind 0), one above a multiple (kind 1), or neither."""
    while True:
        value = rng.randrange(0x1000, 0x10000)
        if (kind is None and value % 7 > 1) or value % 7 == kind:
            return f"{value:04x}"


def worker(request: ChatRequest) -> str:
    """Right or wrong by the request's seed: the faulty call wrong with probability q, the second
    fault wrong with probability q2 when the first was, any other call slipping now and then."""
    m = _REQUEST.match(request.messages[-1].content or "")
    assert m is not None
    i, fault, q, slip = int(m[1]), int(m[2]), float(m[3]), float(m[4])
    second = None if m[5] == "None" else int(m[5])
    rng = random.Random(request.seed)
    if i == fault:
        return _token(rng, 0 if rng.random() < q else None)
    if i == second:
        return _token(rng, 0 if m[7] == "1" and rng.random() < float(m[6]) else None)
    return _token(rng, 1 if rng.random() < slip else None)
