"""The tool server: typed endpoints answer real requests (FastAPI's test client, no socket), and
the same tools run in-process; a tiny randomly initialised diffusers pipeline built here stands
in for real weights."""

from __future__ import annotations

import base64
import shutil

import numpy as np
import pytest

from rolegraph.tools import audio
from rolegraph.tools.server import DiffusionRequest, EffectRequest, Tools, create_app, from_wav_b64, wav_b64
from rolegraph.tools.video import Scene, write_synthetic_video


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> object:
    from fastapi.testclient import TestClient

    pytest.importorskip("diffusers")
    import torch
    from diffusers import DDIMScheduler, DDPMPipeline, UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=16, in_channels=3, out_channels=3, layers_per_block=1,
                       block_out_channels=(8, 16), down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4)
    tiny = DDPMPipeline(unet=unet, scheduler=DDIMScheduler(num_train_timesteps=50))
    root = tmp_path_factory.mktemp("tools")
    return TestClient(create_app(Tools({"tiny": tiny}, work_dir=root / "work", out_dir=root / "out")))


def test_effect_mix_and_mux_endpoints(client: object) -> None:
    c = client  # type: ignore[assignment]
    r = c.post("/tools/effect", json={"family": "water", "seconds": 2.0, "seed": 1})  # type: ignore[attr-defined]
    assert r.status_code == 200 and r.json()["seconds"] == pytest.approx(2.0)
    rain = from_wav_b64(r.json()["wav_b64"])
    assert np.allclose(rain, audio.synth_effect("water", 2.0, seed=1), atol=1 / 16000)  # same as in-process
    assert c.post("/tools/effect", json={"family": "water", "seconds": -1}).status_code == 422  # type: ignore[attr-defined]
    mixed = c.post("/tools/mix", json={"seconds": 3.0, "layers": [  # type: ignore[attr-defined]
        {"kind": "background", "start": 0.0, "wav_b64": r.json()["wav_b64"]},
        {"kind": "effect", "start": 1.0, "wav_b64": wav_b64(audio.synth_effect("impact", 0.5))}]})
    assert mixed.status_code == 200 and mixed.json()["seconds"] == pytest.approx(3.0)
    tools = c.app.state.tools  # type: ignore[attr-defined]
    tools.work_dir.mkdir(parents=True, exist_ok=True)
    write_synthetic_video(tools.work_dir / "v.mp4", [Scene(seconds=3, colour="red")])
    muxed = c.post("/tools/mux", json={"video": "v.mp4", "wav_b64": mixed.json()["wav_b64"],  # type: ignore[attr-defined]
                                       "out": "out.mp4"})
    assert muxed.status_code == 200 and (tools.out_dir / "out.mp4").is_file()
    assert muxed.json()["out"] == str((tools.out_dir / "out.mp4").resolve())


def test_speech_endpoint(client: object) -> None:
    if shutil.which("espeak-ng") is None and shutil.which("espeak") is None:
        pytest.skip("espeak-ng is not installed")
    r = client.post("/tools/speech", json={"text": "The kettle is boiling."})  # type: ignore[attr-defined]
    assert r.status_code == 200 and 0.5 < r.json()["seconds"] < 5


def test_diffusion_endpoint_runs_a_configured_pipeline(client: object) -> None:
    r = client.post("/tools/diffusion/tiny", json={"steps": 2, "seed": 3})  # type: ignore[attr-defined]
    assert r.status_code == 200 and r.json()["shape"] == [16, 16, 3]
    image = np.frombuffer(base64.b64decode(r.json()["data_b64"]), dtype=np.float32)
    assert np.isfinite(image).all()
    again = client.post("/tools/diffusion/tiny", json={"steps": 2, "seed": 3})  # type: ignore[attr-defined]
    assert again.json()["data_b64"] == r.json()["data_b64"]  # seeded
    missing = client.post("/tools/diffusion/audioldm", json={})  # type: ignore[attr-defined]
    assert missing.status_code == 400 and "no diffusion pipeline 'audioldm'" in missing.json()["detail"]
    assert client.get("/health").json()["pipelines"] == ["tiny"]  # type: ignore[attr-defined]


def test_tools_run_in_process() -> None:
    tools = Tools()
    out = tools.effect(EffectRequest(family="alarm", seconds=1.0))
    assert out.seconds == pytest.approx(1.0)
    with pytest.raises(Exception, match="no diffusion pipeline"):
        tools.diffusion("x", DiffusionRequest())
