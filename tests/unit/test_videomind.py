"""VideoMind: grounding metrics and loaders, plan parsing, each route with scripted roles, the
verifier's re-ranking, frame sampling, the vLLM launcher, and adapter switching per role."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rolegraph.agents import OutputInvalid
from rolegraph.config import load_config
from rolegraph.envs.videomind import clip_span, grounding_scores, iou, load_charades, load_jsonl, synthetic_benchmark
from rolegraph.errors import UserError
from rolegraph.graphs import videomind as vm
from rolegraph.models import ChatRequest, ChatResponse
from rolegraph.models._testing import FunctionModel, ScriptedModel
from rolegraph.models._types import TokenLogprob
from rolegraph.models.servers import vllm
from rolegraph.models.servers.loadtest import LoadTestServer
from rolegraph.runtime import Runtime
from rolegraph.tools.video import Scene, describe_frames, probe, sample_frames, sample_times, write_synthetic_video
from rolegraph.traces import ModelCall, ToolInvocation, TraceStore


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "three.mp4"
    spans = write_synthetic_video(path, [Scene(seconds=4, colour="red"),
                                         Scene(seconds=4, colour="blue", shape="circle", shape_colour="yellow"),
                                         Scene(seconds=4, colour="green")])
    assert spans == [(0.0, 4.0), (4.0, 8.0), (8.0, 12.0)]
    return path


# --- metrics and data ------------------------------------------------------------------------------

def test_iou_and_clip_span_by_hand() -> None:
    assert iou((0, 10), (5, 15)) == pytest.approx(5 / 15)
    assert iou((0, 10), (10, 20)) == 0.0
    assert iou((3, 3), (0, 10)) == 0.0
    assert iou((8, 2), (2, 8)) == 1.0  # reversed spans are ordered first
    assert clip_span((-5, 3), 100) == (0.0, 3.0)
    assert clip_span((40, 44), 100, 32) == (26.0, 58.0)  # widened about its centre
    assert clip_span((2, 4), 100, 32) == (0.0, 32.0)  # ...kept inside the video
    assert clip_span((2, 4), 20, 32) == (0.0, 20.0)


def test_grounding_scores_by_hand() -> None:
    preds = [[(0, 10), (20, 30)], [(50, 60), (0, 10)], [(0, 4)]]
    gts = [(0, 10), (0, 12), (0, 10)]
    s = grounding_scores(preds, gts)
    # top-1 IoUs: 1.0, 0.0, 0.4; best of top-5: 1.0, 10/12, 0.4
    assert s.recall_at_1 == {0.3: pytest.approx(2 / 3), 0.5: pytest.approx(1 / 3), 0.7: pytest.approx(1 / 3)}
    assert s.recall_at_5 == {0.3: pytest.approx(1.0), 0.5: pytest.approx(2 / 3), 0.7: pytest.approx(2 / 3)}
    assert s.miou == pytest.approx((1.0 + 0.0 + 0.4) / 3)


def test_loaders(tmp_path: Path) -> None:
    ann = tmp_path / "charades.txt"
    ann.write_text("AO8RW 0.0 6.9##a person is putting a book on a shelf.\n\n3MSZA 24.3 30.4##person turn a light on.\n")
    items = list(load_charades(ann, tmp_path / "videos"))
    assert next((i.video.endswith("AO8RW.mp4"), i.span, i.query) for i in items) == (
        True, (0.0, 6.9), "a person is putting a book on a shelf.")
    assert items[1].span == (24.3, 30.4)
    ann.write_text("AO8RW 0.0##no end\n")
    with pytest.raises(UserError, match=r"charades\.txt:1"):
        list(load_charades(ann, tmp_path))
    data = synthetic_benchmark(tmp_path / "syn", n=2)
    rows = list(load_jsonl(data))
    assert len(rows) == 2 and all(Path(r.video).is_file() and r.span and r.options for r in rows)
    assert rows[0].options[rows[0].answer or 0] in ("red", "green", "blue", "yellow", "purple", "orange", "cyan")


# --- frames ----------------------------------------------------------------------------------------

def test_sampling_caps_and_timestamps(video: Path) -> None:
    info = probe(video)
    assert info.duration == pytest.approx(12.0) and info.width == 160
    assert sample_times(12, 1.0, 100) == [i + 0.5 for i in range(12)]
    assert len(sample_times(100, 2.0, 32)) == 32  # 200 would be due: the answerer's cap holds
    frames = sample_frames(video, role="grounder")
    assert [f.t for f in frames] == [i + 0.5 for i in range(12)]
    clip = sample_frames(video, role="verifier", start=3.0, end=6.0)
    assert len(clip) == 6 and all(3.0 <= f.t <= 6.0 for f in clip)
    notes = describe_frames(frames)
    assert [n.colour for n in notes] == ["red"] * 4 + ["blue"] * 4 + ["green"] * 4
    assert [i for i, n in enumerate(notes) if n.cut] == [4, 8]  # the two cuts, where they are
    assert max(n.motion for n in notes[5:8]) > 0  # the moving circle
    with pytest.raises(UserError, match="no video file"):
        probe(video.parent / "missing.mp4")
    bad = video.parent / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(UserError, match="not a video"):
        probe(bad)


# --- plans and routes ------------------------------------------------------------------------------

def test_plan_parsing() -> None:
    assert [s.type for s in vm.parse_plan('[{"type": "answerer"}]')] == ["answerer"]
    steps = vm.parse_plan('```json\n[{"type": "grounder", "value": "the dog"}, {"type": "verifier"}, '
                          '{"type": "answerer"}]\n```')
    assert steps[0].value == "the dog" and len(steps) == 3
    assert [s.type for s in vm.parse_plan('{"type": "grounder", "value": "x"}')] == ["grounder"]
    for bad in ("ground then answer", '[{"type": "verifier"}]', '[{"type": "answerer"}, {"type": "grounder"}]',
                '[{"type": "painter"}]', "[1, 2]"):
        with pytest.raises(OutputInvalid):
            vm.parse_plan(bad)


def roles(planner: str, grounder: str = '{"spans": []}', verifier: object = "Yes", answerer: str = "Best Option: (B)",
          **extra: object) -> dict[str, object]:
    return {"planner": ScriptedModel([planner]), "grounder": FunctionModel(lambda r: grounder),
            "verifier": FunctionModel(verifier if callable(verifier) else lambda r: verifier),
            "answerer": FunctionModel(lambda r: answerer), **extra}


MCQ = {"question": "What colour is the background while the circle moves?", "options": ["red", "blue", "green"]}


async def test_answer_only_route(video: Path, tmp_path: Path) -> None:
    models = roles('[{"type": "answerer"}]')
    rt = Runtime.from_models(models, traces=tmp_path)  # type: ignore[arg-type]
    r = await vm.run(vm.VideoQuestion(video=str(video), **MCQ), runtime=rt)
    assert r.route == ["answerer"] and r.plan_parsed and r.candidates == [] and r.answer_index == 1
    assert r.clip == (0.0, 12.0) and r.mode == "frame-description"
    assert not models["grounder"].requests  # type: ignore[attr-defined]
    answer_prompt = models["answerer"].requests[0].messages[-1].content  # type: ignore[attr-defined]
    assert "(A) red" in answer_prompt and "mostly blue" in answer_prompt


async def test_ground_verify_answer_reranks_by_the_verifier(video: Path, tmp_path: Path) -> None:
    spans = {"spans": [{"start": 0, "end": 4, "confidence": 0.9}, {"start": 4, "end": 8, "confidence": 0.5}]}

    def verifier(request: ChatRequest) -> ChatResponse:
        text = request.messages[-1].content or ""
        yes = 0.9 if "4.0s to 8.0s" in text else 0.2
        import math
        return ChatResponse(text="Yes" if yes > 0.5 else "No", logprobs=[TokenLogprob(
            token="Yes" if yes > 0.5 else "No", logprob=math.log(max(yes, 1 - yes)),
            top=[("Yes", math.log(yes)), ("No", math.log(1 - yes))])])

    models = roles('[{"type": "grounder", "value": "the circle moves"}, {"type": "verifier"}, {"type": "answerer"}]',
                   json.dumps(spans), verifier)
    rt = Runtime.from_models(models, traces=tmp_path)  # type: ignore[arg-type]
    r = await vm.run(vm.VideoQuestion(video=str(video), **MCQ), runtime=rt)
    assert r.route == ["grounder", "verifier", "answerer"] and r.query == "the circle moves"
    assert [(c.start, c.end) for c in r.candidates] == [(4.0, 8.0), (0.0, 4.0)]  # re-ranked
    import math
    assert r.candidates[0].score == pytest.approx(1 / (1 + math.exp(-(0.9 - 0.1))), abs=1e-5)
    assert r.verifier_source == "logprobs"
    verifier_requests = models["verifier"].requests  # type: ignore[attr-defined]
    assert all(req.top_logprobs == 5 for req in verifier_requests)
    assert "clip runs from 2.0s to 10.0s" in verifier_requests[1].messages[-1].content  # widened by half each side
    assert r.clip == (0.0, 12.0)  # the best moment widened to 32 s, inside a 12 s video
    trace = TraceStore(tmp_path).load(r.run_id)
    assert {t.name for t in trace.of_kind(ToolInvocation)} == {"video.frames.planner", "video.frames.grounder",
                                                         "video.frames.verifier", "video.frames.answerer"}


async def test_ground_then_answer_and_ground_only(video: Path, tmp_path: Path) -> None:
    spans = json.dumps({"spans": [{"start": 4.2, "end": 7.9, "confidence": 0.8}]})
    models = roles('[{"type": "grounder", "value": "circle"}, {"type": "answerer"}]', spans)
    r = await vm.run(vm.VideoQuestion(video=str(video), **MCQ),
                     runtime=Runtime.from_models(models, traces=tmp_path),  # type: ignore[arg-type]
                      options=vm.VideoMindOptions(min_answer_seconds=6))
    assert r.route == ["grounder", "answerer"] and not models["verifier"].requests  # type: ignore[attr-defined]
    assert r.clip == pytest.approx((3.05, 9.05))
    only = roles('[{"type": "grounder", "value": "circle"}]', spans)
    g = await vm.run(vm.VideoQuestion(video=str(video), question="the circle moves"),
                     runtime=Runtime.from_models(only, traces=tmp_path))  # type: ignore[arg-type]
    assert g.route == ["grounder"] and g.best_span == (4.2, 7.9) and g.answer_index is None
    assert not only["answerer"].requests  # type: ignore[attr-defined]


async def test_unreadable_plan_and_spans_fall_back_as_videomind_does(video: Path, tmp_path: Path) -> None:
    models = roles("I would look at the video", "somewhere in the middle")
    r = await vm.run(vm.VideoQuestion(video=str(video), **MCQ),
                     runtime=Runtime.from_models(models, traces=tmp_path))  # type: ignore[arg-type]
    assert r.route == list(vm.FALLBACK_PLAN) and not r.plan_parsed and not r.grounder_parsed
    assert r.query == MCQ["question"]
    assert sorted((c.start, c.end) for c in r.candidates) == [(i * 2.0, (i + 2) * 2.0) for i in range(5)]
    assert r.verifier_source == "text" and len(models["verifier"].requests) == 5  # type: ignore[attr-defined]


def test_yes_score_and_option_parsing() -> None:
    assert vm.yes_score(ChatResponse(text="No"))[0] == pytest.approx(1 / (1 + 2.718281828 ** 1), abs=1e-6)
    assert vm.parse_option("Best Option: (C)", 3) == 2
    assert vm.parse_option("best option: b", 3) == 1
    assert vm.parse_option("The answer is (A) red", 3) == 0
    assert vm.parse_option("Best Option: (F)", 3) is None
    assert vm.parse_option("no idea", 3) is None


# --- Chain-of-LoRA: the vLLM launcher and adapter switching ---------------------------------------

def test_vllm_command_and_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = vllm.VllmSpec(base="Qwen/Qwen2-VL-2B-Instruct", loras=vllm.parse_loras(
        ["planner=/a/planner", "grounder=/a/grounder", "verifier=/a/verifier"]), port=8011, tool_call_parser="hermes")
    cmd = vllm.vllm_command(spec, python="py")
    assert cmd == ["py", "-m", "vllm.entrypoints.openai.api_server", "--model", "Qwen/Qwen2-VL-2B-Instruct",
                   "--host", "127.0.0.1", "--port", "8011", "--enable-lora", "--lora-modules",
                   "planner=/a/planner", "grounder=/a/grounder", "verifier=/a/verifier", "--max-loras", "3",
                   "--enable-auto-tool-choice", "--tool-call-parser", "hermes"]
    toml = tmp_path / "rolegraph.toml"
    toml.write_text(vllm.runtime_config(spec, ["planner", "grounder", "verifier", "answerer"]))
    config = load_config(toml)
    assert {r: config.roles[r].model for r in config.roles} == {
        "planner": "planner", "grounder": "grounder", "verifier": "verifier", "answerer": "Qwen/Qwen2-VL-2B-Instruct"}
    assert config.endpoints["vllm"].base_url == "http://127.0.0.1:8011/v1"
    cpu = vllm.VllmSpec(base="b", gpu_memory_utilization=0.5, extra=("--max-model-len", "4096"))
    assert vllm.vllm_command(cpu, python="py")[-4:] == ["--gpu-memory-utilization", "0.5", "--max-model-len", "4096"]
    for bad in (["planner"], ["=x"], ["a=1", "a=2"]):
        with pytest.raises(UserError):
            vllm.parse_loras(bad)
    monkeypatch.setattr(vllm, "vllm_installed", lambda python=None: False)
    with pytest.raises(UserError, match="pip install vllm"):
        vllm.launch(spec, ["planner"], config_out=tmp_path / "x.toml")
    assert not (tmp_path / "x.toml").exists()


async def test_each_role_sends_its_adapter_name(video: Path, tmp_path: Path) -> None:
    plan = json.dumps([{"type": "grounder", "value": "x"}, {"type": "verifier"}, {"type": "answerer"}])
    async with LoadTestServer(delay_s=0.0, reply=plan) as server:
        spec = vllm.VllmSpec(base="base-model", loras={"planner": "/p", "grounder": "/g", "verifier": "/v"},
                             port=int(server.base_url.rsplit(":", 1)[1].split("/")[0]))
        toml = tmp_path / "rolegraph.toml"
        toml.write_text(vllm.runtime_config(spec, list(vm.ROLES)) + f'\n[traces]\ndir = "{tmp_path / "runs"}"\n')
        rt = Runtime.load(toml)
        try:
            r = await vm.run(vm.VideoQuestion(video=str(video), **MCQ), runtime=rt)
        finally:
            await rt.aclose()
    calls = TraceStore(tmp_path / "runs").load(r.run_id).of_kind(ModelCall)
    sent = {(c.role, c.response.model) for c in calls if c.response is not None}
    assert sent == {("planner", "planner"), ("grounder", "grounder"), ("verifier", "verifier"),
                    ("answerer", "base-model")}


def test_recall_at_3_by_hand() -> None:
    # the right moment is ranked 1st, 3rd, 4th and nowhere: R@1 counts one, R@3 two, R@5 three
    gt = (10.0, 20.0)
    miss = (50.0, 60.0)
    preds = [[gt, miss, miss], [miss, miss, gt, miss], [miss, miss, miss, gt, miss], [miss] * 5]
    s = grounding_scores(preds, [gt] * 4)
    assert s.recall_at_1 == {0.3: 0.25, 0.5: 0.25, 0.7: 0.25}
    assert s.recall_at_3 == {0.3: 0.5, 0.5: 0.5, 0.7: 0.5}
    assert s.recall_at_5 == {0.3: 0.75, 0.5: 0.75, 0.7: 0.75}
    # a half-overlapping third guess counts at 0.3 but not at 0.5 (IoU = 5 / 15)
    half = grounding_scores([[miss, miss, (15.0, 25.0)]], [gt])
    assert half.recall_at_3 == {0.3: 1.0, 0.5: 0.0, 0.7: 0.0}


async def test_the_benchmark_scores_r3_in_videomind_order() -> None:
    from rolegraph.envs.videomind import VideoQuery
    from rolegraph.evals.videomind import videomind_benchmark

    bench = videomind_benchmark([VideoQuery(id="q", video="v.mp4", query="the circle moves", span=(1.0, 2.0))])
    names = [s.name for s in bench.scorers]
    assert names[:9] == [f"R{k}@{t}" for k in (1, 3, 5) for t in (0.3, 0.5, 0.7)]
    assert names[9] == "IoU"
