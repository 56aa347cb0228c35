"""rolegraph as a library in someone else's project: the embedded server set up for a pip-installed
rolegraph (`rolegraph setup embedded`), and nothing written into the working directory's tracked files."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from rolegraph import Runtime
from rolegraph.config import RuntimeConfig, TracesSettings, load_config
from rolegraph.errors import ServerStartError, UserError
from rolegraph.models.servers import cached_llama_server, find_llama_server, setup_embedded

SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
"""The shell tools the set-up script uses, and no llama-server."""


@pytest.fixture
def no_llama_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither $ROLEGRAPH_LLAMA_SERVER nor a llama-server on PATH."""
    monkeypatch.delenv("ROLEGRAPH_LLAMA_SERVER", raising=False)
    monkeypatch.setenv("PATH", SYSTEM_PATH)
    assert subprocess.run(["bash", "-c", "command -v llama-server"], check=False, capture_output=True).returncode != 0


def test_with_no_llama_server_anywhere_the_error_names_both_ways(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_llama_server: None) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ROLEGRAPH_WHEEL_CACHE", str(tmp_path / "empty-cache"))
    assert cached_llama_server() is None
    with pytest.raises(UserError) as setup:
        setup_embedded(build=False, prefix=tmp_path / "env", say=lambda _: None)
    with pytest.raises(ServerStartError) as start:
        find_llama_server(prefix=tmp_path / "env")
    for message in (str(setup.value), str(start.value)):
        assert "rolegraph setup embedded" in message, message
        assert "$ROLEGRAPH_LLAMA_SERVER" in message and "[embedded] in rolegraph.toml" in message, message
    assert str(tmp_path / "empty-cache") in str(setup.value) and "--no-build" in str(setup.value)
    assert not (tmp_path / "env").exists()  # nothing half-installed


def test_a_configured_llama_server_is_kept_and_a_missing_one_is_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_llama_server: None) -> None:
    own = tmp_path / "bin" / "llama-server"
    own.parent.mkdir()
    own.write_text("#!/bin/sh\nexit 0\n")
    own.chmod(0o755)
    monkeypatch.setenv("ROLEGRAPH_LLAMA_SERVER", str(own))
    done = setup_embedded(build=False, prefix=tmp_path / "env", say=lambda _: None)
    assert (done.server, done.origin) == (own, "$ROLEGRAPH_LLAMA_SERVER") and done.model.suffix == ".gguf"
    assert not (tmp_path / "env").exists()
    monkeypatch.delenv("ROLEGRAPH_LLAMA_SERVER")
    with pytest.raises(ServerStartError, match=r"\[embedded\] server is '/nowhere/llama-server', which is not an executable"):
        setup_embedded(configured="/nowhere/llama-server", build=False, prefix=tmp_path / "env")


def test_setup_installs_the_cached_llama_server_into_an_environment_without_one(
        tmp_path: Path, no_llama_server: None) -> None:
    cached = cached_llama_server()
    if cached is None:
        pytest.skip("no llama-server built in the cache yet (`make setup` builds it)")
    said: list[str] = []
    prefix = tmp_path / "env"
    done = setup_embedded(build=False, prefix=prefix, say=said.append)
    assert done.server == prefix / "lib" / "llama.cpp" / "llama-server" and done.origin == "the cache"
    assert said == [f"llama-server installed in {done.server.parent}"]
    assert (done.server.parent / "convert" / "convert_lora_to_gguf.py").is_file()
    version = subprocess.run([str(done.server), "--version"], check=False, capture_output=True, text=True, timeout=60)
    assert version.returncode == 0, version.stderr  # its libraries came with it
    again = setup_embedded(build=False, prefix=prefix, say=said.append)
    assert (again.server, again.origin) == (done.server, "this environment") and len(said) == 1
    assert find_llama_server(prefix=prefix) == done.server


def test_the_default_memory_folder_is_inside_the_traces_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config(env={}).memory_dir() == Path("runs") / "memory"
    assert RuntimeConfig(traces=TracesSettings(dir="elsewhere")).memory_dir() == Path("elsewhere") / "memory"
    chosen = load_config(env={"ROLEGRAPH__MEMORY__DIR": "mine"}).memory_dir()
    assert chosen == Path("mine")
    # an earlier release's ./memory/ keeps being used while its histories are there
    (tmp_path / "memory").mkdir()
    assert load_config(env={}).memory_dir() == Path("runs") / "memory"
    (tmp_path / "memory" / "memory.sqlite").write_bytes(b"")
    assert load_config(env={}).memory_dir() == Path("memory")


async def test_a_runtime_with_no_config_writes_its_memories_under_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ROLEGRAPH_CONFIG", raising=False)
    for name in [n for n in os.environ if n.startswith("ROLEGRAPH__")]:
        monkeypatch.delenv(name)
    runtime = Runtime.load()
    history = runtime.memory("history", kind="buffer", k=3)
    await history.add("x played the centre")
    runtime.close()
    assert (tmp_path / "runs" / "memory" / "memory.sqlite").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]
