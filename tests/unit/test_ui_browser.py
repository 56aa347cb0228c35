"""`rolegraph ui` in a real browser (Playwright driving Debian's chromium): the run list, a filter, a
run's page, two runs side by side with the first divergence marked, and a fork started from a step
on a scripted model, which then opens beside its parent. No console errors on any page. A form on
another origin's page that posts to a fork URL is refused (403) and starts nothing.
Screenshots go to $ROLEGRAPH_SCREENSHOTS when it is set."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rolegraph.evals import EvalStore
from rolegraph.traces import TraceStore
from rolegraph.ui import create_app
from tests.conftest import CHROMIUM, serve_app
from tests.conftest import CHROMIUM_ARGS as ARGS
from tests.unit.test_ui import graph, live, record, write_eval  # noqa: F401 - `graph` is a fixture

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium at /usr/bin/chromium "
                                "(apt-get install chromium); a browser download does not work on these machines")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    app = create_app(runs=tmp_path / "runs", evals=tmp_path / "evals", live=live, live_description="a scripted model")
    with serve_app(app) as port:
        yield f"http://127.0.0.1:{port}"
    app.state.jobs.join(10)


def shot(page: Any, name: str) -> None:
    folder = os.environ.get("ROLEGRAPH_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


async def test_browse_filter_compare_and_fork_in_a_browser(tmp_path: Path, graph: Any, served: str) -> None:  # noqa: F811
    store = TraceStore(tmp_path / "runs")
    why = await record(graph, store, "why is the sky blue?")
    how = await record(graph, store, "how do cells divide?")
    await record(graph, store, "what is a ribosome?")
    cases = [f"c{i}" for i in range(12)]
    write_eval(tmp_path / "evals", "eval-a", {c: float(i % 2) for i, c in enumerate(cases)}, {"c0": why})
    write_eval(tmp_path / "evals", "suite/eval-b", {c: float(i % 3 == 0) for i, c in enumerate(cases)}, {"c0": how})
    running = EvalStore(tmp_path / "evals" / "eval-a" / "results.sqlite")
    # Playwright's sync API refuses to run inside an event loop: the browser runs in a thread of its own
    await asyncio.to_thread(_run_browser, served, why, how, running)


def _run_browser(base: str, why: str, how: str, running: EvalStore) -> None:
    problems: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)

        page.goto(f"{base}/")
        assert page.locator("#runs tbody tr[data-run]").count() == 3
        shot(page, "runs")

        page.fill("input[name=q]", "cells")
        page.click("#filters button[type=submit]")
        page.wait_for_url("**/runs?**")
        assert page.locator("#runs tbody tr[data-run]").count() == 1
        assert page.locator("#run-total").inner_text() == "1 matching"
        page.click(f"a[href='/runs/{how}']")
        page.wait_for_url(f"**/runs/{how}")
        page.wait_for_function("document.body.dataset.rendered !== 'pending'")
        assert page.evaluate("document.body.dataset.rendered") == "ok"
        assert page.locator("#graph svg").count() == 1
        shot(page, "trace")

        page.goto(f"{base}/runs")
        page.check(f"input.pick[value='{why}']")
        page.check(f"input.pick[value='{how}']")
        page.click("#compare-button")
        page.wait_for_url("**/compare?**")
        marked = page.locator("tr.first-divergence")
        assert marked.count() == 1 and "first divergence" in marked.inner_text()
        assert page.locator("#divergence h2").inner_text().startswith("First divergence: step 0")
        shot(page, "compare")

        page.goto(f"{base}/runs/{why}")
        page.click("#step-1 > summary")
        form = page.locator("#step-1 form.fork")
        form.locator("select[name=role]").select_option("critic")
        text = form.locator("textarea[name=prompt]")
        assert "Is this a good answer" in text.input_value()  # the role's current prompt, to edit
        text.fill("{% block user %}Is this fine? {{ draft }} (from the page){% endblock %}")
        shot(page, "fork-form")
        form.locator("button[type=submit]").click()
        page.wait_for_url("**/compare?**", timeout=30_000)  # the fork page opens the new run beside its parent
        assert f"a={why}" in page.url
        new_run = page.url.split("b=")[1]
        assert "a fork of A from step 1" in page.inner_text("header")
        assert page.locator("tr.first-divergence").get_attribute("id") == "row-1"
        assert "(from the page)" in page.inner_text("tr.first-divergence + tr.detail")
        shot(page, "fork-compare")

        page.goto(f"{base}/runs")
        assert page.locator(f"tr[data-run='{new_run}'] td.id a[href='/runs/{why}']").count() == 1

        with running.lock():
            page.goto(f"{base}/evals")
            cell = page.locator("tr[data-eval='eval-a'] td.prog .text")
            page.wait_for_function("document.querySelector(\"tr[data-eval='eval-a'] td.prog .text\").textContent"
                                   ".includes('running')")
            assert "12 of 12" in cell.inner_text()
            shot(page, "evals")
        page.select_option("#pair select[name=a]", "eval-a")
        page.select_option("#pair select[name=b]", "suite/eval-b")
        page.click("#pair button[type=submit]")
        page.wait_for_url("**/evals/compare?**")
        assert "McNemar" in page.inner_text("#paired")
        assert page.locator("#flipped tbody tr").count() >= 1
        shot(page, "eval-compare")
        page.click("#flipped a[href^='/compare']")
        page.wait_for_url("**/compare?**")
        assert page.locator("#steps").count() == 1

        page.goto(f"{base}/evals/eval-a")
        page.wait_for_function("document.getElementById('progress').dataset.state === 'stopped'")
        assert "12 of 12 results" in page.inner_text("#progress-text")
        shot(page, "eval")
        for url in (f"{base}/runs", f"{base}/evals", f"{base}/runs/{why}"):
            page.goto(url)
            assert page.evaluate("document.body.dataset.errors") == "0", url
        browser.close()
    assert problems == []


async def test_a_form_on_another_sites_page_cannot_start_a_fork(tmp_path: Path, graph: Any) -> None:  # noqa: F811
    import http.server

    store = TraceStore(tmp_path / "runs")
    why = await record(graph, store, "why is the sky blue?")
    started: list[int] = []

    def spy() -> Any:
        started.append(1)
        return live()

    app = create_app(runs=store.root, evals=tmp_path / "evals", live=spy)
    with serve_app(app) as port:
        target = f"http://127.0.0.1:{port}/runs/{why}/fork"
        page_html = (f'<form method="post" action="{target}"><input name="step" value="1"><input name="role" '
                     'value="critic"></form><script>document.forms[0].submit()</script>').encode()

        class Evil(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the name http.server calls
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page_html)))
                self.end_headers()
                self.wfile.write(page_html)

            def log_message(self, *args: Any) -> None:
                pass

        evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)  # another origin: same address, another port
        threading.Thread(target=evil.serve_forever, daemon=True).start()
        try:
            answer = await asyncio.to_thread(_submit_from, f"http://127.0.0.1:{evil.server_address[1]}/", target)
        finally:
            evil.shutdown()
    app.state.jobs.join(10)
    assert answer[0] == 403 and answer[1].startswith("POST refused: "), answer
    assert "from another origin (Sec-Fetch-Site: same-site)" in answer[1] and started == []


def _submit_from(evil_url: str, target: str) -> tuple[int, str]:
    """The status and text the browser got for the form another site's page posted to `target`."""
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        with page.expect_response(target) as reply:
            page.goto(evil_url)
        status = reply.value.status
        page.wait_for_load_state()
        text = page.inner_text("body")
        browser.close()
    return status, text
