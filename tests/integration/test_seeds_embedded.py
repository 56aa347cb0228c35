"""The same seed gives the same run on the real embedded server (llama-server honours a request's seed):
the same graph, input and seed run twice beside other runs give identical traces, a different seed a
different first answer, and two evaluations with the same seeds the same runs end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import rolegraph as rg
from rolegraph.config import EndpointConfig, RoleConfig, RuntimeConfig
from rolegraph.evals import EvalStore, run_eval
from rolegraph.evals._core import Benchmark, Case
from rolegraph.models import ChatModel, ChatRequest, ChatResponse, OpenAICompatModel
from rolegraph.prompts import PromptLibrary
from rolegraph.traces import ModelCall, Trace, TraceStore, first_divergence


class Topic(BaseModel):
    topic: str


class Pair(BaseModel):
    topic: str
    idea: str = ""
    title: str = ""


class Titled(rg.RunResult):
    idea: str = ""
    title: str = ""


thinker = rg.Agent(name="thinker", prompt="seeds/idea", output=str, max_tokens=24, temperature=1.0)
titler = rg.Agent(name="titler", prompt="seeds/title", output=str, max_tokens=12, temperature=1.0)


async def think(state: Pair, runtime: rg.Runtime) -> dict[str, Any]:
    return {"idea": await thinker.run(runtime, topic=state.topic)}


async def title(state: Pair, runtime: rg.Runtime) -> dict[str, Any]:
    return {"title": await titler.run(runtime, idea=state.idea)}


@rg.graph(input=Topic, state=Pair, result=Titled, agents=[thinker, titler])
def ideas(g: rg.StateGraph) -> None:
    g.add_node(think)
    g.add_node(title)
    g.add_edge(rg.START, "think")
    g.add_edge("think", "title")


class Unseeded:
    """Sends each request without its seed: the wire as it was before runs seeded their calls."""

    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner

    async def chat(self, request: ChatRequest) -> ChatResponse:
        return await self.inner.chat(ChatRequest.model_validate({**request.model_dump(), "seed": None}))

    async def aclose(self) -> None:
        await self.inner.aclose()


def runtime(url: str, tmp_path: Path, *, unseeded: bool = False) -> rg.Runtime:
    folder = tmp_path / "prompts" / "seeds"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "idea.j2").write_text("{% block user %}Give one surprising idea about {{ topic }}.{% endblock %}")
    (folder / "title.j2").write_text("{% block user %}A short title for: {{ idea }}{% endblock %}")
    config = RuntimeConfig(endpoints={"local": EndpointConfig(base_url=url)},
                           roles={"default": RoleConfig(endpoint="local", model="smollm2-135m")})
    models = {"default": Unseeded(OpenAICompatModel(url, "smollm2-135m"))} if unseeded else None
    return rg.Runtime(config, traces=TraceStore(tmp_path / "runs"), prompts=PromptLibrary(tmp_path / "prompts"),
                      models=models)


def first_answer(trace: Trace) -> str:
    call = min(trace.of_kind(ModelCall), key=lambda c: c.step or 0)
    assert call.response is not None
    return call.response.text


async def identical_share(rt: rg.Runtime, tmp_path: Path, name: str) -> tuple[int, int]:
    """Two evaluations of `ideas` (2 cases x 3 repeats, seed 0): how many (case, repeat) ran the same."""
    cases = [Case(id="tides", input={"topic": "tides"}), Case(id="moss", input={"topic": "moss"})]
    traces = rt.traces
    assert traces is not None
    runs = []
    for n in range(2):
        store = EvalStore(tmp_path / f"{name}{n}" / "results.sqlite")
        bench = Benchmark(name="ideas", cases=lambda: iter(cases), solver=ideas.solver(), scorers=[])
        await run_eval(bench, rt, store=store, repeats=3, seed=0, concurrency=4, progress=False)
        runs.append({(r.case_id, r.repeat): traces.load(r.run_id or "") for r in store.records()})
    same = sum(first_divergence(runs[0][pair], runs[1][pair]) is None for pair in runs[0])
    return same, len(runs[0])


async def test_the_same_seed_gives_the_same_run_beside_other_runs_and_another_seed_another(
        embedded_url: str, tmp_path: Path) -> None:
    async with runtime(embedded_url, tmp_path) as rt:
        results = await asyncio.gather(
            ideas.run({"topic": "tides"}, runtime=rt, seed=0), ideas.run({"topic": "moss"}, runtime=rt, seed=7),
            ideas.run({"topic": "tides"}, runtime=rt, seed=0), ideas.run({"topic": "owls"}, runtime=rt, seed=9),
            ideas.run({"topic": "tides"}, runtime=rt, seed=1))
        assert rt.traces is not None
        a, _, b, _, other = (rt.traces.load(r.run_id or "") for r in results)
        assert all(r.status == "ok" for r in results)
        assert first_divergence(a, b) is None  # the same requests, the same answers, the same states
        assert first_answer(other) != first_answer(a)
        seeded = await identical_share(rt, tmp_path, "seeded")
    async with runtime(embedded_url, tmp_path, unseeded=True) as rt:
        unseeded = await identical_share(rt, tmp_path, "unseeded")
    print(f"\ntwo evaluations, same seeds: identical end to end {seeded[0]} of {seeded[1]} (seeded calls); "
          f"{unseeded[0]} of {unseeded[1]} with the seed left out of each request (as before)")
    assert seeded == (6, 6)
