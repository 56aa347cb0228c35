"""Chain-of-LoRA on CPU for real: a LoRA adapter trained on the embedded base model with peft,
served beside the base model, and chosen per role by model name over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rolegraph import Runtime
from rolegraph.graphs import videomind as vm
from rolegraph.models.servers.vllm import VllmSpec, runtime_config
from rolegraph.tools.video import Scene, write_synthetic_video
from rolegraph.traces import ModelCall, TraceStore

pytest.importorskip("peft")


async def test_a_trained_planner_adapter_learns_its_format_and_is_served_per_role(tmp_path: Path) -> None:
    from rolegraph.models import adapters as A

    model, tok = A.load_base()  # converted once from the packaged GGUF, then cached
    report = A.train_adapter(model, tok, vm.role_examples("planner", 8), tmp_path / "planner", steps=16, seed=0)
    assert sum(report.losses[-4:]) / 4 < sum(report.losses[:4]) / 4 / 4  # the format is learnt fast
    models = A.AdapterModels(None, {"planner": tmp_path / "planner"})
    held_out = vm.role_examples("planner", 3, seed=99)
    with_adapter = [vm.format_ok("planner", models.generate("planner", ex.messages, max_tokens=96)[0]) for ex in held_out]
    assert all(with_adapter)

    video = tmp_path / "v.mp4"
    write_synthetic_video(video, [Scene(seconds=3, colour="red"), Scene(seconds=3, colour="blue", shape="circle")])
    async with A.AdapterServer(models) as server:
        spec = VllmSpec(base="base", loras={"planner": str(tmp_path / "planner")}, port=server.port)
        toml = tmp_path / "rolegraph.toml"
        toml.write_text(runtime_config(spec, list(vm.ROLES), endpoint="adapters").replace('"vllm"', '"openai"')
                        + f'\n[traces]\ndir = "{tmp_path / "runs"}"\n')
        rt = Runtime.load(toml)
        try:
            result = await vm.run(vm.VideoQuestion(video=str(video), question="What colour is behind the circle?",
                                                   options=["red", "blue"]), runtime=rt)
        finally:
            await rt.aclose()
    assert result.plan_parsed  # the adapter's plan is readable: the route came from it, not the fallback
    calls = TraceStore(tmp_path / "runs").load(result.trace_id).of_kind(ModelCall)
    assert {(c.role, c.response.model) for c in calls if c.response} >= {("planner", "planner"), ("answerer", "base")}
    assert json.loads(calls[0].response.text if calls[0].response else "[]")[0]["type"] == "grounder"
