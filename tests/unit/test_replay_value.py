"""Replay as one value: a `Replay` given to a runtime when it is made decides, in one place, what is
answered from the trace and what runs live, for models, tools and prompts alike; two runtimes with
different replays in one process never see each other's."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rolegraph import Runtime
from rolegraph.graphs import refinebot
from rolegraph.graphs._run import run_graph
from rolegraph.models import ScriptedModel
from rolegraph.prompts import PromptLibrary, load_template_file
from rolegraph.traces import ForkOrigin, ModelCall, Point, Replay
from tests.unit.test_refinebot import rewrite
from tests.unit.test_traces import record

ROOT = Path(__file__).resolve().parents[2]


def test_a_fork_point_splits_calls_within_its_step_and_whole_steps_for_tools(tmp_path: Path) -> None:
    trace = object()  # answers() reads only the fork point
    fork = Replay(trace, live_from=Point(2, 1))  # type: ignore[arg-type]
    assert [fork.answers(s, c) for s, c in [(1, 9), (2, 0), (2, 1), (3, 0)]] == [True, True, False, False]
    assert [fork.answers(s) for s in (1, 2, 3)] == [True, False, False]  # a step's tools and memories
    assert fork.answers(None) and fork.answers(None, 4)  # outside any node step
    replay = Replay(trace)  # type: ignore[arg-type]
    assert all(replay.answers(s, c) for s in range(5) for c in range(3))
    assert Replay(trace, fill_gaps=True).origin is None and not Replay(trace, fill_gaps=True).reads_memory  # type: ignore[arg-type]


async def test_two_runtimes_with_different_replays_run_concurrently_apart(tmp_path: Path) -> None:
    store, original = await record(tmp_path)
    trace = store.load(original.run_id or "")
    # steps: 0 evaluate, 1 reflect, 2 rewrite (2 calls), 3 check, 4 evaluate
    live_scripts = dict(evaluator=["Still the answer is (c)"], reflector=[], rewriter=[rewrite()],
                        checker=[{"is_equivalent": True, "explanation": "same"}])
    live = Runtime.from_models({r: ScriptedModel(live_scripts[r], name=f"live-{r}") for r in refinebot.ROLES})
    pure = Runtime.from_models({}, traces=store, replay=Replay(trace))
    fork = Runtime.from_models({}, traces=store, replay=Replay(trace, live_from=Point(2)), live=live)
    manifest = trace.started.manifest
    replayed, forked = await asyncio.gather(run_graph(refinebot.refinebot, manifest, pure),
                                            run_graph(refinebot.refinebot, manifest, fork))
    await live.aclose()  # the fork used every live step, the replay none
    assert replayed.exit_code == original.exit_code and forked.exit_code is refinebot.ExitCode.FAIL_ITERATIONS
    a, b = store.load(replayed.run_id or ""), store.load(forked.run_id or "")
    assert all(c.replayed for c in a.of_kind(ModelCall)) and len(a.of_kind(ModelCall)) == len(trace.of_kind(ModelCall))
    assert [c.replayed for c in b.of_kind(ModelCall)] == [True, True, False, False, False]
    assert a.started.parent == ForkOrigin(run_id=trace.run_id)
    assert b.started.parent == ForkOrigin(run_id=trace.run_id, live_from=2)
    assert pure.calls_answered == len(trace.of_kind(ModelCall)) and fork.calls_answered == 2


async def test_a_forks_changed_prompt_is_rendered_only_in_its_live_part(tmp_path: Path) -> None:
    store, original = await record(tmp_path)
    trace = store.load(original.run_id or "")
    source = (ROOT / "rolegraph" / "prompts" / "refinebot" / "evaluate.j2").read_text()
    changed = tmp_path / "evaluate.j2"
    changed.write_text(source.replace("Reason step by step, briefly.", "Think it through carefully."))
    template = load_template_file("refinebot/evaluate", changed)
    live = Runtime.from_models({r: ScriptedModel(["The answer is (b)"] if r == "evaluator" else [], name=f"live-{r}")
                                for r in refinebot.ROLES})
    replay = Replay(trace, live_from=Point(4), prompts={"refinebot/evaluate": template},
                    prompt_files={"evaluator": str(changed)})
    fork = Runtime.from_models({}, traces=store, prompts=PromptLibrary(), replay=replay, live=live)
    result = await run_graph(refinebot.refinebot, trace.started.manifest, fork)
    await live.aclose()
    calls = store.load(result.run_id or "").of_kind(ModelCall)
    evaluations = [c for c in calls if c.role == "evaluator"]
    assert [c.replayed for c in evaluations] == [True, False]
    assert "Reason step by step, briefly." in (evaluations[0].request.messages[-1].content or "")
    assert "Think it through carefully." in (evaluations[1].request.messages[-1].content or "")
    assert store.load(result.run_id or "").started.parent == ForkOrigin(
        run_id=trace.run_id, live_from=4, changes={"prompt:evaluator": str(changed)})


def test_the_runtime_offers_no_replay_attribute_to_set_from_outside() -> None:
    rt = Runtime.from_models({})
    for gone in ("memory_source", "memory_live_from"):
        assert not hasattr(rt, gone)
    assert rt.replay is None and rt.tool_source is None
    with pytest.raises(AttributeError):
        Replay(object(), live_from=Point(1)).live_from = None  # type: ignore[arg-type, misc]

