"""The tool server's folders hold: path escapes (`../`, absolute paths, symlinks), overwrites, URL
inputs (and playlists that would fetch one) are refused with 400 naming the field, and speech text
is spoken as text, never read by espeak-ng as an option."""

from __future__ import annotations

import base64
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rolegraph.errors import UserError
from rolegraph.tools import _paths, audio
from rolegraph.tools.server import MuxRequest, Tools, create_app, wav_b64
from rolegraph.tools.video import Scene, write_synthetic_video

TRACK = wav_b64(np.zeros(audio.RATE, np.float32))


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "v.mp4"
    write_synthetic_video(path, [Scene(seconds=1, colour="red")])
    return path


@pytest.fixture
def setup(tmp_path: Path, clip: Path) -> tuple[Any, Path, Path, Path]:
    """(client, work, out, outside): `work` holds v.mp4, `outside` holds secret.mp4 and is named by
    symlinks in both folders."""
    from fastapi.testclient import TestClient

    work, out, outside = tmp_path / "work", tmp_path / "out", tmp_path / "outside"
    for d in (work, out, outside):
        d.mkdir()
    shutil.copy(clip, work / "v.mp4")
    shutil.copy(clip, outside / "secret.mp4")
    (work / "link.mp4").symlink_to(outside / "secret.mp4")
    (out / "escape").symlink_to(outside)
    (out / "sub").mkdir()
    (out / "existing.mp4").write_bytes(b"keep me")
    return TestClient(create_app(Tools(work_dir=work, out_dir=out))), work, out, outside


