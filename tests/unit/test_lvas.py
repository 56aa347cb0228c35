"""LVAS-Agent: shots and keyframes on generated videos, the sound library, the audio tools, the
merge discussion and the design loop with scripted roles, and the rendered soundtrack."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rolegraph.envs.lvas import SoundKB, enrich, family_of, load_labels
from rolegraph.errors import UserError
from rolegraph.evals.lvas import alignment_errors_ms
from rolegraph.graphs import lvas
from rolegraph.models import ChatRequest
from rolegraph.models._testing import FunctionModel
from rolegraph.runtime import Runtime
from rolegraph.tools import audio
from rolegraph.tools.shots import Shot, boundary_scores, detect_shots, keyframe_count, keyframes, merge_short
from rolegraph.tools.video import Scene, probe, write_synthetic_video

SHARED_LABELS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "vggsound-labels" / "stat.csv"
SHIPPED_LABELS = Path(__file__).resolve().parents[1] / "data" / "vggsound-labels" / "stat.csv"
LABELS = SHARED_LABELS if SHARED_LABELS.is_file() else SHIPPED_LABELS  # the shared copy when this checkout has it


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[float, float]]]:
    path = tmp_path_factory.mktemp("lvas") / "three.mp4"
    spans = write_synthetic_video(path, [Scene(seconds=3, colour="red"),
                                         Scene(seconds=3, colour="blue", shape="circle", shape_colour="yellow"),
                                         Scene(seconds=3, colour="green")])
    return path, spans


@pytest.mark.parametrize("detector", ["content", "adaptive", "histogram"])
def test_shot_detection_finds_the_known_cuts(video: tuple[Path, list[tuple[float, float]]], detector: str) -> None:
    path, spans = video
    shots = detect_shots(path, detector=detector)  # type: ignore[arg-type]
    assert [(s.start, s.end) for s in shots] == spans
    assert boundary_scores(shots, spans) == (1.0, 1.0)


def test_short_shots_merge_and_keyframes_follow_the_rule(video: tuple[Path, list[tuple[float, float]]]) -> None:
    shots = [Shot(start=0, end=2), Shot(start=2, end=2.4), Shot(start=2.4, end=5), Shot(start=5, end=5.5)]
    assert [(s.start, s.end) for s in merge_short(shots)] == [(0, 2.4), (2.4, 5.5)]
    assert [(s.start, s.end) for s in merge_short([Shot(start=0, end=0.5), Shot(start=0.5, end=3)])] == [(0, 3)]
    assert [keyframe_count(d) for d in (1.0, 1.5, 2.0, 2.6, 4.6)] == [3, 3, 3, 4, 6]
    path, spans = video
    moving = keyframes(path, Shot(start=spans[1][0], end=spans[1][1]))
    assert 2 <= len(moving) <= keyframe_count(3.0) and all(spans[1][0] <= f.t <= spans[1][1] for f in moving)
    still = keyframes(path, Shot(start=0, end=3))
    assert len(still) == 1  # a still shot has one distinct frame


def test_bad_video_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    with pytest.raises(UserError, match="not a video"):
        detect_shots(bad)


async def test_the_sound_library_retrieves_labels_it_holds() -> None:
    labels = load_labels(LABELS)
    assert len(labels) == (309 if LABELS == SHARED_LABELS else 112) and sum(s.family == "other" for s in labels) <= 3
    assert enrich("dog barking").family == "animal" and family_of("car engine starting") == "vehicle"
    kb = SoundKB(Runtime.from_models({}), labels)
    hits = await kb.search("dog barking", 3)
    assert hits[0].label == "dog barking" and all(h.label in kb for h in hits)
    near = [h.label for h in await kb.search("rain falling on a roof", 3)]
    assert "raining" in near and "unicorn song" not in kb


def test_effects_mix_and_alignment(tmp_path: Path, video: tuple[Path, list[tuple[float, float]]]) -> None:
    for family in ("water", "wind", "vehicle", "alarm", "animal", "impact", "music", "crowd", "other"):
        x = audio.synth_effect(family, 1.5, seed=3)
        assert len(x) == int(1.5 * audio.RATE) and 0.99 <= float(np.abs(x).max()) <= 1.0001
        assert np.array_equal(x, audio.synth_effect(family, 1.5, seed=3))  # seeded
    bg = audio.synth_effect("wind", 9.0)
    speech_like = audio.synth_effect("speech", 2.0)
    track = audio.mix([("background", 0.0, bg, 0.0), ("speech", 4.0, speech_like, 0.0)], 9.0, target_dbfs=-20)
    assert len(track) == 9 * audio.RATE
    assert float(np.sqrt(np.mean(track ** 2))) == pytest.approx(0.1, rel=0.05)  # -20 dBFS RMS
    quiet = audio.mix([("background", 0.0, bg, 0.0)], 9.0, target_dbfs=-20)
    during = slice(int(4.5 * audio.RATE), int(5.5 * audio.RATE))
    assert np.abs(track[during]).mean() > 0  # the background is ducked, not gone
    assert np.abs(quiet[:audio.RATE * 3]).mean() > 0
    script = {"duration": 9.0, "segments": [{"design": {"background": [], "audio": [
        {"label": "x", "start": 1.25, "end": 2.0}, {"label": "y", "start": 6.5, "end": 7.5}]}}]}
    errors = alignment_errors_ms(script, {"x": "impact", "y": "alarm"})
    assert len(errors) == 2 and max(errors) < 1.0
    path, _ = video
    out = audio.mux(path, track, tmp_path / "with-sound.mp4")
    import av

    with av.open(str(out)) as c:
        kinds = {s.type: float(s.duration * s.time_base) for s in c.streams if s.duration}
    assert kinds["video"] == pytest.approx(9.0, abs=0.05) and kinds["audio"] == pytest.approx(9.0, abs=0.1)
    # a lone event, muxed, decoded back with PyAV: its onset lands within 1 ms of where it was put
    alone = audio.mix([("effect", 2.5, audio.synth_effect("impact", 0.5), 0.0)], 9.0)
    decoded, t0 = audio.decode_audio(audio.mux(path, alone, tmp_path / "one-event.mp4"))
    onset = audio.first_onset(decoded)
    assert onset is not None and abs(t0 + onset - 2.5) < 0.001


def scripted_roles(merge_first: bool = True) -> dict[str, FunctionModel]:
    def scriptwriter(request: ChatRequest) -> str:
        text = request.messages[-1].content or ""
        if "global understanding" in text:
            return json.dumps({"summary": "three coloured scenes", "timeline": [{"start": 0, "end": 9, "event": "x"}]})
        seg = text.split("Segment ")[1].split(":")[0]
        return json.dumps({"Background": "a wall", "Entity": "a shape", "Action": "moving", "Summary": f"scene {seg}"})

    calls = {"merge": 0}

    def storyboarder(request: ChatRequest) -> str:
        calls["merge"] += 1
        merge = merge_first and calls["merge"] == 1
        return json.dumps({"merge": merge, "caption": {"Background": "a wall", "Entity": "a shape",
                                                       "Action": "moving", "Summary": "merged" if merge else "kept"}})

    def designer(request: ChatRequest) -> str:
        text = request.messages[-1].content or ""
        candidates = [ln[2:] for ln in text.splitlines() if ln.startswith("- ")]
        start, end = (float(x) for x in text.split("Segment ")[1].split(":")[0].replace("s", "").split(" to "))
        if "Feedback" not in text and "unicorn" not in text:  # first round: one label the library lacks
            return json.dumps({"background": [{"label": "unicorn song", "start": start, "end": end}],
                               "audio": [{"label": candidates[0], "start": start + 0.5, "end": start + 1.5}],
                               "final": True})
        return json.dumps({"background": [{"label": candidates[1], "start": start, "end": end}],
                           "audio": [{"label": candidates[0], "start": start + 0.5, "end": start + 1.5}],
                           "final": True})

    return {"scriptwriter": FunctionModel(scriptwriter), "storyboarder": FunctionModel(storyboarder),
            "designer": FunctionModel(designer)}


async def test_the_graph_merges_designs_against_the_library_and_renders(
        tmp_path: Path, video: tuple[Path, list[tuple[float, float]]]) -> None:
    path, _ = video
    models = scripted_roles()
    rt = Runtime.from_models(models, traces=tmp_path / "runs")  # type: ignore[arg-type]
    result = await lvas.run(path, tmp_path / "out", runtime=rt, options=lvas.LvasOptions(labels=str(LABELS)))
    assert len(result.shots) == 3 and result.merges == 1
    assert [(s.start, s.end) for s in result.segments] == [(0.0, 6.0), (6.0, 9.0)]
    assert result.segments[0].caption is not None and result.segments[0].caption.Summary == "merged"
    # round 1 used a label outside the library: refused, told, and fixed in round 2
    assert result.rounds == 2
    second = [r for r in models["designer"].requests if "Feedback" in (r.messages[-1].content or "")]
    assert second and "unicorn song" in second[0].messages[-1].content
    kb_labels = {s.label for s in load_labels(LABELS)}
    assert result.labels and all(label in kb_labels for label in result.labels)
    assert all(s.design and s.design.background and s.design.background[0].start == s.start for s in result.segments)
    wav = audio.read_wav(result.outputs["wav"])
    assert len(wav) == pytest.approx(probe(path).duration * audio.RATE, abs=audio.RATE * 0.01)  # as long as the video
    script = json.loads(Path(result.outputs["script"]).read_text())
    assert len(script["segments"]) == 2 and Path(result.outputs["video"]).is_file()


async def test_rendering_through_the_tool_server_and_vision_keyframes(
        tmp_path: Path, video: tuple[Path, list[tuple[float, float]]]) -> None:
    import socket
    import threading
    import time

    import uvicorn

    from rolegraph.tools.server import Tools, create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(Tools()), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        path, _ = video
        models = scripted_roles(merge_first=False)
        rt = Runtime.from_models(models, traces=tmp_path / "runs")  # type: ignore[arg-type]
        options = lvas.LvasOptions(labels=str(LABELS), vision=True, tools_url=f"http://127.0.0.1:{port}")
        result = await lvas.run(path, tmp_path / "out", runtime=rt, options=options)
    finally:
        server.should_exit = True
        thread.join(timeout=5)
    assert result.outputs["rendered_by"] == f"http://127.0.0.1:{port}" and Path(result.outputs["video"]).is_file()
    assert len(audio.read_wav(result.outputs["wav"])) == pytest.approx(9 * audio.RATE, abs=audio.RATE * 0.01)
    captions = [r for r in models["scriptwriter"].requests if "Keyframes" in (r.messages[-1].content or "")]
    assert captions and all(r.messages[-1].images and r.messages[-1].images[0].startswith("data:image/jpeg")
                            for r in captions)
