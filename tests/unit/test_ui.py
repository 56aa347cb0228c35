"""`rolegraph ui`'s routes, through FastAPI's test client: the run list over 10,000 runs (filter, sort,
page), trace pages, two runs side by side, forks started from a page, evaluations with their progress
and paired comparison, and requests that try to read outside the configured directories."""

from __future__ import annotations

import html
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rolegraph import Runtime
from rolegraph.errors import ConfigError
from rolegraph.evals import EvalRecord, EvalStore, Score
from rolegraph.graphs import load_graph, replay_run
from rolegraph.models import FunctionModel
from rolegraph.traces import ModelCall, NodeStarted, Redactor, Trace, TraceStore
from rolegraph.ui import create_app
from tests.unit.test_own_graph import answer, make_graph

SYNTHETIC = 10_000
GRAPHS = ("alpha", "beta", "gamma", "delta", "epsilon")


@pytest.fixture
def graph(tmp_path: Path) -> Any:
    path = make_graph(tmp_path / "user", f"wc_ui_{os.urandom(3).hex()}")
    return load_graph(f"{path}:{path.stem}")


async def record(graph: Any, store: TraceStore, question: str) -> str:
    async with Runtime.from_models({"default": FunctionModel(answer)}, traces=store) as rt:
        result = await graph.run({"question": question}, runtime=rt)
    return str(result.run_id)


def live() -> Runtime:
    return Runtime.from_models({"default": FunctionModel(answer)})


BROWSER = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
"""What a browser sends with a form on the UI's own page (the app refuses a POST without it)."""


def client(tmp_path: Path, **options: Any) -> TestClient:
    app = create_app(runs=tmp_path / "runs", evals=tmp_path / "evals", live=live, live_description="a scripted model",
                     **options)
    return TestClient(app, headers=BROWSER)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def add_synthetic_runs(root: Path, n: int) -> list[tuple[Any, ...]]:
    """`n` rows in the store's own index (no run directories: the list must not need them)."""
    rows = []
    dead = dead_pid()
    for i in range(n):
        status = "error" if i % 10 == 3 else "running" if i % 1000 == 7 else "ok"
        started = 1_700_000_000.0 + i
        finished = None if status == "running" else started + i % 13
        rows.append((f"run-{i:05d}", GRAPHS[i % 5], started, finished, status, None, dead, i % 37, (i * 7919) % 100_003,
                     json.dumps({"question": f"needle-{i} about cells"}), None))
    with sqlite3.connect(root / "index.sqlite") as con:
        con.executemany("INSERT INTO runs (run_id, graph, started, finished, status, parent, pid, model_calls, tokens, "
                        "summary, pair) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    return rows


def run_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-run="([^"]+)"', html)


def total(html: str) -> int:
    found = re.search(r'id="run-total">(\d+) matching', html)
    assert found, "the page shows no total"
    return int(found.group(1))


