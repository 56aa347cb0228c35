"""The tool server: heavy non-LLM tools behind typed HTTP endpoints (FastAPI, 127.0.0.1 by
default), each also callable in-process. Sound effects, speech, mixing and muxing always; any
diffusers pipeline named in the config, when its weights (and, for real models, a GPU) are there.

Audio travels as base64 16-bit WAV; videos as uploaded bytes or as names of files inside the
server's work directory, and results as bytes or as files it writes inside its output directory.
No name a request carries reaches outside those two folders, and URLs only with `allow_urls`.
Every request is bounded (`Limits`): its body's size, and the seconds of audio it sends or asks for."""

from __future__ import annotations

import base64
import binascii
import io
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from rolegraph.errors import UserError
from rolegraph.tools import _paths, audio
from rolegraph.tools._limits import Limits as Limits  # public here: `rolegraph serve tools` sets them

DEMUXER_OPTIONS = {"protocol_whitelist": "file", "format_whitelist": "mov,matroska,avi,mpegts,flv,ogg"}
"""Keeps a local video from pulling in other files or URLs (an HLS playlist, an ffconcat list)."""
URL_DEMUXER_OPTIONS = {**DEMUXER_OPTIONS, "protocol_whitelist": "http,https,tcp,tls"}


def wav_b64(samples: np.ndarray) -> str:
    buf = io.BytesIO()
    from scipy.io import wavfile

    wavfile.write(buf, audio.RATE, (np.clip(samples, -1, 1) * 32767).astype(np.int16))
    return base64.b64encode(buf.getvalue()).decode()


def from_wav_b64(data: str, field: str = "wav_b64") -> np.ndarray:
    from scipy.io import wavfile

    try:
        rate, x = wavfile.read(io.BytesIO(base64.b64decode(data, validate=True)))
    except (binascii.Error, ValueError) as exc:
        raise UserError(f"{field}: not a base64 WAV file ({exc})") from None
    if rate != audio.RATE:
        raise UserError(f"{field}: audio must be {audio.RATE} Hz, not {rate}")
    return np.asarray(x, dtype=np.float32) / 32768.0


class EffectRequest(BaseModel):
    family: str = Field(description="A sound family (envs.lvas.FAMILIES) or 'other'.")
    seconds: float = Field(gt=0, description="At most the server's --max-seconds.")
    seed: int = Field(default=0, ge=0, lt=2**63)


class SpeechRequest(BaseModel):
    text: str = Field(min_length=1, max_length=2000)
    voice: str = "en-us"


class AudioResponse(BaseModel):
    rate: int = audio.RATE
    seconds: float
    wav_b64: str


class MixLayer(BaseModel):
    kind: Literal["background", "effect", "speech"]
    start: float = Field(ge=0)
    wav_b64: str
    gain_db: float = Field(default=0.0, ge=-120, le=60)


class MixRequest(BaseModel):
    seconds: float = Field(gt=0, description="At most the server's --max-seconds.")
    layers: list[MixLayer]
    duck_db: float = Field(default=-12.0, ge=-120, le=0)
    target_dbfs: float = Field(default=-20.0, ge=-120, le=0)


class MuxRequest(BaseModel):
    video: str | None = None
    """A file inside the server's work (or output) directory, relative to the work directory; a
    URL only when the server allows URLs. Exactly one of `video` and `video_b64`."""
    video_b64: str | None = None
    """The video's bytes, uploaded."""
    wav_b64: str
    out: str | None = None
    """A file to write inside the server's output directory, relative to it; without it the
    result comes back as `data_b64`."""
    overwrite: bool = False
    """Replace `out` if it exists (refused otherwise)."""


class MuxResponse(BaseModel):
    out: str | None = None
    """The file written (resolved), when the request named `out`."""
    data_b64: str | None = None
    """The muxed video's bytes, when the request named no `out`."""


class DiffusionRequest(BaseModel):
    prompt: str = ""
    steps: int = Field(default=20, ge=1, le=1000)
    seed: int = Field(default=0, ge=0, lt=2**63)
    params: dict[str, Any] = Field(default_factory=dict)


class DiffusionResponse(BaseModel):
    shape: list[int]
    data_b64: str
    """The pipeline's first output (the first item of its batch) as float32 bytes: an image or a clip."""


