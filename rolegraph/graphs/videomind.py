"""VideoMind as a graph: a planner picks a route (answer only; ground then answer; ground, verify,
answer; ground only), a grounder proposes up to five moments, a verifier widens each by half its
length on both sides, judges it Yes or No and re-ranks by its score, and an answerer answers the
MCQ from the best moment (at least 32 s, or a share of the video) ending in "Best Option: (X)".

Each role is a runtime role, so `rolegraph.toml` can bind each to its own LoRA adapter on one
vLLM base model (Chain-of-LoRA); `ADAPTER_DATA` is what `rolegraph adapters train` trains those
adapters on. Frames are sampled per role with VideoMind's caps; with a text-only model (the
embedded default) the frame-description tool stands in for vision, and the result says which mode
ran. Frame sampling is a recorded tool call, so a replay needs no video."""

from __future__ import annotations

import json
import math
import random
import re
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from rolegraph.agents import Agent, OutputInvalid
from rolegraph.envs.videomind import clip_span
from rolegraph.errors import AgentOutputError
from rolegraph.graphs._api import END, START, RunResult, StateGraph, graph
from rolegraph.models import ChatResponse, decode_json
from rolegraph.models.adapters import AdapterData, Example
from rolegraph.prompts import PromptLibrary
from rolegraph.runtime import Runtime

FALLBACK_PLAN = ("grounder", "verifier", "answerer")
"""VideoMind's default when the plan cannot be read: ground, verify, answer."""


class VideoMindOptions(BaseModel):
    model_config = ConfigDict(frozen=True)

    vision: bool = False
    """Send frames as images (a vision-language model); else the frame-description tool's text."""
    min_answer_seconds: float = 32.0
    min_answer_ratio: float | None = None
    """If set, the answerer's clip is at least this share of the video instead of 32 s."""
    candidates: int = 5
    logprobs: bool = True
    """Ask for the verifier's first-token log-probabilities (P(Yes), P(No))."""
    frame_size: int = 224


class VideoQuestion(BaseModel):
    """The input: a video and a question (with options for an MCQ; without, grounding only)."""

    video: str
    question: str
    options: list[str] = Field(default_factory=list)
    query: str | None = None
    """A grounding query to use as is (else the planner's, else the question)."""
    duration: float | None = Field(default=None, validation_alias=AliasChoices("duration", "_duration"))
    """The video's length in seconds: probed before a fresh run, so a replay needs no video.
    (Traces recorded before it was a field call it `_duration`.)"""


class Step(BaseModel):
    type: Literal["grounder", "verifier", "answerer"]
    value: str | None = None


class Candidate(BaseModel):
    start: float
    end: float
    confidence: float = 0.0
    score: float | None = None
    """The verifier's score, when it ran."""


class Spans(BaseModel):
    spans: list[Candidate] = Field(default_factory=list)


class VideoMindState(BaseModel):
    q: VideoQuestion
    duration: float
    route: list[str] = Field(default_factory=list)
    plan_parsed: bool = False
    query: str = ""
    candidates: list[Candidate] = Field(default_factory=list)
    grounder_parsed: bool = False
    verifier_source: str = ""
    answer_text: str = ""
    answer_index: int | None = None
    clip: tuple[float, float] | None = None


class VideoMindResult(RunResult):
    video: str
    question: str
    mode: Literal["vision", "frame-description"]
    route: list[str]
    plan_parsed: bool
    query: str
    candidates: list[Candidate]
    grounder_parsed: bool
    verifier_source: str
    """'logprobs' or 'text' (how P(Yes) was read), or '' if the verifier did not run."""
    clip: tuple[float, float] | None
    answer_index: int | None
    answer_text: str

    @property
    def best_span(self) -> tuple[float, float] | None:
        return (self.candidates[0].start, self.candidates[0].end) if self.candidates else None


def parse_plan(text: str) -> list[Step]:
    """The planner's JSON list of steps; raises OutputInvalid unless it is one of the four routes."""
    try:
        raw = decode_json(text)
    except ValueError:
        raise OutputInvalid("not JSON") from None
    if isinstance(raw, dict):
        raw = [raw]
    try:
        steps = [Step.model_validate(s) for s in raw]
    except (ValidationError, TypeError):
        raise OutputInvalid("each step is {\"type\": grounder|verifier|answerer}") from None
    route = tuple(s.type for s in steps)
    if route not in (("answerer",), ("grounder", "answerer"), ("grounder", "verifier", "answerer"), ("grounder",)):
        raise OutputInvalid(f"not one of the four plans: {list(route)}")
    return steps