async def test_the_run_list_filters_sorts_and_pages_10000_runs(tmp_path: Path, graph: Any) -> None:
    store = TraceStore(tmp_path / "runs")
    real = await record(graph, store, "why?")
    rows = add_synthetic_runs(store.root, SYNTHETIC)
    ui = client(tmp_path)

    first = ui.get("/runs").text
    assert total(first) == SYNTHETIC + 1
    assert run_ids(first)[0] == real  # newest first: the real run started last
    assert run_ids(first)[1:] == [f"run-{i:05d}" for i in range(SYNTHETIC - 1, SYNTHETIC - 50, -1)]

    page3 = run_ids(ui.get("/runs", params={"page": 3, "per": 100}).text)
    assert page3 == [f"run-{i:05d}" for i in range(SYNTHETIC - 200, SYNTHETIC - 300, -1)]
    last = ui.get("/runs", params={"page": 201, "per": 50}).text  # 10,001 runs: the last page holds one
    assert run_ids(last) == ["run-00000"] and 'id="page-no">201<' in last

    beta = ui.get("/runs", params={"graph": "beta", "per": 200}).text
    assert total(beta) == SYNTHETIC // 5 and all(int(r[4:]) % 5 == 1 for r in run_ids(beta))

    errors = ui.get("/runs", params={"status": "error"}).text
    assert total(errors) == sum(1 for r in rows if r[4] == "error")
    incomplete = ui.get("/runs", params={"status": "incomplete"}).text  # "running" rows whose writer is dead
    assert total(incomplete) == sum(1 for r in rows if r[4] == "running") == 10
    assert 'data-status="incomplete"' in incomplete and 'data-status="running"' not in incomplete
    assert total(ui.get("/runs", params={"status": "running"}).text) == 0

    found = ui.get("/runs", params={"q": "needle-4242 "}).text
    assert run_ids(found) == ["run-04242"]
    assert total(ui.get("/runs", params={"q": "100%"}).text) == 0  # % is text, not a wildcard
    assert run_ids(ui.get("/runs", params={"q": "why?"}).text) == [real]

    by_tokens = run_ids(ui.get("/runs", params={"sort": "tokens", "order": "asc", "graph": "gamma"}).text)
    gamma = sorted((r for r in rows if r[1] == "gamma"), key=lambda r: (r[8], r[0]))
    assert by_tokens == [r[0] for r in gamma[:50]]
    by_duration = run_ids(ui.get("/runs", params={"sort": "duration", "order": "desc", "status": "ok"}).text)
    assert all(int(r[4:]) % 13 == 12 for r in by_duration[:5])  # the longest runs: i % 13 == 12

    combined = ui.get("/runs", params={"graph": "alpha", "status": "error", "q": "cells"}).text
    assert total(combined) == sum(1 for r in rows if r[1] == "alpha" and r[4] == "error")
    assert ui.get("/runs", params={"sort": "nonsense"}).status_code == 200  # falls back to the default order


async def test_a_run_opens_its_trace_page_with_a_fork_form_per_step(tmp_path: Path, graph: Any) -> None:
    store = TraceStore(tmp_path / "runs")
    run = await record(graph, store, "why?")
    ui = client(tmp_path)
    page = ui.get(f"/runs/{run}")
    assert page.status_code == 200
    html = page.text
    assert '<script src="/assets/mermaid.min.js">' in html and 'class="mermaid"' in html
    n_steps = len(Trace.load(store.root / run).of_kind(NodeStarted))
    assert html.count('<form class="fork"') == n_steps == 4
    assert "a scripted model" in html  # which live models a fork calls, said before it starts
    sources = json.loads(re.search(r'<script type="application/json" id="prompt-sources">(.*?)</script>', html, re.S)
                         .group(1))  # type: ignore[union-attr]
    assert sources["critic"].startswith("{% block user %}Is this a good answer")
    assert ui.get("/assets/mermaid.min.js").status_code == 200
    assert ui.get("/assets/view.css").headers["content-type"].startswith("text/css")


async def test_two_runs_side_by_side_mark_the_first_divergence(tmp_path: Path, graph: Any) -> None:
    store = TraceStore(tmp_path / "runs")
    parent = await record(graph, store, "why?")
    prompt = tmp_path / "critique-v2.j2"
    prompt.write_text("{% block user %}Is this fine? {{ draft }} (v2){% endblock %}")
    forked = await replay_run(store.load(parent), store=store, live=live(), live_from=1, prompts={"critic": str(prompt)})
    ui = client(tmp_path)
    html = ui.get("/compare", params={"a": parent, "b": forked.run_id}).text
    assert 'id="row-1" class="differs first-divergence"' in html
    assert 'id="row-0" class="same"' in html
    assert "First divergence: <a href=\"#row-1\">step 1</a>" in html
    assert "(v2)" in html and "Is this a good answer to why?" in html  # both sides of the request diff
    assert "a fork of A from step 1" in html
    same = ui.get("/compare", params={"a": parent, "b": parent}).text
    assert "No divergence" in same and "first-divergence" not in same
    assert f'href="/compare?a={parent}&amp;b={forked.run_id}"' in ui.get(f"/runs/{forked.run_id}").text


