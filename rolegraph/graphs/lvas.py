"""LVAS-Agent as a graph: a video in, the same video with a soundtrack out.

storyboard (shots, merged when under 1 s, K-means keyframes) -> scriptwriter (a global summary
and timeline, then a {Background, Entity, Action, Summary} caption per segment) -> discussion
(storyboarder and scriptwriter decide, segment by segment, whether to merge with the previous
one) -> designer (background and timed audio per segment) -> generation-retrieval-optimisation
(the designer reviews the sound-library labels retrieved for its design and revises it, up to N
rounds or until it marks it final; labels outside the library are rejected) -> render (effects
synthesised per label family, mixed with ducking and normalisation, written as WAV and muxed).

There is no vision model by default: the frame-description tool stands in, and the result says so."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rolegraph.agents import Agent
from rolegraph.errors import AgentOutputError
from rolegraph.graphs._api import END, START, RunResult, StateGraph, graph
from rolegraph.runtime import Runtime


class LvasOptions(BaseModel):
    model_config = ConfigDict(frozen=True)

    detector: Literal["content", "adaptive", "histogram"] = "content"
    threshold: float | None = 15.0
    min_shot_seconds: float = 1.0
    rounds: int = 2
    """Generation-retrieval-optimisation rounds at most."""
    candidates: int = 4
    """Library labels retrieved per designed sound."""
    labels: str | None = None
    """A VGG-Sound stat.csv (default: the shared copy)."""
    vision: bool = False
    """Send keyframes as images to the scriptwriter (a vision-language model); else their descriptions."""
    tools_url: str | None = None
    """A `rolegraph serve tools` server to render with (e.g. http://127.0.0.1:8079); else in-process."""


class LvasInput(BaseModel):
    video: str
    out_dir: str
    """Where the video with its soundtrack, the WAV and the script go."""


class Caption(BaseModel):
    Background: str = Field(min_length=1)
    Entity: str = Field(min_length=1)
    Action: str = Field(min_length=1)
    Summary: str = Field(min_length=1)

    def text(self) -> str:
        return f"{self.Summary} (setting: {self.Background}; seen: {self.Entity}; action: {self.Action})"


class Timeline(BaseModel):
    start: float = 0.0
    end: float = 0.0
    event: str = ""


class GlobalView(BaseModel):
    summary: str = ""
    timeline: list[Timeline] = Field(default_factory=list)


class MergeDecision(BaseModel):
    merge: bool
    caption: Caption


class Sound(BaseModel):
    label: str
    start: float = 0.0
    end: float = 0.0


class Design(BaseModel):
    background: list[Sound] = Field(default_factory=list)
    audio: list[Sound] = Field(default_factory=list)
    final: bool = False


class Segment(BaseModel):
    start: float
    end: float
    frames: str = ""
    images: list[str] = Field(default_factory=list)
    """Keyframes as data URLs (vision mode only)."""
    caption: Caption | None = None
    design: Design | None = None
    rejected: list[str] = Field(default_factory=list)


class LvasState(BaseModel):
    inp: LvasInput
    duration: float = 0.0
    segments: list[Segment] = Field(default_factory=list)
    shots: list[tuple[float, float]] = Field(default_factory=list)
    view: GlobalView = Field(default_factory=GlobalView)
    merges: int = 0
    round: int = 0
    outputs: dict[str, str] = Field(default_factory=dict)


class LvasResult(RunResult):
    mode: str = "frame-description"
    duration: float
    shots: list[tuple[float, float]]
    segments: list[Segment]
    merges: int
    rounds: int
    outputs: dict[str, str]
    """video, wav, script: the files written."""

    @property
    def labels(self) -> list[str]:
        return [s.label for seg in self.segments if seg.design for s in seg.design.background + seg.design.audio]


def _kb(runtime: Runtime, options: LvasOptions) -> Any:
    from rolegraph.envs.lvas import SoundKB, load_labels

    return runtime.resource(f"lvas.kb:{options.labels}", lambda: SoundKB(runtime, load_labels(options.labels)))


def _clamp(sounds: list[Sound], seg: Segment, kb: Any, *, whole: bool) -> tuple[list[Sound], list[str]]:
    """Sounds with library labels, timed inside the segment (a background spans all of it; an
    event keeps at least half a second); and the labels refused."""
    kept, refused = [], []
    for s in sounds:
        if s.label not in kb:
            refused.append(s.label)
            continue
        if whole:
            start, end = seg.start, seg.end
        else:
            start = min(max(s.start, seg.start), max(seg.start, seg.end - 0.5))
            end = min(max(s.end, start + 0.5), seg.end)
        kept.append(Sound(label=s.label, start=round(start, 3), end=round(end, 3)))
    return kept, refused


def _prepare(inp: LvasInput) -> LvasInput:
    from rolegraph.tools.video import probe

    probe(inp.video)  # a missing or unreadable video fails here, before any model call
    return LvasInput(video=str(Path(inp.video).resolve()), out_dir=str(Path(inp.out_dir).resolve()))


def _finish(state: LvasState) -> LvasResult:
    return LvasResult(duration=state.duration, shots=state.shots, segments=state.segments, merges=state.merges,
                      rounds=state.round, outputs=state.outputs)


@graph(input=LvasInput, state=LvasState, result=LvasResult, options=LvasOptions, prepare=_prepare,
       start=lambda inp: LvasState(inp=inp), finish=_finish,
       recursion_limit=lambda inp, options: 20 + options.rounds)
def lvas(g: StateGraph, options: LvasOptions) -> None:
    """storyboard -> caption -> discuss -> design (up to `rounds` times) -> render."""
    overview = Agent(name="scriptwriter", prompt="lvas/global", output=GlobalView, max_tokens=300)
    captioner = Agent(name="scriptwriter", prompt="lvas/segment", output=Caption, max_tokens=200)
    merger = Agent(name="storyboarder", prompt="lvas/merge", output=MergeDecision, max_tokens=220)
    designer = Agent(name="designer", prompt="lvas/design", output=Design, max_tokens=320)

    async def storyboard(state: LvasState, runtime: Runtime) -> dict[str, Any]:
        async def shots(value: dict[str, Any]) -> dict[str, Any]:
            from rolegraph.tools.shots import detect_shots, keyframes, merge_short
            from rolegraph.tools.video import describe_frames, image_parts, probe, sample_frames

            def work() -> dict[str, Any]:
                info = probe(value["video"])
                found = detect_shots(value["video"], detector=options.detector, threshold=options.threshold)
                merged = merge_short(found, options.min_shot_seconds)
                segs = []
                for shot in merged:
                    frames = keyframes(value["video"], shot)
                    images = ([p["image_url"]["url"] for p in image_parts(frames) if p["type"] == "image_url"]
                              if options.vision else [])
                    segs.append({"start": shot.start, "end": shot.end, "images": images,
                                 "frames": "\n".join(n.text() for n in describe_frames(frames, cut_threshold=1.0))})
                whole = "\n".join(n.text() for n in describe_frames(sample_frames(value["video"], fps=1, max_frames=100)))
                return {"duration": info.duration, "shots": [(s.start, s.end) for s in found], "segments": segs,
                        "whole": whole}

            return await asyncio.to_thread(work)

        found = await runtime.call_tool("lvas.storyboard", shots, {"video": state.inp.video})
        try:
            view = await overview.run(runtime, duration=round(found["duration"], 1), frames=found["whole"])
        except AgentOutputError:
            view = GlobalView()
        return {"duration": found["duration"], "shots": [tuple(s) for s in found["shots"]],
                "segments": [Segment(**s) for s in found["segments"]], "view": view}

    async def caption(state: LvasState, runtime: Runtime) -> dict[str, Any]:
        segments = []
        for i, seg in enumerate(state.segments):
            try:
                cap = await captioner.run(runtime, images=seg.images, summary=state.view.summary, index=i + 1,
                                          start=seg.start,
                                          end=seg.end, frames=seg.frames)
            except AgentOutputError:
                cap = Caption(Background="unknown", Entity="unknown", Action="unknown", Summary=f"segment {i + 1}")
            segments.append(seg.model_copy(update={"caption": cap}))
        return {"segments": segments}

    async def discuss(state: LvasState, runtime: Runtime) -> dict[str, Any]:
        merged: list[Segment] = state.segments[:1]
        merges = 0
        for seg in state.segments[1:]:
            prev = merged[-1]
            assert prev.caption is not None and seg.caption is not None
            try:
                decision = await merger.run(runtime, summary=state.view.summary, previous=prev.caption.text(),
                                            current=seg.caption.text(), prev_start=prev.start, prev_end=prev.end,
                                            start=seg.start, end=seg.end)
            except AgentOutputError:
                decision = MergeDecision(merge=False, caption=seg.caption)
            if decision.merge:
                merged[-1] = prev.model_copy(update={"end": seg.end, "caption": decision.caption,
                                                     "frames": prev.frames + "\n" + seg.frames})
                merges += 1
            else:
                merged.append(seg)
        return {"segments": merged, "merges": merges}

    async def design(state: LvasState, runtime: Runtime) -> dict[str, Any]:
        """One generation-retrieval-optimisation round over the segments not yet final."""
        kb = _kb(runtime, options)
        out = []
        for seg in state.segments:
            if seg.design is not None and seg.design.final:
                out.append(seg)
                continue
            assert seg.caption is not None
            query = seg.caption.text() if seg.design is None else " ".join(
                s.label for s in seg.design.background + seg.design.audio) or seg.caption.text()
            candidates = [s.label for s in await kb.search(query, options.candidates * 2)]
            schema = None
            if candidates:  # the library labels as an enum: a design can only use what exists
                sound = {"type": "object", "properties": {"label": {"type": "string", "enum": candidates},
                                                          "start": {"type": "number"}, "end": {"type": "number"}},
                         "required": ["label", "start", "end"]}
                schema = {"type": "object", "properties": {
                    "background": {"type": "array", "items": sound, "maxItems": 2},
                    "audio": {"type": "array", "items": sound, "maxItems": 3},
                    "final": {"type": "boolean"}}, "required": ["background", "audio", "final"]}
            feedback = ""
            if seg.rejected:
                feedback = f"these labels are not in the sound library: {', '.join(seg.rejected)}"
            elif seg.design is not None and not seg.design.background:
                feedback = "every segment needs at least one background sound"
            try:
                proposed = await replace(designer, response_schema=schema).run(
                    runtime, start=seg.start, end=seg.end, caption=seg.caption.text(), candidates=candidates,
                    feedback=feedback)
            except AgentOutputError:
                proposed = Design()
            background, refused_b = _clamp(proposed.background, seg, kb, whole=True)
            audio, refused_a = _clamp(proposed.audio, seg, kb, whole=False)
            final = proposed.final and not refused_b and not refused_a and bool(background)
            out.append(seg.model_copy(update={"design": Design(background=background, audio=audio, final=final),
                                              "rejected": refused_b + refused_a}))
        return {"segments": out, "round": state.round + 1}

    async def render(state: LvasState, runtime: Runtime) -> dict[str, Any]:
        kb = _kb(runtime, options)
        script = {"video": state.inp.video, "duration": state.duration,
                  "segments": [s.model_dump(mode="json", exclude={"frames", "rejected"}) for s in state.segments]}
        families = {label: kb.labels[label].family for seg in state.segments if seg.design
                    for label in (s.label for s in seg.design.background + seg.design.audio)}

        async def make(value: dict[str, Any]) -> dict[str, str]:
            return await asyncio.to_thread(render_soundtrack, value, families, options.tools_url)

        outputs = await runtime.call_tool("lvas.render", make, {"video": state.inp.video, "out_dir": state.inp.out_dir,
                                                                "script": script})
        return {"outputs": outputs}

    def after_design(state: LvasState) -> str:
        done = all(s.design is not None and s.design.final for s in state.segments)
        return "render" if done or state.round >= options.rounds else "design"

    for fn in (storyboard, caption, discuss, design, render):
        g.add_node(fn)
    g.add_edge(START, "storyboard")
    g.add_edge("storyboard", "caption")
    g.add_edge("caption", "discuss")
    g.add_edge("discuss", "design")
    g.add_conditional_edges("design", after_design, ["design", "render"])
    g.add_edge("render", END)


def render_soundtrack(value: dict[str, Any], families: dict[str, str], tools_url: str | None = None) -> dict[str, str]:
    """Synthesise every designed sound, mix them over the video's length, write the WAV, the
    script and the video with its soundtrack (in-process, or on the tool server at `tools_url`).
    Returns the paths."""
    from rolegraph.tools.audio import mix, mux, synth_effect, write_wav

    if tools_url is not None:
        from rolegraph.tools.server import ToolClient

        client = ToolClient(tools_url)
        synth_effect, mix, mux = client.effect, client.mix, client.mux  # type: ignore[assignment]
    script = value["script"]
    out = Path(value["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    layers = []
    for i, seg in enumerate(script["segments"]):
        design = seg.get("design") or {}
        for kind, key, gain in (("background", "background", -6.0), ("effect", "audio", 0.0)):
            for j, s in enumerate(design.get(key, [])):
                seconds = max(0.1, s["end"] - s["start"])
                sound = synth_effect(families.get(s["label"], "other"), seconds, seed=i * 100 + j)
                layers.append((kind, s["start"], sound, gain))
    track = mix(layers, script["duration"])
    stem = Path(value["video"]).stem
    wav = write_wav(out / f"{stem}.soundtrack.wav", track)
    (out / f"{stem}.script.json").write_text(json.dumps(script, indent=2))
    video = mux(value["video"], track, out / f"{stem}.with-sound.mp4")
    return {"video": str(video), "wav": str(wav), "script": str(out / f"{stem}.script.json"),
            "rendered_by": tools_url or "in-process"}


async def run(video: str | Path, out_dir: str | Path, *, runtime: Runtime,
              options: LvasOptions = LvasOptions()) -> LvasResult:
    """Give `video` a soundtrack; the files go to `out_dir`."""
    result: LvasResult = await lvas.run(LvasInput(video=str(video), out_dir=str(out_dir)), runtime=runtime,
                                        options=options)
    return result


def run_sync(video: str | Path, out_dir: str | Path, *, runtime: Runtime,
             options: LvasOptions = LvasOptions()) -> LvasResult:
    """`run` from synchronous code."""
    return runtime.run_sync(run(video, out_dir, runtime=runtime, options=options))