@pytest.fixture
def listener() -> Iterator[tuple[int, socket.socket]]:
    """A port on 127.0.0.1 that records whether anything connected to it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        s.setblocking(False)
        yield s.getsockname()[1], s


def nobody_connected(s: socket.socket) -> bool:
    try:
        s.accept()[0].close()
    except BlockingIOError:
        return True
    return False


def mux(client: Any, **body: Any) -> Any:
    return client.post("/tools/mux", json={"wav_b64": TRACK, **body})


@pytest.mark.parametrize("out", ["../../../escaped.mp4", "../outside/escaped.mp4", "{outside}/escaped.mp4",
                                 "escape/escaped.mp4", "sub/../existing.mp4", "existing.mp4", "sub", ""])
def test_mux_output_outside_the_out_dir_or_over_a_file_is_refused(setup: Any, out: str) -> None:
    client, _, out_dir, outside = setup
    r = mux(client, video="v.mp4", out=out.format(outside=outside))
    assert r.status_code == 400 and r.json()["detail"].startswith("out:"), r.text
    assert sorted(p.name for p in outside.iterdir()) == ["secret.mp4"]
    assert (out_dir / "existing.mp4").read_bytes() == b"keep me"
    assert not list(out_dir.glob(".partial-*")) and not (out_dir.parent / "escaped.mp4").exists()


def test_mux_overwrites_only_when_asked_and_writes_subfolders(setup: Any) -> None:
    client, _, out_dir, _ = setup
    r = mux(client, video="v.mp4", out="sub/../existing.mp4", overwrite=True)
    assert r.status_code == 200 and (out_dir / "existing.mp4").read_bytes() != b"keep me"
    r = mux(client, video="v.mp4", out="new/deeper/x.mp4")
    assert r.status_code == 200 and r.json()["out"] == str((out_dir / "new/deeper/x.mp4").resolve())
    assert audio.decode_audio(out_dir / "new/deeper/x.mp4")[0].size > 0
    assert not list(out_dir.rglob(".partial-*"))


@pytest.mark.parametrize("video", ["/etc/passwd", "../outside/secret.mp4", "{outside}/secret.mp4", "link.mp4",
                                   "../work/../outside/secret.mp4", "missing.mp4", "\x00v.mp4"])
def test_mux_input_outside_the_work_dir_is_refused(setup: Any, video: str) -> None:
    client, _, out_dir, outside = setup
    r = mux(client, video=video.format(outside=outside), out="o.mp4")
    assert r.status_code == 400 and r.json()["detail"].startswith("video:"), r.text
    assert not (out_dir / "o.mp4").exists()


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/x.mp4", "https://127.0.0.1:{port}/x.mp4",
                                 "tcp://127.0.0.1:{port}", "file:///etc/passwd", "concat:v.mp4|v.mp4"])
def test_mux_urls_are_refused_by_default(setup: Any, listener: Any, url: str) -> None:
    client, _, _, _ = setup
    port, s = listener
    r = mux(client, video=url.format(port=port))
    assert r.status_code == 400 and r.json()["detail"].startswith("video:"), r.text
    assert "URL" in r.json()["detail"] and nobody_connected(s)


def test_a_playlist_in_the_work_dir_cannot_fetch_or_read_elsewhere(setup: Any, listener: Any) -> None:
    client, work, _, _ = setup
    port, s = listener
    (work / "p.m3u8").write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nhttp://127.0.0.1:{port}/x.ts\n"
                                 "#EXT-X-ENDLIST\n")
    (work / "c.txt").write_text("ffconcat version 1.0\nfile /etc/passwd\n")
    for name in ("p.m3u8", "c.txt"):
        r = mux(client, video=name)
        assert r.status_code == 400 and r.json()["detail"].startswith("video:"), r.text
    uploaded = mux(client, video_b64=base64.b64encode((work / "p.m3u8").read_bytes()).decode())
    assert uploaded.status_code == 400 and nobody_connected(s)


def test_only_http_urls_even_when_allowed() -> None:
    assert _paths.check_url("https://example.org/v.mp4", "video", allow_urls=True)
    for url in ("file:///etc/passwd", "ftp://h/x", "http:///nohost"):
        with pytest.raises(UserError, match="only http"):
            _paths.check_url(url, "video", allow_urls=True)
    with pytest.raises(UserError, match="--allow-urls"):
        _paths.check_url("https://example.org/v.mp4", "video", allow_urls=False)


def test_uploaded_video_comes_back_as_bytes(setup: Any, clip: Path) -> None:
    client, _, out_dir, _ = setup
    r = mux(client, video_b64=base64.b64encode(clip.read_bytes()).decode())
    assert r.status_code == 200 and r.json()["out"] is None
    got = out_dir.parent / "got.mp4"
    got.write_bytes(base64.b64decode(r.json()["data_b64"]))
    assert audio.decode_audio(got)[0].size > 0
    both = mux(client, video="v.mp4", video_b64=r.json()["data_b64"])
    assert both.status_code == 400 and "exactly one" in both.json()["detail"]
    assert mux(client, video_b64="not base64!").status_code == 400
    assert mux(client, video="v.mp4", wav_b64="%%%").json()["detail"].startswith("wav_b64:")


def test_the_tools_in_process_are_confined_too(tmp_path: Path) -> None:
    tools = Tools(work_dir=tmp_path / "w", out_dir=tmp_path / "o")
    with pytest.raises(UserError, match=r"^video: '/etc/passwd' resolves to"):
        tools.mux(MuxRequest(video="/etc/passwd", wav_b64=TRACK))
    assert not (tmp_path / "w").exists() and not (tmp_path / "o").exists()  # nothing created by a refusal


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["..", ".", "a", "b", "link", "/", "//", "x.mp4"]), max_size=8))
def test_any_name_resolves_inside_or_is_refused(parts: list[str]) -> None:
    root = Path(__file__).parent  # exists; no name is ever created
    name = "/".join(parts)
    try:
        path = _paths.resolve_inside(name, "out", [root])
    except UserError as exc:
        assert str(exc).startswith("out:")
    else:
        assert path.is_relative_to(root.resolve())


needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None and shutil.which("espeak") is None,
                                  reason="espeak-ng is not installed")


@needs_espeak
@pytest.mark.parametrize("text", ["-f/etc/passwd", "--path=/etc", "-w/tmp/pwned.wav hello", "-- -f /etc/passwd"])
def test_speech_text_that_looks_like_an_option_is_spoken(setup: Any, text: str) -> None:
    client, _, _, _ = setup
    r = client.post("/tools/speech", json={"text": text})
    assert r.status_code == 200 and 0.3 < r.json()["seconds"] < 6  # /etc/passwd read aloud took 165 s
    assert not Path("/tmp/pwned.wav").exists()


@needs_espeak
@pytest.mark.parametrize("voice", ["-f/etc/passwd", "../../../../etc/passwd", "en us", ""])
def test_speech_voice_that_is_not_a_voice_name_is_refused(setup: Any, voice: str) -> None:
    client, _, _, _ = setup
    r = client.post("/tools/speech", json={"text": "hello", "voice": voice})
    assert r.status_code == 400 and r.json()["detail"].startswith("voice:")