async def test_a_fork_started_from_the_page_runs_like_replay_live_from(tmp_path: Path, graph: Any) -> None:
    store = TraceStore(tmp_path / "runs")
    parent = await record(graph, store, "why?")
    ui = client(tmp_path)
    new_prompt = "{% block user %}Is this fine? {{ draft }} (edited){% endblock %}"
    sent = ui.post(f"/runs/{parent}/fork", data={"step": "1", "role": "critic", "model": "", "prompt": new_prompt},
                   follow_redirects=False)
    assert sent.status_code == 303 and sent.headers["location"].startswith("/forks/")
    ui.app.state.jobs.join(timeout=30)  # type: ignore[attr-defined]
    job = ui.get(sent.headers["location"] + ".json").json()
    assert job["state"] == "done", job
    new = store.load(job["run_id"])
    origin = new.started.parent
    assert origin is not None and (origin.run_id, origin.live_from) == (parent, 1)
    assert set(origin.changes) == {"prompt:critic"}
    kept = Path(origin.changes["prompt:critic"])  # the page's prompt, kept where the trace says
    assert kept.parent == store.root / ".prompts" and kept.read_text() == new_prompt
    calls = new.of_kind(ModelCall)
    assert [c.replayed for c in calls] == [True, False, False, False]  # step 0 from the trace, then live
    assert "(edited)" in (calls[1].request.messages[-1].content or "")
    assert job["replayed_calls"] == 1 and job["live_calls"] == 3 and job["steps_done"] == 4
    assert ui.get(sent.headers["location"]).status_code == 200

    unchanged = ui.post(f"/runs/{parent}/fork", data={"step": "2", "role": "writer", "model": "", "prompt": ""},
                        follow_redirects=False)
    ui.app.state.jobs.join(timeout=30)  # type: ignore[attr-defined]
    again = ui.get(unchanged.headers["location"] + ".json").json()
    assert again["state"] == "done" and again["changes"] == {}

    bad = ui.post(f"/runs/{parent}/fork", data={"step": "9", "role": "critic"})
    assert bad.status_code == 400 and "step 9 is not in run" in bad.text
    nobody = ui.post(f"/runs/{parent}/fork", data={"step": "1", "role": "oracle"})
    assert nobody.status_code == 400 and "no role 'oracle'" in html.unescape(nobody.text)
    assert ui.post(f"/runs/{parent}/fork", data={"step": "x", "role": "critic"}).status_code == 400


async def test_a_fork_that_fails_says_why_on_its_page(tmp_path: Path, graph: Any) -> None:
    store = TraceStore(tmp_path / "runs")
    parent = await record(graph, store, "why?")

    def unreachable() -> Runtime:
        raise ConfigError("endpoint 'gpu' at http://127.0.0.1:9/v1 does not answer")

    ui = TestClient(create_app(runs=store.root, evals=tmp_path / "evals", live=unreachable), headers=BROWSER)
    sent = ui.post(f"/runs/{parent}/fork", data={"step": "1", "role": "critic", "model": "critic-v2"},
                   follow_redirects=False)
    ui.app.state.jobs.join(timeout=30)  # type: ignore[attr-defined]
    job = ui.get(sent.headers["location"] + ".json").json()
    assert job["state"] == "error" and "ConfigError: endpoint 'gpu'" in job["message"]
    assert "does not answer" in html.unescape(ui.get(sent.headers["location"]).text)
    # a template that does not parse is refused before anything starts
    broken = ui.post(f"/runs/{parent}/fork", data={"step": "1", "role": "critic", "prompt": "{% block user %}{{ oops"})
    assert broken.status_code == 400 and "the prompt template for 'critic', line 1" in html.unescape(broken.text)