def fallback_windows(duration: float, verify: bool) -> list[Candidate]:
    """VideoMind's candidates when the grounder's answer cannot be read: five overlapping windows
    (for the verifier to rank), or the whole video."""
    if verify:
        return [Candidate(start=i * duration / 6, end=(i + 2) * duration / 6) for i in range(5)]
    return [Candidate(start=0.0, end=duration)]


def yes_score(response: ChatResponse) -> tuple[float, str]:
    """VideoMind's verifier score, sigmoid(P(Yes) - P(No)), from the first token's top
    log-probabilities when the server gave them, else from the answer's text."""
    if response.logprobs:
        first = response.logprobs[0]
        probs = {"yes": 0.0, "no": 0.0}
        for token, lp in [(first.token, first.logprob), *first.top]:
            key = token.strip().lower()
            if key in probs:
                probs[key] = max(probs[key], math.exp(lp))
        if probs["yes"] or probs["no"]:
            return 1 / (1 + math.exp(-(probs["yes"] - probs["no"]))), "logprobs"
    text = response.text.strip().lower()
    p_yes = 1.0 if text.startswith("yes") else 0.0
    p_no = 1.0 if text.startswith("no") else 0.0
    return 1 / (1 + math.exp(-(p_yes - p_no))), "text"


_BEST = re.compile(r"best option\s*:?\s*\(?\s*([A-J])\b", re.IGNORECASE)


def parse_option(text: str, n: int) -> int | None:
    """The option letter after "Best Option:", else a lone "(X)" or a leading letter."""
    m = _BEST.search(text) or re.search(r"\(([A-J])\)", text) or re.match(r"\s*([A-J])\b", text)
    if not m:
        return None
    index = ord(m.group(1).upper()) - ord("A")
    return index if index < n else None


def _prepare(q: VideoQuestion) -> VideoQuestion:
    from rolegraph.tools.video import probe

    info = probe(q.video)  # a missing or unreadable video fails here, before any model call
    return q if q.duration is not None else q.model_copy(update={"duration": info.duration})


def _finish(state: VideoMindState, options: VideoMindOptions) -> VideoMindResult:
    return VideoMindResult(video=state.q.video, question=state.q.question,
                           mode="vision" if options.vision else "frame-description", route=state.route,
                           plan_parsed=state.plan_parsed, query=state.query, candidates=state.candidates,
                           grounder_parsed=state.grounder_parsed, verifier_source=state.verifier_source,
                           clip=state.clip, answer_index=state.answer_index, answer_text=state.answer_text)


@graph(input=VideoQuestion, state=VideoMindState, result=VideoMindResult, options=VideoMindOptions,
       prepare=_prepare, start=lambda q: VideoMindState(q=q, duration=q.duration or 0.0), finish=_finish,
       templates=("videomind/_video",))
