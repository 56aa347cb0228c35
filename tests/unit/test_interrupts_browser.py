"""Human input in `rolegraph ui`, in a real browser (Playwright driving Debian's chromium): a run that
stopped at a question shows the question on its page with a form; answering it resumes the run, whose
page then shows its next question, and after that answer the run's end. No console errors.
Screenshots go to $ROLEGRAPH_SCREENSHOTS when it is set."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rolegraph import Runtime
from rolegraph.models import FunctionModel
from rolegraph.traces import HumanInput, TraceStore
from rolegraph.ui import create_app
from tests.conftest import CHROMIUM, serve_app
from tests.conftest import CHROMIUM_ARGS as ARGS
from tests.unit.test_interrupts import Ask, approval, planner, runtime_at

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium at /usr/bin/chromium "
                                "(apt-get install chromium); a browser download does not work on these machines")


def live() -> Runtime:
    return Runtime.from_models({"default": FunctionModel(planner)})


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    app = create_app(runs=tmp_path / "runs", evals=tmp_path / "evals", live=live, live_description="a scripted model")
    with serve_app(app) as port:
        yield f"http://127.0.0.1:{port}"
    app.state.resumes.join(10)


def shot(page: Any, name: str) -> None:
    folder = os.environ.get("ROLEGRAPH_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


async def test_a_paused_run_shows_its_question_and_resumes_from_the_form(tmp_path: Path, served: str) -> None:
    runtime, _ = runtime_at(tmp_path / "runs")
    paused = await approval.run(Ask(topic="tides"), runtime=runtime)
    assert paused.status == "interrupted"
    # Playwright's sync API refuses to run inside an event loop: the browser runs in a thread of its own
    await asyncio.to_thread(_answer_in_browser, served, str(paused.run_id))
    trace = TraceStore(tmp_path / "runs").load(str(paused.run_id))
    assert trace.status == "ok" and trace.finished is not None
    assert trace.finished.output["state"]["final"] == "{'approve': True} / shorter, please"
    assert [e.answer for e in trace.of_kind(HumanInput)] == [{"approve": True}, "shorter, please"]


def _answer_in_browser(base: str, run_id: str) -> None:
    problems: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)

        page.goto(f"{base}/runs?status=interrupted")
        assert page.locator(f"#runs tr[data-run='{run_id}'] .status").inner_text() == "interrupted"
        page.click(f"a[href='/runs/{run_id}']")
        page.wait_for_url(f"**/runs/{run_id}")
        assert page.locator("header .status").inner_text() == "interrupted"
        question = page.locator("#questions .question")
        assert question.count() == 1 and "approve plan for tides?" in question.inner_text()
        shot(page, "interrupted-run")

        page.locator("#resume-form textarea").fill('{"approve": true}')
        page.click("#resume-form button[type=submit]")
        page.wait_for_url(f"**/runs/{run_id}")
        # the page reloads while the run goes on, until it stops again: at its second question
        page.wait_for_function("() => document.querySelector('#questions pre') && "
                               "document.querySelector('#questions pre').textContent.includes('any note?')",
                               timeout=20_000)
        shot(page, "second-question")
        page.locator("#resume-form textarea").fill("shorter, please")
        page.click("#resume-form button[type=submit]")
        page.wait_for_function("() => document.querySelector('header .status').textContent === 'ok'", timeout=20_000)
        assert page.locator("#questions").count() == 0
        page.locator("details.step").nth(1).evaluate("el => el.open = true")
        answers = page.locator("details.step").nth(1).locator(".msg.asked")
        assert answers.count() == 2 and "shorter, please" in answers.nth(1).inner_text()
        shot(page, "answered-run")
        browser.close()
    assert not problems, problems