def write_eval(root: Path, eval_id: str, outcomes: dict[str, float], traces: dict[str, str], *,
               benchmark: str = "mcq", errors: int = 0) -> EvalStore:
    store = EvalStore(root / eval_id / "results.sqlite")
    store.set_meta(benchmark=benchmark, created=1_700_000_000.0, total=len(outcomes) + errors)
    writer = store.writer()
    for case, value in outcomes.items():
        writer.put(EvalRecord(case_id=case, repeat=0, status="ok", scores={"accuracy": Score(value=value)},
                              run_id=traces.get(case), latency_s=0.1))
    for k in range(errors):
        writer.put(EvalRecord(case_id=f"broken-{k}", repeat=0, status="error", error="boom"))
    writer.close()
    return store


async def test_evaluations_list_progress_and_paired_comparison(tmp_path: Path, graph: Any) -> None:
    runs = TraceStore(tmp_path / "runs")
    ta = {c: await record(graph, runs, f"{c} in A") for c in ("c0", "c1")}
    tb = {c: await record(graph, runs, f"{c} in B") for c in ("c0", "c1")}
    cases = [f"c{i}" for i in range(30)]
    a = write_eval(tmp_path / "evals", "eval-a", {c: float(i % 2) for i, c in enumerate(cases)}, ta, errors=2)
    # B fixes c0 and c2, breaks c1
    b_scores = {c: float(i % 2) for i, c in enumerate(cases)} | {"c0": 1.0, "c2": 1.0, "c1": 0.0}
    write_eval(tmp_path / "evals", "suite-1/eval-b", b_scores, tb)  # `rolegraph eval mcq` nests <suite>/<benchmark>
    write_eval(tmp_path / "evals", "eval-other", {"c0": 1.0}, {}, benchmark="spin")
    ui = client(tmp_path)

    listing = ui.get("/evals").text
    assert listing.count("<tr data-eval=") == 3 and 'href="/evals/suite-1/eval-b"' in listing
    assert ui.get("/evals/suite-1/eval-b").status_code == 200
    assert ui.get("/evals/suite-1/eval-b/progress.json").json()["done"] == 30
    assert "<b>0.500</b> accuracy" in listing and "32 of 32 · 2 errors" in listing

    progress = ui.get("/evals/eval-a/progress.json").json()
    assert (progress["done"], progress["total"], progress["errors"], progress["running"]) == (32, 32, 2, False)
    with a.lock():  # a writer holds the store: the evaluation is in progress
        running = ui.get("/evals/eval-a/progress.json").json()
        assert running["running"] and running["pid"] == os.getpid()
        assert 'data-running="1"' in ui.get("/evals").text

    report = ui.get("/evals/eval-a").text
    assert f'href="/runs/{ta["c0"]}"' in report and 'data-url="/evals/eval-a/progress.json"' in report

    paired = ui.get("/evals/compare", params={"a": "eval-a", "b": "suite-1/eval-b"}).text
    assert "<b>30</b>shared cases" in paired
    assert 'id="difference">+0.033<' in paired
    assert "2 right in A only" not in paired and "1 right in A only, 2 in B only" in paired
    flipped = re.findall(r'<td class="id">(c\d+)</td>', paired)
    assert flipped == ["c0", "c1", "c2"]
    assert f'href="/compare?a={ta["c0"]}&amp;b={tb["c0"]}"' in paired
    assert paired.count("no traces in the runs directory") == 1  # c2 has none

    other = ui.get("/evals/compare", params={"a": "eval-a", "b": "eval-other"})
    assert other.status_code == 400 and "only evaluations of one benchmark pair up" in html.unescape(other.text)


@pytest.fixture
def escapes(tmp_path: Path) -> Iterator[Path]:
    """A secret outside the configured folders, and links into it from inside them."""
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "events.jsonl").write_text("TOPSECRET\n")
    (secret / "results.sqlite").write_text("TOPSECRET")
    (tmp_path / "runs").mkdir()
    (tmp_path / "evals").mkdir()
    (tmp_path / "runs" / "linked").symlink_to(secret, target_is_directory=True)
    (tmp_path / "evals" / "linked").symlink_to(secret, target_is_directory=True)
    (tmp_path / "evals" / "ok").mkdir()
    (tmp_path / "evals" / "ok" / "linked").symlink_to(secret, target_is_directory=True)  # a link one level down
    inner = tmp_path / "runs" / "inner-link"
    inner.mkdir()
    (inner / "events.jsonl").symlink_to(secret / "events.jsonl")
    yield secret


