"""Video input for the video graphs: probe a file, sample frames at a given fps with a cap (per
role), attach timestamps, encode frames as OpenAI image content parts, and, for text-only
models, describe frames as timestamped text (colour, brightness, motion, shot boundaries).
Also writes synthetic test videos with known scene spans. Decoding is PyAV; statistics OpenCV."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from rolegraph.errors import UserError

ROLE_SAMPLING = {
    "planner": (1.0, 100),
    "grounder": (1.0, 150),
    "verifier": (2.0, 64),
    "answerer": (2.0, 32),
}
"""VideoMind's per-role sampling: (frames per second, most frames)."""


class VideoInfo(BaseModel):
    path: str
    duration: float
    fps: float
    frames: int
    width: int
    height: int


@dataclass(frozen=True)
class Frame:
    t: float
    """Seconds from the start of the video."""
    image: np.ndarray
    """RGB, height x width x 3, uint8."""


def _open(path: str | Path) -> Any:
    import av

    p = Path(path)
    if not p.is_file():
        raise UserError(f"no video file at {p}")
    try:
        container = av.open(str(p))
    except av.error.FFmpegError as exc:
        raise UserError(f"{p} is not a video PyAV can read: {exc}") from None
    if not container.streams.video:
        container.close()
        raise UserError(f"{p} has no video stream")
    return container


def probe(path: str | Path) -> VideoInfo:
    container = _open(path)
    try:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 25)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        else:
            duration = 0.0
        frames = stream.frames or round(duration * fps)
        if duration <= 0 and frames:
            duration = frames / fps
        return VideoInfo(path=str(path), duration=duration, fps=fps, frames=frames,
                         width=stream.codec_context.width, height=stream.codec_context.height)
    finally:
        container.close()


def sample_times(duration: float, fps: float, max_frames: int, start: float = 0.0, end: float | None = None) -> list[float]:
    """Timestamps at `fps` over [start, end), spread evenly over the span when that would exceed
    `max_frames` (each at the centre of its slot)."""
    end = duration if end is None else min(end, duration)
    start = max(0.0, start)
    span = max(0.0, end - start)
    if span == 0 or max_frames <= 0:
        return []
    n = min(max_frames, max(1, int(span * fps)))
    return [round(start + (i + 0.5) * span / n, 3) for i in range(n)]


def sample_frames(path: str | Path, *, fps: float = 1.0, max_frames: int = 32, start: float = 0.0,
                  end: float | None = None, size: int | None = 224, role: str | None = None) -> list[Frame]:
    """Frames nearest each sampling time (see `sample_times`); `role` takes VideoMind's caps for
    that role; `size` resizes the longer side (None keeps the original)."""
    if role is not None:
        fps, max_frames = ROLE_SAMPLING[role]
    info = probe(path)
    times = sample_times(info.duration, fps, max_frames, start, end)
    if not times:
        return []
    container = _open(path)
    out: list[Frame] = []
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        want = iter(times)
        target: float | None = next(want)
        previous: Any = None
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base) if frame.pts is not None else 0.0
            while target is not None and t + 0.5 / info.fps >= target:
                chosen = frame if previous is None or abs(t - target) <= abs(previous[0] - target) else previous[1]
                out.append(Frame(t=target, image=_resize(chosen.to_ndarray(format="rgb24"), size)))
                target = next(want, None)
            if target is None:
                break
            previous = (t, frame)
        while target is not None and previous is not None:  # past the last frame: repeat it
            out.append(Frame(t=target, image=_resize(previous[1].to_ndarray(format="rgb24"), size)))
            target = next(want, None)
    finally:
        container.close()
    return out


def _resize(image: np.ndarray, size: int | None) -> np.ndarray:
    if size is None or max(image.shape[:2]) <= size:
        return image
    import cv2

    h, w = image.shape[:2]
    scale = size / max(h, w)
    return np.asarray(cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                                 interpolation=cv2.INTER_AREA))