def videomind(g: StateGraph, options: VideoMindOptions) -> None:
    """planner -> grounder -> verifier -> answerer, each step only on the routes that need it."""
    planner = Agent(name="planner", prompt="videomind/planner", output=parse_plan, max_attempts=1, max_tokens=160)
    grounder = Agent(name="grounder", prompt="videomind/grounder", output=Spans, max_attempts=1, max_tokens=240)
    verifier = Agent(name="verifier", prompt="videomind/verifier", output=str, max_attempts=1, max_tokens=3,
                     top_logprobs=5 if options.logprobs else None)
    answerer = Agent(name="answerer", prompt="videomind/answerer", output=str, max_attempts=1, max_tokens=64)

    async def look(runtime: Runtime, state: VideoMindState, role: str, start: float = 0.0,
                   end: float | None = None) -> dict[str, Any]:
        """Frames for `role` (VideoMind's caps) as prompt inputs: images, or their description."""
        async def sample(value: dict[str, Any]) -> dict[str, Any]:
            import asyncio

            from rolegraph.tools.video import describe_text, image_parts, sample_frames

            frames = await asyncio.to_thread(sample_frames, value["video"], role=value["role"], start=value["start"],
                                             end=value["end"], size=options.frame_size)
            if options.vision:
                parts = image_parts(frames)
                return {"images": [p["image_url"]["url"] for p in parts if p["type"] == "image_url"],
                        "times": [f.t for f in frames]}
            return {"text": describe_text(frames), "times": [f.t for f in frames]}

        seen = await runtime.call_tool(f"video.frames.{role}", sample, {"video": state.q.video, "role": role,
                                                                         "start": start, "end": end})
        return {"vision": options.vision, "duration": round(state.duration, 1), "frames": seen.get("text", ""),
                "_images": seen.get("images", [])}

    async def plan(state: VideoMindState, runtime: Runtime) -> dict[str, Any]:
        video = await look(runtime, state, "planner")
        images = video.pop("_images")
        try:
            steps = await planner.run(runtime, question=state.q.question, images=images, **video)
            parsed = True
        except AgentOutputError:
            steps, parsed = [Step(type=t) for t in FALLBACK_PLAN], False
        route = [s.type for s in steps]
        if not state.q.options and "answerer" in route:  # grounding only: nothing to answer
            route = [r for r in route if r != "answerer"] or ["grounder"]
        query = state.q.query or next((s.value for s in steps if s.type == "grounder" and s.value), None) or state.q.question
        return {"route": route, "plan_parsed": parsed, "query": query}

    async def ground(state: VideoMindState, runtime: Runtime) -> dict[str, Any]:
        video = await look(runtime, state, "grounder")
        images = video.pop("_images")
        verify = "verifier" in state.route
        try:
            found = await grounder.run(runtime, query=state.query, k=options.candidates, images=images, **video)
            spans = [c for c in found.spans if c.end > c.start][: options.candidates]
        except AgentOutputError:
            spans = []
        if not spans:
            return {"candidates": fallback_windows(state.duration, verify), "grounder_parsed": False}
        clipped = []
        for c in spans:
            s, e = clip_span((c.start, c.end), state.duration)
            clipped.append(Candidate(start=round(s, 3), end=round(e, 3), confidence=c.confidence))
        return {"candidates": clipped, "grounder_parsed": True}

    async def verify(state: VideoMindState, runtime: Runtime) -> dict[str, Any]:
        if len(state.candidates) < 2:
            return {}
        scored: list[Candidate] = []
        source = "text"
        for c in state.candidates[: options.candidates]:
            offset = (c.end - c.start) / 2  # widen by half the length on each side
            s1, e1 = clip_span((c.start - offset, c.end + offset), state.duration)
            video = await look(runtime, state, "verifier", s1, e1)
            images = video.pop("_images")
            try:
                result = await verifier.invoke(runtime, query=state.query, start=round(c.start, 1),
                                               end=round(c.end, 1), clip_start=round(s1, 1), clip_end=round(e1, 1),
                                               images=images, **video)
                score, source = yes_score(result.response)
            except AgentOutputError:
                score = 0.5
            scored.append(c.model_copy(update={"score": round(score, 6)}))
        ranked = sorted(scored, key=lambda c: -(c.score or 0.0))  # stable: ties keep the grounder's order
        return {"candidates": ranked + state.candidates[options.candidates:], "verifier_source": source}

    async def answer(state: VideoMindState, runtime: Runtime) -> dict[str, Any]:
        d = state.duration
        best = (state.candidates[0].start, state.candidates[0].end) if state.candidates else (0.0, d)
        min_len = d * options.min_answer_ratio if options.min_answer_ratio else options.min_answer_seconds
        s, e = clip_span(best, d, min_len)
        video = await look(runtime, state, "answerer", s, e)
        images = video.pop("_images")
        whole = s <= 0 and e >= d
        try:
            text = await answerer.run(runtime, question=state.q.question, options=state.q.options,
                                      clip_start=None if whole else round(s, 1), clip_end=None if whole else round(e, 1),
                                      images=images, **video)
        except AgentOutputError:
            text = ""
        return {"answer_text": text, "answer_index": parse_option(text, len(state.q.options)), "clip": (s, e)}

    def after_plan(state: VideoMindState) -> str:
        return "grounder" if "grounder" in state.route else "answerer"

    def after_ground(state: VideoMindState) -> str:
        if "verifier" in state.route:
            return "verifier"
        return "answerer" if "answerer" in state.route else END

    def after_verify(state: VideoMindState) -> str:
        return "answerer" if "answerer" in state.route else END

    g.add_node("planner", plan)
    g.add_node("grounder", ground)
    g.add_node("verifier", verify)
    g.add_node("answerer", answer)
    g.add_edge(START, "planner")
    g.add_conditional_edges("planner", after_plan, ["grounder", "answerer"])
    g.add_conditional_edges("grounder", after_ground, ["verifier", "answerer", END])
    g.add_conditional_edges("verifier", after_verify, ["answerer", END])
    g.add_edge("answerer", END)


run, run_sync = videomind.run, videomind.run_sync
ROLES = tuple(videomind.roles())


# --- Chain-of-LoRA: what each role's adapter is trained on (`rolegraph adapters train`) ---------

