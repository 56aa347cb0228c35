"""`rolegraph ui` trusts only itself: a form POST from another site (or with no sign of where it
comes from) starts no fork and is answered 403; a request whose Host is not the server's address
(DNS rebinding) is answered 400 naming the expected host; numeric query parameters out of range
are a 400, not a 500; and an evaluation's report page is rendered once, again only when its
results change, however many clients ask at once."""

from __future__ import annotations

import http.client
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rolegraph import Runtime
from rolegraph.evals import EvalRecord, Score
from rolegraph.traces import TraceStore
from rolegraph.ui import create_app
from tests.conftest import serve_app
from tests.unit.test_ui import graph, live, record, write_eval  # noqa: F401 - `graph` is a fixture

FORM = {"step": "1", "role": "critic", "model": "", "prompt": ""}


def ask(port: int, method: str, path: str, headers: dict[str, str]) -> tuple[int, str]:
    """A request with exactly these headers (Host included), over a real connection."""
    con = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    con.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    for name, value in headers.items():
        con.putheader(name, value)
    con.putheader("Content-Length", "0")
    con.endheaders()
    reply = con.getresponse()
    body = reply.read().decode()
    con.close()
    return reply.status, body


async def test_a_post_from_another_site_starts_no_fork(tmp_path: Path, graph: Any) -> None:  # noqa: F811
    store = TraceStore(tmp_path / "runs")
    parent = await record(graph, store, "why?")
    started: list[int] = []

    def spy() -> Runtime:
        started.append(1)
        return live()

    ui = TestClient(create_app(runs=store.root, evals=tmp_path / "evals", live=spy))
    hostile = [
        {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},  # a browser, on another site's page
        {"Origin": "http://evil.example"},  # an older browser: no Sec-Fetch-Site
        {"Origin": "http://testserver:8080", "Sec-Fetch-Site": "same-site"},  # another port of this host
        {"Origin": "null"},  # a sandboxed frame or a file:// page
        {"Referer": "http://evil.example/form.html"},  # no Origin, a foreign Referer
        {"Sec-Fetch-Site": "cross-site"},
        {},  # nothing says where it comes from
    ]
    for headers in hostile:
        sent = ui.post(f"/runs/{parent}/fork", data=FORM, headers=headers, follow_redirects=False)
        assert sent.status_code == 403, headers
        assert sent.text.startswith("POST refused: ") and sent.text.count("\n") == 1, sent.text
    ui.app.state.jobs.join(timeout=30)  # type: ignore[attr-defined]
    assert started == [] and [p.name for p in store.root.iterdir() if (p / "events.jsonl").exists()] == [parent]
    assert "Origin: http://testserver" in ui.post(f"/runs/{parent}/fork", data=FORM).text  # what a script must add

    # the UI's own page: a browser sends its origin (and, today, Sec-Fetch-Site)
    for headers in ({"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
                    {"Referer": f"http://testserver/runs/{parent}"}):
        own = ui.post(f"/runs/{parent}/fork", data=FORM, headers=headers, follow_redirects=False)
        assert own.status_code == 303 and own.headers["location"].startswith("/forks/"), own.text
    ui.app.state.jobs.join(timeout=30)  # type: ignore[attr-defined]
    assert len(started) == 2


def test_a_request_for_another_host_is_refused(tmp_path: Path) -> None:
    app = create_app(runs=tmp_path / "runs", evals=tmp_path / "evals", host="ui.lan")
    with serve_app(app) as port:
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"ui.lan:{port}", f"LOCALHOST:{port}"):
            assert ask(port, "GET", "/runs", {"Host": host})[0] == 200, host
        for host in (f"rebind.example:{port}", "rebind.example", f"127.0.0.1:{port + 1}", "127.0.0.1",
                     f"127.0.0.1.rebind.example:{port}", f"localhost:{port}@rebind.example"):
            status, body = ask(port, "GET", "/runs", {"Host": host})
            assert status == 400, host
            assert f"expected 127.0.0.1:{port} or [::1]:{port} or localhost:{port} or ui.lan:{port}" in body
            assert body.count("\n") == 1 and "--host" in body
        # a rebound name cannot post either, whatever Origin it sends
        status, _ = ask(port, "POST", "/runs/x/fork", {"Host": f"rebind.example:{port}",
                                                       "Origin": f"http://rebind.example:{port}"})
        assert status == 400


@pytest.mark.parametrize("query", ["page=9223372036854775807", "page=99999999999999999999", "page=1000001",
                                   "page=0", "page=-1", "page=two", "per=9223372036854775807", "per=0", "per=201"])
def test_a_numeric_query_parameter_out_of_range_is_a_400(tmp_path: Path, query: str) -> None:
    TraceStore(tmp_path / "runs")
    ui = TestClient(create_app(runs=tmp_path / "runs", evals=tmp_path / "evals"), raise_server_exceptions=False)
    reply = ui.get(f"/runs?{query}")
    assert reply.status_code == 400, reply.status_code
    assert query.split("=")[0] + ":" in reply.text
    assert ui.get("/runs?page=3&per=25").status_code == 200  # in range, past the last page: an empty page


def test_the_report_page_is_rendered_once_until_its_results_change(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import rolegraph.ui._app as app_module

    store = write_eval(tmp_path / "evals", "e", {f"c{i}": float(i % 2) for i in range(40)}, {})
    renders: list[str] = []
    real = app_module.render_report

    def counted(*args: Any, **kwargs: Any) -> str:
        renders.append("r")
        time.sleep(0.2)  # a slow render, so that the requests below overlap it
        return real(*args, **kwargs)

    monkeypatch.setattr(app_module, "render_report", counted)
    ui = TestClient(create_app(runs=tmp_path / "runs", evals=tmp_path / "evals"))
    with ThreadPoolExecutor(8) as pool:  # eight clients at once: one render, the others wait for it
        pages = list(pool.map(lambda _: ui.get("/evals/e").text, range(8)))
    assert len(renders) == 1 and len(set(pages)) == 1 and "c39" in pages[0]
    for _ in range(5):  # reading the store folded SQLite's log into it: that is no change
        assert ui.get("/evals/e").text == pages[0]
    assert len(renders) == 1

    writer = store.writer()
    writer.put(EvalRecord(case_id="c40", repeat=0, status="ok", scores={"accuracy": Score(value=1.0)}))
    writer.close()
    assert "c40" in ui.get("/evals/e").text and len(renders) == 2  # a new result: rendered again


def test_a_page_cache_renders_once_for_many_waiting_requests(tmp_path: Path) -> None:
    from rolegraph.ui._cache import PageCache

    source = tmp_path / "results.sqlite"
    source.write_text("v1")
    cache, renders = PageCache(max_age=60), []

    def render() -> str:
        renders.append(source.read_text())
        time.sleep(0.1)
        return f"page of {renders[-1]}"

    with ThreadPoolExecutor(20) as pool:
        pages = list(pool.map(lambda _: cache.get("e", [source], render), range(20)))
    assert pages == ["page of v1"] * 20 and renders == ["v1"]
    source.write_text("v2, longer")
    assert cache.get("e", [source], render) == "page of v2, longer"
    assert cache.get("e", [source], render, extra="a new secret") == "page of v2, longer" and len(renders) == 3
