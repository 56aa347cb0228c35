"""Temporal grounding metrics and data, computed as VideoMind's evaluation does: spans are
[start, end] in seconds; R@1 at IoU 0.3/0.5/0.7 counts the top prediction, R@3 and R@5 the best
of the top three and five; mIoU averages the top prediction's IoU. Loaders read the Charades-STA annotation form
(`vid start end##query`) and a JSONL form; a small synthetic benchmark is built from generated
videos with known event spans."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from rolegraph.errors import UserError

Span = tuple[float, float]
THRESHOLDS = (0.3, 0.5, 0.7)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two [start, end] intervals (0 when either is empty)."""
    s1, e1 = min(a[0], a[1]), max(a[0], a[1])
    s2, e2 = min(b[0], b[1]), max(b[0], b[1])
    inter = max(0.0, min(e1, e2) - max(s1, s2))
    union = max(e1, e2) - min(s1, s2)
    return inter / union if union > 0 else 0.0


def clip_span(span: Sequence[float], duration: float, min_len: float | None = None) -> Span:
    """The span clamped to [0, duration], ordered, and widened about its centre to at least
    `min_len` (kept inside the video), as VideoMind's parse_span does."""
    s, e = sorted((min(duration, max(0.0, float(span[0]))), min(duration, max(0.0, float(span[1])))))
    if min_len is not None and e - s < min_len:
        half = min(min_len, duration) / 2
        centre = min(duration - half, max(half, (s + e) / 2))
        s, e = centre - half, centre + half
    return max(0.0, s), min(duration, e)


class GroundingScores(BaseModel):
    n: int
    recall_at_1: dict[float, float] = Field(default_factory=dict)
    recall_at_3: dict[float, float] = Field(default_factory=dict)
    recall_at_5: dict[float, float] = Field(default_factory=dict)
    miou: float = 0.0


def grounding_scores(predictions: Sequence[Sequence[Sequence[float]]], targets: Sequence[Sequence[float]],
                     thresholds: Sequence[float] = THRESHOLDS) -> GroundingScores:
    """R@1, R@3 and R@5 at each IoU threshold (VideoMind's evaluation prints these, in this
    order), and mIoU, over ranked predictions per sample. R@k counts a sample when any of its top
    k predictions reaches the threshold."""
    if len(predictions) != len(targets):
        raise ValueError("one ranked prediction list per target")
    n = len(targets)
    if n == 0:
        return GroundingScores(n=0)
    top1 = [iou(p[0], t) if p else 0.0 for p, t in zip(predictions, targets, strict=True)]

    def recall(k: int) -> dict[float, float]:
        best = [max((iou(x, t) for x in p[:k]), default=0.0) for p, t in zip(predictions, targets, strict=True)]
        return {th: sum(v >= th for v in best) / n for th in thresholds}

    return GroundingScores(n=n, recall_at_1=recall(1), recall_at_3=recall(3), recall_at_5=recall(5),
                           miou=sum(top1) / n)


class VideoQuery(BaseModel):
    """One item: a video, a question or query, optional MCQ options and answer, and the span."""

    id: str
    video: str
    query: str
    span: Span | None = None
    question: str | None = None
    options: list[str] = Field(default_factory=list)
    answer: int | None = None
    """Index of the right option."""
    duration: float | None = None


def load_charades(path: str | Path, video_dir: str | Path, *, ext: str = ".mp4") -> Iterator[VideoQuery]:
    """Charades-STA annotations: one `VIDEO_ID START END##QUERY` per line."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"no annotation file at {p}")
    for n, line in enumerate(p.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            head, query = line.split("##", 1)
            vid, start, end = head.split()
            span = (float(start), float(end))
        except ValueError:
            raise UserError(f"{p}:{n}: expected 'VIDEO START END##QUERY', got {line[:80]!r}") from None
        yield VideoQuery(id=f"{vid}-{n}", video=str(Path(video_dir) / f"{vid}{ext}"), query=query.strip(), span=span)


def load_jsonl(path: str | Path) -> Iterator[VideoQuery]:
    """One VideoQuery per line; `video` paths relative to the file are resolved against it."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"no data file at {p}")
    for n, line in enumerate(p.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = VideoQuery.model_validate(json.loads(line))
        except (ValueError, json.JSONDecodeError) as exc:
            raise UserError(f"{p}:{n}: not a video query: {str(exc).splitlines()[0]}") from None
        if not Path(item.video).is_absolute():
            item = item.model_copy(update={"video": str(p.parent / item.video)})
        yield item


def synthetic_benchmark(directory: str | Path, *, n: int = 6, seed: int = 0) -> Path:
    """Generate `n` videos of 3-4 coloured scenes, one with a moving shape (the event), and a
    JSONL of grounding queries with MCQs about them. Returns the JSONL path."""
    from rolegraph.tools.video import COLOURS, Scene, write_synthetic_video

    rng = random.Random(seed)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    colours = [c for c in COLOURS if c != "grey"]
    lines = []
    for i in range(n):
        picked = rng.sample(colours, 4)
        scenes = [Scene(seconds=rng.choice([3, 4, 5]), colour=c) for c in picked[: rng.choice([3, 4])]]
        event = rng.randrange(len(scenes))
        shape = rng.choice(["circle", "square"])
        scenes[event] = scenes[event].model_copy(update={"shape": shape, "shape_colour": "grey"})
        video = out / f"synthetic-{i:03d}.mp4"
        spans = write_synthetic_video(video, scenes)
        options = [s.colour for s in scenes]
        rng.shuffle(options)
        answer_colour = scenes[event].colour
        lines.append(VideoQuery(id=f"synthetic-{i:03d}", video=video.name, query=f"a grey {shape} moves across the screen",
                                span=spans[event], question=f"What is the background colour while the grey {shape} moves?",
                                options=options, answer=options.index(answer_colour), duration=spans[-1][1]))
    data = out / "queries.jsonl"
    data.write_text("".join(q.model_dump_json() + "\n" for q in lines))
    return data