class Tools:
    """The tools, in-process; the server calls exactly these. `pipelines` maps a name to a
    diffusers pipeline object (or a factory that builds it on first use). File names in requests
    are confined to `work_dir` (inputs; outputs may be read back too) and `out_dir` (outputs),
    by default `rolegraph-tools/work` and `rolegraph-tools/out` under the current directory
    (created when first written); `allow_urls` lets a video be an http(s) URL; `limits` bounds
    what one request may ask for (the server also refuses a larger body)."""

    def __init__(self, pipelines: dict[str, Any] | None = None, *, work_dir: str | Path | None = None,
                 out_dir: str | Path | None = None, allow_urls: bool = False, limits: Limits | None = None) -> None:
        self.pipelines: dict[str, Any] = dict(pipelines or {})
        self.work_dir = Path(work_dir if work_dir is not None else Path.cwd() / "rolegraph-tools" / "work").absolute()
        self.out_dir = Path(out_dir if out_dir is not None else Path.cwd() / "rolegraph-tools" / "out").absolute()
        self.allow_urls = allow_urls
        self.limits = limits or Limits()

    def track(self, data: str, field: str) -> np.ndarray:
        """A WAV a request sent, refused when longer than the limit."""
        x = from_wav_b64(data, field)
        self.limits.check_samples(len(x), field)
        return x

    def effect(self, req: EffectRequest) -> AudioResponse:
        self.limits.check_seconds(req.seconds, "seconds")
        x = audio.synth_effect(req.family, req.seconds, seed=req.seed)
        return AudioResponse(seconds=len(x) / audio.RATE, wav_b64=wav_b64(x))

    def speech(self, req: SpeechRequest) -> AudioResponse:
        x = audio.speak(req.text, voice=req.voice)
        return AudioResponse(seconds=len(x) / audio.RATE, wav_b64=wav_b64(x))

    def mix(self, req: MixRequest) -> AudioResponse:
        self.limits.check_seconds(req.seconds, "seconds")
        for i, layer in enumerate(req.layers):
            self.limits.check_seconds(layer.start, f"layers[{i}].start")
        layers = [(layer.kind, layer.start, self.track(layer.wav_b64, f"layers[{i}].wav_b64"), layer.gain_db)
                  for i, layer in enumerate(req.layers)]
        x = audio.mix(layers, req.seconds, duck_db=req.duck_db, target_dbfs=req.target_dbfs)
        return AudioResponse(seconds=len(x) / audio.RATE, wav_b64=wav_b64(x))

    def mux(self, req: MuxRequest) -> MuxResponse:
        import av

        if (req.video is None) == (req.video_b64 is None):
            raise UserError("video, video_b64: give exactly one (a file name in the work directory, or the bytes)")
        track = self.track(req.wav_b64, "wav_b64")
        out = None if req.out is None else _paths.output_file(req.out, "out", self.out_dir, overwrite=req.overwrite)
        with tempfile.TemporaryDirectory(prefix="rolegraph-mux-") as scratch:
            options = DEMUXER_OPTIONS
            if req.video_b64 is not None:
                source = Path(scratch) / "upload"
                try:
                    source.write_bytes(base64.b64decode(req.video_b64, validate=True))
                except binascii.Error as exc:
                    raise UserError(f"video_b64: not base64 ({exc})") from None
                video = str(source)
            elif _paths.looks_like_url(req.video or ""):
                video, options = _paths.check_url(req.video or "", "video", allow_urls=self.allow_urls), URL_DEMUXER_OPTIONS
            else:
                video = str(_paths.input_file(req.video or "", "video", [self.work_dir, self.out_dir]))
            suffix = out.suffix if out is not None else ".mp4"
            try:
                if out is None:
                    result = Path(scratch) / f"muxed{suffix}"
                    audio.mux(video, track, result, options=options)
                    return MuxResponse(data_b64=base64.b64encode(result.read_bytes()).decode())
                with _paths.atomic_output(out, overwrite=req.overwrite) as partial:
                    audio.mux(video, track, partial, options=options)
            except (av.FFmpegError, IndexError) as exc:  # IndexError: no video stream
                raise UserError(f"video: cannot mux it ({type(exc).__name__}: {exc}); a local video in a common "
                                "container (mp4, mkv, avi, ts, flv, ogg) is expected") from None
            return MuxResponse(out=str(out))

    def diffusion(self, name: str, req: DiffusionRequest) -> DiffusionResponse:
        import torch

        if name not in self.pipelines:
            raise UserError(f"no diffusion pipeline {name!r}; configured: {', '.join(self.pipelines) or 'none'}")
        pipe = self.pipelines[name]
        if callable(pipe) and not hasattr(pipe, "scheduler"):
            pipe = self.pipelines[name] = pipe()
        generator = torch.Generator().manual_seed(req.seed)
        kwargs = {"num_inference_steps": req.steps, "generator": generator, "output_type": "np", **req.params}
        if req.prompt:
            kwargs["prompt"] = req.prompt
        result = pipe(**kwargs)
        first = next(iter(result.values())) if isinstance(result, dict) else result[0]
        arr = np.asarray(first, dtype=np.float32)
        if arr.ndim > 1 and arr.shape[0] == 1:  # a batch of one: the item itself
            arr = arr[0]
        return DiffusionResponse(shape=list(arr.shape), data_b64=base64.b64encode(arr.tobytes()).decode())


