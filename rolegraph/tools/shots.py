"""The storyboarder's tools: shot detection with PySceneDetect (detector and threshold exposed),
merging shots shorter than a second, and keyframes per shot by K-means on downsampled frames
(the frame nearest each centre; k = 3 for shots of at most 1.5 s, else 3 + floor(duration - 1.5))."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel

from rolegraph.errors import UserError
from rolegraph.tools.video import Frame, probe, sample_frames

Detector = Literal["content", "adaptive", "histogram"]


class Shot(BaseModel):
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def detect_shots(path: str | Path, *, detector: Detector = "content", threshold: float | None = 15.0) -> list[Shot]:
    """Shots as [start, end) seconds. ContentDetector's own default (27) misses hue-only cuts,
    so ours is 15; `threshold=None` takes the detector's default."""
    from scenedetect import AdaptiveDetector, ContentDetector, HistogramDetector, detect

    info = probe(path)  # a clear error for a missing or unreadable file
    if detector == "content":
        det = ContentDetector() if threshold is None else ContentDetector(threshold=threshold)
    elif detector == "adaptive":
        det = AdaptiveDetector() if threshold is None else AdaptiveDetector(adaptive_threshold=threshold)
    elif detector == "histogram":
        det = HistogramDetector() if threshold is None else HistogramDetector(threshold=threshold)
    else:
        raise UserError(f"unknown shot detector {detector!r}: content, adaptive or histogram")
    scenes = detect(str(path), det)
    if not scenes:
        return [Shot(start=0.0, end=round(info.duration, 3))]
    return [Shot(start=round(s.seconds, 3), end=round(e.seconds, 3)) for s, e in scenes]


def merge_short(shots: list[Shot], min_seconds: float = 1.0) -> list[Shot]:
    """Shots shorter than `min_seconds` are merged into the previous shot (the first into the next)."""
    out: list[Shot] = []
    for shot in shots:
        if (out and shot.duration < min_seconds) or (out and out[-1].duration < min_seconds):
            out[-1] = Shot(start=out[-1].start, end=shot.end)
        else:
            out.append(shot)
    return out


def keyframe_count(duration: float) -> int:
    """The paper's rule: 3 for clips of at most 1.5 s, otherwise 3 + floor(duration - 1.5)."""
    return 3 if duration <= 1.5 else 3 + math.floor(duration - 1.5)


def keyframes(path: str | Path, shot: Shot, *, fps: float = 4.0, size: int = 160, seed: int = 0) -> list[Frame]:
    """K-means over the shot's frames (downsampled to 16x16 grey); the frame nearest each centre,
    in time order."""
    from sklearn.cluster import KMeans

    frames = sample_frames(path, fps=fps, max_frames=400, start=shot.start, end=shot.end, size=size)
    k = min(keyframe_count(shot.duration), len(frames))
    if k == 0:
        return []
    if k == len(frames):
        return frames
    import cv2

    x = np.stack([cv2.resize(cv2.cvtColor(f.image, cv2.COLOR_RGB2GRAY), (16, 16)).ravel().astype(float) / 255
                  for f in frames])
    k = min(k, len(np.unique(np.round(x, 3), axis=0)))  # a still shot has one distinct frame, not k
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(x)
    chosen = {int(np.argmin(((x - c) ** 2).sum(axis=1))) for c in km.cluster_centers_}
    return [frames[i] for i in sorted(chosen)]


def boundary_scores(found: list[Shot], truth: list[tuple[float, float]], *, tolerance: float = 0.5) -> tuple[float, float]:
    """(precision, recall) of the detected cuts against the true ones, within `tolerance` seconds."""
    cuts = [s.start for s in found[1:]]
    true_cuts = [s for s, _ in truth[1:]]
    matched_true: set[int] = set()
    hits = 0
    for c in cuts:
        j = next((i for i, t in enumerate(true_cuts) if i not in matched_true and abs(t - c) <= tolerance), None)
        if j is not None:
            matched_true.add(j)
            hits += 1
    precision = hits / len(cuts) if cuts else 1.0
    recall = len(matched_true) / len(true_cuts) if true_cuts else 1.0
    return precision, recall
