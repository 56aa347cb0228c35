"""Streaming on the real embedded model: llama-server's tokens come one by one, the first well before
the answer ends, and the trace records the call a plain run records; a run's page in `rolegraph ui`
shows its steps as they are made, in a real browser, without a reload."""

from __future__ import annotations

import asyncio
import itertools
import queue
import shutil
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import rolegraph as rg
from rolegraph import Runtime
from rolegraph.config import EndpointConfig, RoleConfig, RuntimeConfig
from rolegraph.models import ChatRequest, Message
from rolegraph.prompts import PromptLibrary
from rolegraph.traces import ModelCall, NodeFinished, TraceStore
from rolegraph.ui import create_app
from tests.conftest import serve_app

SHOTS = Path("/tmp/rolegraph-screenshots")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


class Topic(BaseModel):
    topic: str


class Notes(BaseModel):
    topic: str
    notes: list[str] = []


note = rg.Agent(name="writer", prompt="live/note", output=str, max_tokens=40)


def _noter(n: int) -> Any:
    async def node(state: Notes, runtime: Runtime) -> dict[str, Any]:
        return {"notes": [*state.notes, await note.run(runtime, topic=state.topic, n=n)]}
    node.__name__ = f"note{n}"
    return node


@rg.graph(input=Topic, state=Notes, agents=[note], name="live_notes")
def live_notes(g: rg.StateGraph) -> None:
    names = [f"note{n}" for n in range(5)]
    for n, name in enumerate(names):
        g.add_node(name, _noter(n))
    g.add_edge(rg.START, names[0])
    for a, b in itertools.pairwise(names):
        g.add_edge(a, b)


def runtime(url: str, store: TraceStore, folder: Path) -> Runtime:
    (folder / "live").mkdir(parents=True, exist_ok=True)
    (folder / "live" / "note.j2").write_text("Write note {{ n }}, one sentence, about {{ topic }}.")
    config = RuntimeConfig(endpoints={"local": EndpointConfig(base_url=url)},
                           roles={"default": RoleConfig(endpoint="local", model="smollm2-135m", temperature=0.0,
                                                        seed=0)})
    return Runtime(config, prompts=PromptLibrary(folder), traces=store)


async def test_llama_server_streams_tokens_recorded_as_a_plain_call(tmp_path: Path, embedded_url: str) -> None:
    store = TraceStore(tmp_path / "runs")
    rt = runtime(embedded_url, store, tmp_path / "prompts")
    model = rt.unrecorded_model("default")
    first, streamed_total, whole = [], [], []
    try:
        for i in range(6):  # alternating: the first token streamed, against the whole answer asked plainly
            request = ChatRequest(messages=(Message(role="user", content=f"Explain why the sky is blue ({i})."),),
                                  max_tokens=96)
            for streaming in ((True, False) if i % 2 == 0 else (False, True)):
                started = time.perf_counter()
                if streaming:
                    pieces: list[tuple[float, str]] = []

                    async def on_token(piece: str, pieces: list[tuple[float, str]] = pieces,
                                       started: float = started) -> None:
                        pieces.append((time.perf_counter() - started, piece))

                    answer = await model.chat_stream(request, on_token)  # type: ignore[attr-defined]
                    streamed_total.append(time.perf_counter() - started)
                    first.append(pieces[0][0])
                    assert len(pieces) > 5 and "".join(p for _, p in pieces) == answer.text
                    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0 and answer.finish_reason
                else:
                    await model.chat(request)
                    whole.append(time.perf_counter() - started)
        print(f"\nembedded model, 6 requests of at most 96 tokens: first token {statistics.median(first):.3f} s "
              f"(range {min(first):.3f}-{max(first):.3f}), whole answer streamed {statistics.median(streamed_total):.3f} s, "
              f"whole answer asked plainly {statistics.median(whole):.3f} s (range {min(whole):.3f}-{max(whole):.3f})")
        assert statistics.median(first) < statistics.median(whole) / 2

        plain = await live_notes.run({"topic": "tides"}, runtime=rt)
        stream = live_notes.astream({"topic": "tides"}, runtime=rt, stream_mode="messages")
        chunks = [message async for message, _ in stream]
    finally:
        await rt.aclose()
    calls = store.load(stream.result.run_id).of_kind(ModelCall)
    plain_calls = store.load(plain.run_id).of_kind(ModelCall)
    assert [c.fingerprint for c in calls] == [c.fingerprint for c in plain_calls]
    assert [c.response.text for c in calls] == [c.response.text for c in plain_calls], "greedy: the same answers"
    assert [c.usage for c in calls] == [c.usage for c in plain_calls]
    assert len(chunks) > 2 * len(calls) and "".join(m.content for m in chunks) == "".join(c.response.text for c in calls)


pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium at /usr/bin/chromium")
async def test_a_runs_page_shows_its_steps_as_they_are_made_without_a_reload(tmp_path: Path, embedded_url: str) -> None:
    store = TraceStore(tmp_path / "runs")
    rt = runtime(embedded_url, store, tmp_path / "prompts")
    app = create_app(runs=store.root, evals=tmp_path / "evals")
    urls: queue.Queue[str] = queue.Queue()
    ready = threading.Event()
    with serve_app(app) as port:
        # the browser is up before the run starts, and opens the run's page once its first step is done
        watcher = asyncio.create_task(asyncio.to_thread(_watch, urls, ready))
        while not ready.is_set():
            await asyncio.sleep(0.05)
        task = asyncio.create_task(live_notes.run({"topic": "volcanoes"}, runtime=rt))
        while not store.list() or not store.load(store.list()[0].run_id).of_kind(NodeFinished):
            await asyncio.sleep(0.02)
        urls.put(f"http://127.0.0.1:{port}/runs/{store.list()[0].run_id}")
        seen = await watcher
        result = await task
        await rt.aclose()
    assert result.status == "ok"
    steps, statuses, kept, updates, problems = seen
    assert problems == []
    assert statuses[0] == "running" and statuses[-1] == "ok", statuses
    assert steps[0] < 5 and steps[-1] == 5 and len(set(steps)) > 1, steps
    assert kept == 1 and updates >= 1, "the page changed in place: no reload"


def _watch(urls: queue.Queue[str], ready: threading.Event) -> tuple[list[int], list[str], Any, int, list[str]]:
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    steps, statuses = [], []
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
        ready.set()
        page.goto(urls.get(timeout=120))
        page.evaluate("window.keptAcrossUpdates = 1")
        page.screenshot(path=str(SHOTS / "live-run-first.png"), full_page=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            steps.append(int(page.inner_text("#step-count")))
            statuses.append(page.inner_text("#run-head .status"))
            if statuses[-1] != "running":
                break
            page.wait_for_timeout(250)
        page.wait_for_function("document.body.dataset.live === 'done'", timeout=10_000)
        steps.append(int(page.inner_text("#step-count")))
        statuses.append(page.inner_text("#run-head .status"))
        page.screenshot(path=str(SHOTS / "live-run-done.png"), full_page=True)
        kept = page.evaluate("window.keptAcrossUpdates")
        updates = int(page.evaluate("document.body.dataset.updates || '0'"))
        browser.close()
    return steps, statuses, kept, updates, problems