def _scenes(rng: random.Random) -> tuple[list[tuple[str, float, float, bool]], int]:
    """(colour, start, end, has the moving shape) per scene, and the index of the event scene."""
    colours = rng.sample(["red", "green", "blue", "yellow", "purple", "orange", "cyan"], 4)
    n = rng.choice([3, 4])
    t, out = 0.0, []
    for c in colours[:n]:
        d = float(rng.choice([3, 4, 5, 6]))
        out.append((c, t, t + d, False))
        t += d
    event = rng.randrange(n)
    c, s, e, _ = out[event]
    out[event] = (c, s, e, True)
    return out, event


def _describe(scenes: list[tuple[str, float, float, bool]], fps: float, start: float = 0.0,
              end: float | None = None) -> str:
    """What the frame-description tool says about such a video (same format, no decoding)."""
    end = scenes[-1][2] if end is None else end
    lines, prev = [], None
    n = max(1, int((end - start) * fps))
    for i in range(n):
        t = start + (i + 0.5) * (end - start) / n
        c, _, _, moving = next(x for x in scenes if x[1] <= t < x[2] or x is scenes[-1])
        cut = prev is not None and c != prev
        lines.append(f"{t:.1f}s: mostly {c}, brightness 0.85, motion {0.03 if moving else 0.0:.2f}"
                     + (" [new shot]" if cut else ""))
        prev = c
    return "\n".join(lines)


def role_examples(role: str, n: int, *, seed: int = 0, prompts: PromptLibrary | None = None) -> list[Example]:
    """`n` examples of `role`'s prompt (our templates, over made-up videos' frame descriptions)
    and the answer it should give."""
    lib = prompts or PromptLibrary()
    rng = random.Random(f"{role}:{seed}")
    out = []
    for _ in range(n):
        scenes, event = _scenes(rng)
        duration = scenes[-1][2]
        shape = rng.choice(["circle", "square"])
        colour, s, e, _ = scenes[event]
        options = [c for c, *_ in scenes]
        rng.shuffle(options)
        question = f"What is the background colour while the grey {shape} moves?"
        video = {"vision": False, "duration": duration}
        if role == "planner":
            rendered = lib.render("videomind/planner", question=question, frames=_describe(scenes, 1.0), **video)
            target = json.dumps([{"type": "grounder", "value": f"a grey {shape} moves across the screen"},
                                 {"type": "verifier"}, {"type": "answerer"}])
        elif role == "grounder":
            rendered = lib.render("videomind/grounder", query=f"a grey {shape} moves across the screen", k=5,
                                  frames=_describe(scenes, 1.0), **video)
            target = json.dumps({"spans": [{"start": s, "end": e, "confidence": 0.9}]})
        elif role == "verifier":
            right = rng.random() < 0.5
            ps, pe = (s, e) if right else next((a, b) for c, a, b, m in scenes if not m)
            offset = (pe - ps) / 2
            cs, ce = max(0.0, ps - offset), min(duration, pe + offset)
            rendered = lib.render("videomind/verifier", query=f"a grey {shape} moves across the screen",
                                  start=ps, end=pe, clip_start=cs, clip_end=ce,
                                  frames=_describe(scenes, 2.0, cs, ce), **video)
            target = "Yes" if right else "No"
        elif role == "answerer":
            rendered = lib.render("videomind/answerer", question=question, options=options, clip_start=None,
                                  clip_end=None, frames=_describe(scenes, 2.0), **video)
            target = f"Best Option: ({'ABCDEFGHIJ'[options.index(colour)]})"
        else:
            raise ValueError(f"no examples for role {role!r}; roles: {', '.join(ADAPTER_DATA.roles)}")
        out.append(Example(role, [{"role": m.role, "content": m.content or ""} for m in rendered.messages], target))
    return out


def format_ok(role: str, text: str) -> bool:
    """Whether `text` is in the role's output format (what the adapter is trained to give)."""
    try:
        if role == "planner":
            parse_plan(text)
        elif role == "grounder":
            spans = Spans.model_validate_json(text.strip().strip("`").removeprefix("json").strip())
            return bool(spans.spans)
        elif role == "verifier":
            return text.strip().lower().rstrip(".") in ("yes", "no")
        else:
            return text.strip().lower().startswith("best option: (")
    except (ValueError, OutputInvalid):  # pydantic's ValidationError is a ValueError
        return False
    return True


ADAPTER_DATA = AdapterData(roles=("planner", "grounder", "verifier", "answerer"), examples=role_examples,
                           format_ok=format_ok)
"""The text roles' training examples and format check, for `rolegraph adapters train|report`."""