def image_parts(frames: list[Frame], *, quality: int = 80) -> list[dict[str, Any]]:
    """OpenAI chat content parts: a timestamp text before each base64 JPEG frame."""
    from PIL import Image

    parts: list[dict[str, Any]] = []
    for f in frames:
        buf = io.BytesIO()
        Image.fromarray(f.image).save(buf, format="JPEG", quality=quality)
        parts.append({"type": "text", "text": f"{f.t:.1f}s:"})
        parts.append({"type": "image_url",
                      "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()}})
    return parts


_HUES = ((0, "red"), (15, "orange"), (30, "yellow"), (45, "yellow-green"), (60, "green"), (90, "cyan"),
         (110, "blue"), (135, "purple"), (160, "magenta"), (175, "red"))


def _colour_name(image: np.ndarray) -> tuple[str, float, float]:
    """(dominant colour name, mean brightness 0-1, mean saturation 0-1)."""
    import cv2

    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    s, v = hsv[..., 1].astype(float) / 255, hsv[..., 2].astype(float) / 255
    brightness, saturation = float(v.mean()), float(s.mean())
    if saturation < 0.15:
        name = "black" if brightness < 0.2 else "white" if brightness > 0.8 else "grey"
        return name, brightness, saturation
    mask = s > 0.3
    hues = hsv[..., 0][mask] if mask.any() else hsv[..., 0].ravel()
    hist = np.bincount(hues.ravel(), minlength=180)
    dominant = int(hist.argmax())
    name = next(n for h, n in reversed(_HUES) if dominant >= h)
    return name, brightness, saturation


class FrameNote(BaseModel):
    t: float
    colour: str
    brightness: float
    motion: float
    """Mean absolute change from the previous sampled frame, 0-1."""
    cut: bool
    """A shot boundary before this frame (the colour histogram changed sharply)."""

    def text(self) -> str:
        flags = " [new shot]" if self.cut else ""
        return (f"{self.t:.1f}s: mostly {self.colour}, brightness {self.brightness:.2f}, "
                f"motion {self.motion:.2f}{flags}")


def describe_frames(frames: list[Frame], *, cut_threshold: float = 0.4) -> list[FrameNote]:
    """The frame-description tool: per frame, its dominant colour, brightness, motion since the
    previous frame and whether a new shot starts (histogram correlation below 1 - threshold)."""
    import cv2

    notes: list[FrameNote] = []
    prev_gray: np.ndarray | None = None
    prev_hist: np.ndarray | None = None
    for f in frames:
        colour, brightness, _ = _colour_name(f.image)
        gray = cv2.cvtColor(f.image, cv2.COLOR_RGB2GRAY)
        hist = cv2.calcHist([cv2.cvtColor(f.image, cv2.COLOR_RGB2HSV)], [0, 1], None, [30, 8], [0, 180, 0, 256])
        cv2.normalize(hist, hist)
        motion, cut = 0.0, False
        if prev_gray is not None and prev_hist is not None and prev_gray.shape == gray.shape:
            motion = float(np.abs(gray.astype(float) - prev_gray.astype(float)).mean() / 255)
            cut = float(cv2.compareHist(prev_hist, hist, cv2.HISTCMP_CORREL)) < 1 - cut_threshold
        notes.append(FrameNote(t=f.t, colour=colour, brightness=round(brightness, 3), motion=round(motion, 3), cut=cut))
        prev_gray, prev_hist = gray, hist
    return notes


def describe_text(frames: list[Frame]) -> str:
    return "\n".join(n.text() for n in describe_frames(frames))


# --- synthetic videos ---------------------------------------------------------------------------

COLOURS = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (40, 70, 220), "yellow": (230, 210, 40),
           "purple": (140, 50, 180), "orange": (240, 140, 30), "cyan": (40, 200, 210), "grey": (128, 128, 128)}


class Scene(BaseModel):
    """One scene of a synthetic video: a background colour and, optionally, a moving shape."""

    seconds: float
    colour: str
    shape: str | None = None
    """'circle' or 'square' moving across the frame, or None."""
    shape_colour: str = "grey"

    @property
    def caption(self) -> str:
        moving = f" with a {self.shape_colour} {self.shape} moving across" if self.shape else ""
        return f"a {self.colour} scene{moving}"


def write_synthetic_video(path: str | Path, scenes: list[Scene], *, fps: int = 10,
                          size: tuple[int, int] = (160, 120)) -> list[tuple[float, float]]:
    """Write an MP4 (PyAV, mpeg4) of `scenes` back to back; returns each scene's [start, end) span
    in seconds."""
    import av
    import cv2

    w, h = size
    spans: list[tuple[float, float]] = []
    t = 0.0
    container = av.open(str(path), mode="w")
    try:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.bit_rate = 400_000
        for scene in scenes:
            n = max(1, round(scene.seconds * fps))
            for i in range(n):
                img = np.zeros((h, w, 3), np.uint8)
                img[:] = COLOURS[scene.colour]
                if scene.shape:
                    x = int((i + 0.5) / n * (w - 30)) + 15
                    colour = COLOURS[scene.shape_colour]
                    if scene.shape == "circle":
                        cv2.circle(img, (x, h // 2), 12, colour, -1)
                    else:
                        cv2.rectangle(img, (x - 12, h // 2 - 12), (x + 12, h // 2 + 12), colour, -1)
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            spans.append((round(t, 3), round(t + n / fps, 3)))
            t += n / fps
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    return spans