PROBES = [
    "/runs/%2E%2E", "/runs/..%2Fsecret", "/runs/%2E%2E%2Fsecret", "/runs/linked", "/runs/inner-link",
    "/runs//etc/passwd", "/runs/%2Fetc%2Fpasswd", "/runs/.hidden", "/compare?a=../secret&b=linked",
    "/compare?a=/etc/passwd&b=/etc/passwd", "/compare?a=linked&b=inner-link", "/evals/linked",
    "/evals/..%2Fsecret", "/evals/linked/progress.json", "/evals/ok/../../secret", "/evals/a/b/c/d",
    "/evals/ok/linked", "/evals/%2Fetc", "/runs/ok%2F..%2F..%2Fsecret", "/evals/compare?a=linked&b=../secret",
    "/assets/..%2F..%2F..%2Fpyproject.toml", "/assets/%2Fetc%2Fpasswd", "/assets/view.html.j2", "/forks/..%2Fsecret",
]


@pytest.mark.parametrize("url", PROBES)
def test_no_route_reads_outside_the_configured_folders(tmp_path: Path, escapes: Path, url: str) -> None:
    ui = client(tmp_path)
    reply = ui.get(url)
    assert reply.status_code in (404, 405, 422), (url, reply.status_code)
    assert "TOPSECRET" not in reply.text and "root:" not in reply.text
    assert ui.post(url.split("?")[0] + "/fork", data={"step": "0", "role": "critic"}).status_code in (404, 405, 422)


async def test_a_blob_linked_out_of_its_run_is_not_read(tmp_path: Path, graph: Any, escapes: Path) -> None:
    store = TraceStore(tmp_path / "runs")
    run = await record(graph, store, "x" * 70_000)  # a long input is stored as a blob
    blobs = list((store.root / run / "blobs").iterdir())
    assert blobs
    for blob in blobs:
        blob.unlink()
        blob.symlink_to(escapes / "events.jsonl")
    page = client(tmp_path).get(f"/runs/{run}")
    assert "TOPSECRET" not in page.text


async def test_pages_redact_secrets_a_trace_was_written_with(tmp_path: Path, graph: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-live-9f8e7d6c5b4a"
    # a store that knew no secrets wrote the run (an older version, or a key set later)
    careless = TraceStore(tmp_path / "runs", redactor=Redactor(env={}))
    run = await record(graph, careless, f"my key is {secret}")
    monkeypatch.setenv("SERVICE_API_KEY", secret)
    ui = client(tmp_path)
    for url in ("/runs", f"/runs/{run}"):
        page = ui.get(url).text
        assert secret not in page and "[REDACTED]" in page, url
    other = await record(graph, careless, f"my key is still {secret}")
    page = ui.get("/compare", params={"a": run, "b": other}).text
    assert secret not in page and "[REDACTED]" in page


def test_rolegraph_ui_serves_on_loopback_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    import signal
    import urllib.request

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-m", "rolegraph", "ui", "--port", "0", "--runs", str(tmp_path / "runs"),
                             "--evals", str(tmp_path / "evals")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=tmp_path)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        found = re.search(r"rolegraph ui: (http://127\.0\.0\.1:(\d+)/)", line)
        assert found, (line, proc.stderr.read() if proc.stderr and proc.poll() is not None else "")
        with urllib.request.urlopen(found.group(1) + "runs", timeout=10) as reply:
            assert reply.status == 200 and b"0 matching" in reply.read()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (tmp_path / "runs").exists() and not (tmp_path / "evals").exists()  # browsing wrote nothing
