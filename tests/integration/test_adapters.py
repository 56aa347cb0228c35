"""Chain-of-LoRA on CPU for real: a LoRA adapter trained on the embedded base model with peft,
converted to GGUF with llama.cpp's converter, loaded beside the base model on one llama-server,
and chosen per role by model name over HTTP."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from rolegraph import Runtime
from rolegraph.graphs import videomind as vm
from rolegraph.models.servers import EmbeddedConfig, EmbeddedServer
from rolegraph.tools.video import Scene, write_synthetic_video
from rolegraph.traces import ModelCall, TraceStore

pytest.importorskip("peft")


async def test_a_trained_planner_adapter_changes_its_role_only_on_one_llama_server(tmp_path: Path) -> None:
    from rolegraph.models import adapters as A

    model, tok = A.load_base()  # converted once from the packaged GGUF, then cached
    report = A.train_adapter(model, tok, vm.role_examples("planner", 8), tmp_path / "planner", steps=16, seed=0)
    assert sum(report.losses[-4:]) / 4 < sum(report.losses[:4]) / 4 / 4  # the format is learnt fast
    gguf = A.convert_adapter(tmp_path / "planner")
    assert gguf == tmp_path / "planner.gguf" and gguf.stat().st_size > 100_000

    server = EmbeddedServer(EmbeddedConfig(lora={"planner": str(gguf)}))
    try:
        generate = A.http_generate(server.ensure_started())
        base = server.config.alias
        held_out = vm.role_examples("planner", 3, seed=99)
        other = vm.role_examples("verifier", 2, seed=99)
        before = [generate(base, ex.messages, 64) for ex in other]
        with_adapter = [generate("planner", ex.messages, 96) for ex in held_out]
        without = [generate(base, ex.messages, 96) for ex in held_out]
        assert all(vm.format_ok("planner", text) for text in with_adapter)
        assert with_adapter != without  # the adapter changes its role's answers ...
        # ... and not the others', also while adapter requests run in other slots at the same time
        during = await asyncio.gather(*(asyncio.to_thread(generate, "planner", ex.messages, 96) for ex in held_out),
                                      *(asyncio.to_thread(generate, base, ex.messages, 64) for ex in other))
        assert list(during[len(held_out):]) == before
        assert list(during[:len(held_out)]) == with_adapter
    finally:
        server.stop()

    video = tmp_path / "v.mp4"
    write_synthetic_video(video, [Scene(seconds=3, colour="red"), Scene(seconds=3, colour="blue", shape="circle")])
    toml = tmp_path / "rolegraph.toml"
    toml.write_text(f'[embedded]\nlora = {{ planner = "{gguf}" }}\n\n[roles.default]\n\n[roles.planner]\n'
                    f'model = "planner"\ntemperature = 0\n\n[traces]\ndir = "{tmp_path / "runs"}"\n')
    # the role -> adapter binding on the embedded server, as on vLLM (greedy, as the peft server always was)
    rt = Runtime.load(toml)
    try:
        result = await vm.run(vm.VideoQuestion(video=str(video), question="What colour is behind the circle?",
                                               options=["red", "blue"]), runtime=rt)
    finally:
        await rt.aclose()
    assert result.plan_parsed  # the adapter's plan is readable: the route came from it, not the fallback
    calls = TraceStore(tmp_path / "runs").load(result.run_id).of_kind(ModelCall)
    trace = TraceStore(tmp_path / "runs").load(result.run_id)
    # llama-server names its one model in every answer; the role's model name is what picks the adapter
    assert trace.started.manifest.roles["planner"].model == "planner"
    assert trace.started.manifest.roles["answerer"].model == "smollm2-135m"
    assert {c.role for c in calls} >= {"planner", "answerer"}
    assert json.loads(calls[0].response.text if calls[0].response else "[]")[0]["type"] == "grounder"
