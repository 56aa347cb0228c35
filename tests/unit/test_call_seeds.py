"""A run's seed reaches every model call: each call without a seed of its own is sent one derived from
the run's seed and its place in the run (a role's configured seed and an explicit one win), recorded
in its request, so the same graph, input, settings and seed make the same run; replays of traces
recorded before calls were seeded still send what they recorded. Over real HTTP."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import rolegraph as rg
from rolegraph.config import EndpointConfig, RoleConfig, RuntimeConfig
from rolegraph.evals import EvalStore, run_eval
from rolegraph.evals._core import Benchmark, Case
from rolegraph.graphs import replay_run
from rolegraph.models import ChatRequest, FunctionModel
from rolegraph.models.servers.loadtest import LoadTestServer
from rolegraph.prompts import PromptLibrary
from rolegraph.traces import ModelCall, Trace, TraceStore, first_divergence
from rolegraph.traces._seeds import call_seed


class Topic(BaseModel):
    topic: str


class Essay(BaseModel):
    topic: str
    draft: str = ""
    left: str = ""
    right: str = ""
    verdict: str = ""


class Verdict(rg.RunResult):
    verdict: str = ""


writer = rg.Agent(name="writer", prompt="seeds/write", output=str)
critic = rg.Agent(name="critic", prompt="seeds/critique", output=str)
judge = rg.Agent(name="judge", prompt="seeds/judge", output=str)


async def write(state: Essay, runtime: rg.Runtime) -> dict[str, Any]:
    return {"draft": await writer.run(runtime, topic=state.topic)}


async def left(state: Essay, runtime: rg.Runtime) -> dict[str, Any]:
    return {"left": await critic.run(runtime, draft=state.draft, side="left")}


async def right(state: Essay, runtime: rg.Runtime) -> dict[str, Any]:
    return {"right": await critic.run(runtime, draft=state.draft, side="right")}


async def decide(state: Essay, runtime: rg.Runtime) -> dict[str, Any]:
    return {"verdict": await judge.run(runtime, seed=5, left=state.left, right=state.right)}  # an explicit seed


@rg.graph(input=Topic, state=Essay, result=Verdict, agents=[writer, critic, judge])
def essay(g: rg.StateGraph) -> None:
    g.add_node(write)
    g.add_node(left)  # two parallel branches of one step: each call keeps its own seed whichever ends first
    g.add_node(right)
    g.add_node(decide)
    g.add_edge(rg.START, "write")
    g.add_edge("write", "left")
    g.add_edge("write", "right")
    g.add_edge(["left", "right"], "decide")


@pytest.fixture
def prompts(tmp_path: Path) -> PromptLibrary:
    folder = tmp_path / "prompts" / "seeds"
    folder.mkdir(parents=True)
    (folder / "write.j2").write_text("{% block user %}Write about {{ topic }}.{% endblock %}")
    (folder / "critique.j2").write_text("{% block user %}Critique from the {{ side }}: {{ draft }}{% endblock %}")
    (folder / "judge.j2").write_text("{% block user %}Judge: {{ left }} / {{ right }}{% endblock %}")
    return PromptLibrary(tmp_path / "prompts")


def seeded_reply(body: dict[str, Any]) -> str:
    """A server that honours seeds: the same request with the same seed gets the same answer."""
    return f"{body['messages'][-1]['content'][:12]} #{body.get('seed')}"


def runtime(url: str, store: TraceStore, prompts: PromptLibrary) -> rg.Runtime:
    config = RuntimeConfig(endpoints={"stub": EndpointConfig(base_url=url, dialect="openai")},
                           roles={"default": RoleConfig(endpoint="stub", model="m"),
                                  "writer": RoleConfig(endpoint="stub", model="m", seed=7)})
    return rg.Runtime(config, traces=store, prompts=prompts)


def calls(trace: Trace) -> list[ModelCall]:
    return sorted(trace.of_kind(ModelCall), key=lambda c: (c.node_key or "", c.call_index))


async def test_each_call_is_sent_the_seed_of_its_place_in_the_run_and_a_configured_or_explicit_seed_wins(
        tmp_path: Path, prompts: PromptLibrary) -> None:
    sent: list[dict[str, Any]] = []

    def reply(body: dict[str, Any]) -> str:
        sent.append(body)
        return seeded_reply(body)

    store = TraceStore(tmp_path / "runs")
    async with LoadTestServer(delay_s=0, reply=reply) as server:
        async with runtime(server.base_url, store, prompts) as rt:
            first = await essay.run({"topic": "tides"}, runtime=rt, seed=3)
            again = await essay.run({"topic": "tides"}, runtime=rt, seed=3)
            other = await essay.run({"topic": "tides"}, runtime=rt, seed=4)
        made = server.requests
        a, b, c = (store.load(r.run_id or "") for r in (first, again, other))
        replayed = await replay_run(a, store=store, library=prompts)
        assert server.requests == made  # the replay asked the server nothing
    by_key = {call.node_key: call.request.seed for call in calls(a)}
    assert by_key == {"write@1": 7,  # the writer's configured seed
                      "left@2": call_seed(3, "left@2", 0, 0), "right@2": call_seed(3, "right@2", 0, 0),
                      "decide@3": 5}  # the judge's explicit one
    assert by_key["left@2"] != by_key["right@2"]
    assert sorted(body["seed"] for body in sent[:4]) == sorted(s or 0 for s in by_key.values())  # sent is recorded
    assert first_divergence(a, b) is None and [x.request for x in calls(a)] == [x.request for x in calls(b)]
    other_seeds = {call.node_key: call.request.seed for call in calls(c)}
    assert other_seeds["write@1"] == 7 and other_seeds["decide@3"] == 5
    assert other_seeds["left@2"] == call_seed(4, "left@2", 0, 0) != by_key["left@2"]
    now = store.load(replayed.run_id or "")
    assert now.finished is not None and now.finished.totals.replayed_calls == 4
    assert [x.request for x in calls(now)] == [x.request for x in calls(a)]
    assert a.started.manifest.seed_calls and a.started.manifest.role_seeds == {"critic": None, "default": None, "judge": None,
                                                                         "writer": 7}


def as_recorded_before_seeds(trace: Trace, to: Path) -> Trace:
    """A copy of `trace` as rolegraph wrote it before calls were seeded: no seed in the manifest's say,
    and each request without the seed it was not given explicitly (the judge's 5 stays)."""
    shutil.copytree(trace.dir, to)
    lines = []
    for line in (to / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["kind"] == "run_started":
            event["manifest"].pop("seed_calls")
            event["manifest"].pop("role_seeds")
        elif event["kind"] == "model_call" and event["request"]["seed"] != 5:
            event["request"]["seed"] = None
            event["fingerprint"] = ChatRequest.model_validate(event["request"]).fingerprint
        lines.append(json.dumps(event))
    (to / "events.jsonl").write_text("\n".join(lines) + "\n")
    return Trace.load(to)


async def test_a_trace_recorded_before_calls_were_seeded_replays_sending_what_it_recorded(
        tmp_path: Path, prompts: PromptLibrary) -> None:
    store = TraceStore(tmp_path / "runs")
    async with LoadTestServer(delay_s=0, reply=seeded_reply) as server, runtime(server.base_url, store, prompts) as rt:
        result = await essay.run({"topic": "tides"}, runtime=rt, seed=3)
    old = as_recorded_before_seeds(store.load(result.run_id or ""), tmp_path / "old" / (result.run_id or ""))
    assert not old.started.manifest.seed_calls
    assert {c.node_key: c.request.seed for c in calls(old)} == {"write@1": None, "left@2": None, "right@2": None,
                                                                  "decide@3": 5}
    replayed = await replay_run(old, store=store, library=prompts)  # offline: no server runs now
    now = store.load(replayed.run_id or "")
    assert now.finished is not None and now.finished.totals.replayed_calls == 4
    assert [c.request for c in calls(now)] == [c.request for c in calls(old)]


async def test_evaluation_repeats_get_distinct_seeds_and_the_same_evaluation_again_the_same_runs(
        tmp_path: Path, prompts: PromptLibrary) -> None:
    store = TraceStore(tmp_path / "runs")
    cases = [Case(id=f"c{i}", input={"topic": t}) for i, t in enumerate(["tides", "moss"])]
    runs: list[dict[tuple[str, int], Trace]] = []
    async with LoadTestServer(delay_s=0, reply=seeded_reply) as server, runtime(server.base_url, store, prompts) as rt:
        for n in range(2):
            results = EvalStore(tmp_path / f"eval{n}" / "results.sqlite")
            bench = Benchmark(name="essay", cases=lambda: iter(cases), solver=essay.solver(), scorers=[])
            await run_eval(bench, rt, store=results, repeats=3, seed=10, progress=False)
            runs.append({(r.case_id, r.repeat): store.load(r.run_id or "") for r in results.records()})
    first, second = runs
    seeds = {pair: calls(trace)[1].request.seed for pair, trace in first.items()}  # the left critic's
    for case in ("c0", "c1"):  # every repeat of a case its own
        assert len({seeds[case, repeat] for repeat in range(3)}) == 3
    identical = [pair for pair in first if first_divergence(first[pair], second[pair]) is None]
    assert len(identical) == 6


async def test_trace_diff_says_when_a_seeded_request_was_not_reproduced_and_when_it_carried_no_seed(
        tmp_path: Path, prompts: PromptLibrary) -> None:
    counter = itertools.count()
    store = TraceStore(tmp_path / "runs")
    async with rg.Runtime.from_models({"default": FunctionModel(lambda request: f"answer {next(counter)}")},
                                      traces=store, prompts=prompts) as rt:  # a server that ignores seeds
        a, b = [store.load((await essay.run({"topic": "tides"}, runtime=rt, seed=0)).run_id or "") for _ in range(2)]
    seed = call_seed(0, "write@1", 0, 0)
    found = first_divergence(a, b)
    assert found is not None and found.detail == (
        f"step 0 (write) call 0: same request, different answers: the server did not reproduce a seeded request "
        f"(seed {seed})")
    old_a, old_b = (as_recorded_before_seeds(t, tmp_path / "old" / t.run_id) for t in (a, b))
    found = first_divergence(old_a, old_b)
    assert found is not None and found.detail == (
        "step 0 (write) call 0: same request, different answers: the request carried no seed, so the server sampled "
        "afresh")
