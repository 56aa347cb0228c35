"""The tool server: heavy non-LLM tools behind typed HTTP endpoints (FastAPI, 127.0.0.1 by
default), each also callable in-process. Sound effects, speech, mixing and muxing always; any
diffusers pipeline named in the config, when its weights (and, for real models, a GPU) are there.

Audio travels as base64 16-bit WAV; files (videos) travel as local paths, since the server runs
on the same machine."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from rolegraph.errors import UserError
from rolegraph.tools import audio


def wav_b64(samples: np.ndarray) -> str:
    buf = io.BytesIO()
    from scipy.io import wavfile

    wavfile.write(buf, audio.RATE, (np.clip(samples, -1, 1) * 32767).astype(np.int16))
    return base64.b64encode(buf.getvalue()).decode()


def from_wav_b64(data: str) -> np.ndarray:
    from scipy.io import wavfile

    rate, x = wavfile.read(io.BytesIO(base64.b64decode(data)))
    if rate != audio.RATE:
        raise UserError(f"audio must be {audio.RATE} Hz, not {rate}")
    return np.asarray(x, dtype=np.float32) / 32768.0


class EffectRequest(BaseModel):
    family: str = Field(description="A sound family (envs.lvas.FAMILIES) or 'other'.")
    seconds: float = Field(gt=0, le=600)
    seed: int = 0


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
    gain_db: float = 0.0


class MixRequest(BaseModel):
    seconds: float = Field(gt=0, le=36_000)
    layers: list[MixLayer]
    duck_db: float = -12.0
    target_dbfs: float = -20.0


class MuxRequest(BaseModel):
    video: str
    wav_b64: str
    out: str


class MuxResponse(BaseModel):
    out: str


class DiffusionRequest(BaseModel):
    prompt: str = ""
    steps: int = Field(default=20, ge=1, le=1000)
    seed: int = 0
    params: dict[str, Any] = Field(default_factory=dict)


class DiffusionResponse(BaseModel):
    shape: list[int]
    data_b64: str
    """The pipeline's first output (the first item of its batch) as float32 bytes: an image or a clip."""


class Tools:
    """The tools, in-process; the server calls exactly these. `pipelines` maps a name to a
    diffusers pipeline object (or a factory that builds it on first use)."""

    def __init__(self, pipelines: dict[str, Any] | None = None) -> None:
        self.pipelines: dict[str, Any] = dict(pipelines or {})

    def effect(self, req: EffectRequest) -> AudioResponse:
        x = audio.synth_effect(req.family, req.seconds, seed=req.seed)
        return AudioResponse(seconds=len(x) / audio.RATE, wav_b64=wav_b64(x))

    def speech(self, req: SpeechRequest) -> AudioResponse:
        x = audio.speak(req.text, voice=req.voice)
        return AudioResponse(seconds=len(x) / audio.RATE, wav_b64=wav_b64(x))

    def mix(self, req: MixRequest) -> AudioResponse:
        layers = [(layer.kind, layer.start, from_wav_b64(layer.wav_b64), layer.gain_db) for layer in req.layers]
        x = audio.mix(layers, req.seconds, duck_db=req.duck_db, target_dbfs=req.target_dbfs)
        return AudioResponse(seconds=len(x) / audio.RATE, wav_b64=wav_b64(x))

    def mux(self, req: MuxRequest) -> MuxResponse:
        return MuxResponse(out=str(audio.mux(req.video, from_wav_b64(req.wav_b64), Path(req.out))))

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
    """The FastAPI app: POST /tools/{effect,speech,mix,mux} and /tools/diffusion/{name}."""
    from fastapi import FastAPI, HTTPException

    app = FastAPI(title="rolegraph tools")

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
    """The server's tools with the in-process signatures (effect, mix, mux), over HTTP."""

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
        return Path(self._post("/tools/mux", MuxRequest(video=str(video), wav_b64=wav_b64(samples), out=str(out)))["out"])