def create_app(tools: Tools) -> Any:
    """The FastAPI app: POST /tools/{effect,speech,mix,mux} and /tools/diffusion/{name}; a body over
    `tools.limits` is refused with 413 before it is read."""
    from fastapi import FastAPI, HTTPException

    from rolegraph.tools._body import BodyLimit

    app = FastAPI(title="rolegraph tools")
    app.state.tools = tools
    app.add_middleware(BodyLimit, limits=tools.limits)

    def guard(fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except UserError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "pipelines": sorted(tools.pipelines)}

    @app.post("/tools/effect", response_model=AudioResponse)
    def effect(req: EffectRequest) -> AudioResponse:
        return guard(tools.effect, req)  # type: ignore[no-any-return]

    @app.post("/tools/speech", response_model=AudioResponse)
    def speech(req: SpeechRequest) -> AudioResponse:
        return guard(tools.speech, req)  # type: ignore[no-any-return]

    @app.post("/tools/mix", response_model=AudioResponse)
    def mix(req: MixRequest) -> AudioResponse:
        return guard(tools.mix, req)  # type: ignore[no-any-return]

    @app.post("/tools/mux", response_model=MuxResponse)
    def mux(req: MuxRequest) -> MuxResponse:
        return guard(tools.mux, req)  # type: ignore[no-any-return]

    @app.post("/tools/diffusion/{name}", response_model=DiffusionResponse)
    def diffusion(name: str, req: DiffusionRequest) -> DiffusionResponse:
        return guard(tools.diffusion, name, req)  # type: ignore[no-any-return]

    return app


def pipelines_from_config(entries: dict[str, str]) -> dict[str, Any]:
    """name -> a factory that loads the diffusers pipeline at that path or model id on first use."""
    def factory(source: str) -> Any:
        def load() -> Any:
            from diffusers import DiffusionPipeline

            try:
                return DiffusionPipeline.from_pretrained(source)  # type: ignore[no-untyped-call]
            except OSError as exc:
                raise UserError(f"cannot load the diffusion pipeline {source!r}: {exc}") from None
        return load

    return {name: factory(src) for name, src in entries.items()}


class ToolClient:
    """The server's tools with the in-process signatures (effect, mix, mux), over HTTP. Videos
    go up as bytes and come back as bytes, so the server needs no access to the caller's files."""

    def __init__(self, base_url: str, *, timeout_s: float = 600.0) -> None:
        self.base_url, self.timeout_s = base_url.rstrip("/"), timeout_s

    def _post(self, path: str, body: BaseModel) -> dict[str, Any]:
        import json
        import urllib.error
        import urllib.request

        req = urllib.request.Request(f"{self.base_url}{path}", data=body.model_dump_json().encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return dict(json.load(resp))
        except urllib.error.HTTPError as exc:
            raise UserError(f"tool server {path}: {exc.code} {exc.read().decode()[:300]}") from None
        except urllib.error.URLError as exc:
            raise UserError(f"cannot reach the tool server at {self.base_url} ({exc.reason}): start it with "
                            "`rolegraph serve tools`") from None

    def effect(self, family: str, seconds: float, *, seed: int = 0) -> np.ndarray:
        return from_wav_b64(self._post("/tools/effect", EffectRequest(family=family, seconds=seconds, seed=seed))["wav_b64"])

    def mix(self, layers: Any, seconds: float, **kw: Any) -> np.ndarray:
        req = MixRequest(seconds=seconds, layers=[MixLayer(kind=k, start=s, wav_b64=wav_b64(x), gain_db=g)
                                                  for k, s, x, g in layers], **kw)
        return from_wav_b64(self._post("/tools/mix", req)["wav_b64"])

    def mux(self, video: str | Path, samples: np.ndarray, out: str | Path) -> Path:
        """`out` is written here, on the caller's side (replaced if it exists, like `audio.mux`)."""
        req = MuxRequest(video_b64=base64.b64encode(Path(video).read_bytes()).decode(), wav_b64=wav_b64(samples))
        data = base64.b64decode(self._post("/tools/mux", req)["data_b64"])
        out = Path(out)
        partial = out.with_name(f".partial-{out.name}")
        partial.write_bytes(data)
        partial.replace(out)
        return out
