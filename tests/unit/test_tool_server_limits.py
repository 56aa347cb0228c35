"""The tool server bounds every request: a body over --max-body-mb is refused with 413 before it is
read (by its Content-Length) or as soon as it passes the limit (a chunked upload), and a duration
or an audio track over --max-seconds with 400; each refusal names the limit and the option."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from rolegraph.tools import audio
from rolegraph.tools.server import Limits, MixRequest, Tools, create_app, wav_b64
from tests.conftest import serve_app

SMALL = Limits(max_body_mb=0.01)  # 10 KiB
SHORT = Limits(max_seconds=5)


def client(tmp_path: Path, limits: Limits) -> TestClient:
    return TestClient(create_app(Tools(work_dir=tmp_path / "work", out_dir=tmp_path / "out", limits=limits)))


def answer(sock: socket.socket) -> tuple[int, str]:
    """The status and body of the reply on `sock` (read until the server closes or the body is in)."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 1 << 30


def test_a_body_over_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    app = create_app(Tools(work_dir=tmp_path / "work", out_dir=tmp_path / "out", limits=SMALL))
    with serve_app(app) as port:
        # a 64 MiB upload announced: answered at once, without one byte of it sent
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"POST /tools/mux HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 67108864\r\n\r\n")
            status, body = answer(sock)
        assert status == 413
        detail = json.loads(body)["detail"]
        assert "67,108,864 bytes is over the 0.01 MiB limit" in detail and "--max-body-mb" in detail

        # chunked: no length first; refused once 12 KiB of the 10 KiB allowed have come, the rest never sent
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"POST /tools/mux HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            for _ in range(3):
                sock.sendall(b"1000\r\n" + b"x" * 4096 + b"\r\n")
            status, body = answer(sock)
        assert status == 413 and "--max-body-mb" in json.loads(body)["detail"]


def test_an_uploaded_video_over_the_limit_is_a_413_naming_the_option(tmp_path: Path) -> None:
    small = client(tmp_path, SMALL)
    big = {"video_b64": "A" * 20_000, "wav_b64": wav_b64(np.zeros(100, np.float32))}
    reply = small.post("/tools/mux", json=big)
    assert reply.status_code == 413
    assert "0.01 MiB limit" in reply.json()["detail"] and "--max-body-mb" in reply.json()["detail"]
    assert small.post("/tools/effect", json={"family": "wind", "seconds": 1.0}).status_code == 200  # under it


def test_durations_and_tracks_over_the_limit_are_a_400_naming_the_option(tmp_path: Path) -> None:
    short = client(tmp_path, SHORT)
    six_seconds = wav_b64(np.zeros(6 * audio.RATE, np.float32))
    refused = [
        ("/tools/effect", {"family": "wind", "seconds": 5.5}, "seconds: 5.5 s"),
        ("/tools/mix", {"seconds": 36_000, "layers": []}, "seconds: 36000 s"),
        ("/tools/mix", {"seconds": 2, "layers": [{"kind": "effect", "start": 0, "wav_b64": six_seconds}]},
         "layers[0].wav_b64: 6 s of audio (96,000 samples)"),
        ("/tools/mix", {"seconds": 2, "layers": [{"kind": "effect", "start": 1e300, "wav_b64": wav_b64(np.zeros(9))}]},
         "layers[0].start: 1e+300 s"),
        ("/tools/mux", {"video": "v.mp4", "wav_b64": six_seconds}, "wav_b64: 6 s of audio"),
    ]
    for path, body, said in refused:
        reply = short.post(path, json=body)
        assert reply.status_code == 400, (path, reply.text)
        detail = reply.json()["detail"]
        assert detail.startswith(said) and "over the 5 s limit" in detail and "--max-seconds" in detail, detail
    assert short.post("/tools/mix", json={"seconds": 5, "layers": []}).status_code == 200  # at the limit


def test_the_default_limits_refuse_the_hour_long_mix(tmp_path: Path) -> None:
    tools = Tools(work_dir=tmp_path / "work", out_dir=tmp_path / "out")
    client = TestClient(create_app(tools))
    reply = client.post("/tools/mix", json={"seconds": 3600, "layers": []})
    assert reply.status_code == 400 and "3600 s is over the 600 s limit" in reply.json()["detail"]
    with pytest.raises(Exception, match="--max-seconds"):  # in-process too
        tools.mix(MixRequest(seconds=36_000, layers=[]))
    assert tools.limits == Limits(max_body_mb=64, max_seconds=600)


def test_serve_tools_takes_the_limits_as_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import uvicorn

    from rolegraph.cli import app

    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda asgi, **kw: served.append(asgi))
    result = CliRunner().invoke(app, ["serve", "tools", "--work-dir", str(tmp_path / "w"), "--out-dir",
                                      str(tmp_path / "o"), "--max-body-mb", "256", "--max-seconds", "3600"])
    assert result.exit_code == 0, result.output
    assert served[0].state.tools.limits == Limits(max_body_mb=256, max_seconds=3600)
