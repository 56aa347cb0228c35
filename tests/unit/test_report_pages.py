"""An eval report's case pages share one copy of the viewer's script instead of inlining 3.4 MB each."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from rolegraph import Runtime
from rolegraph.evals import EvalStore, run_eval, write_report
from rolegraph.evals.mcq import mcq_benchmark
from rolegraph.models import FunctionModel
from rolegraph.traces import Trace
from rolegraph.traces._view import ASSETS, write_view

CHROMIUM = shutil.which("chromium")
SCRIPT = (ASSETS / "mermaid.min.js").stat().st_size
QUESTION = {"question": "Which organelle makes ATP?", "choices": ["Nucleus", "Mitochondrion", "Golgi"],
            "correct_index": 1}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("disk")
    data = root / "mcqs.jsonl"
    data.write_text("".join(json.dumps({"key_question": f"q{i}", **QUESTION}) + "\n" for i in range(3)))
    runtime = Runtime.from_models({"default": FunctionModel(lambda req: "Reasoning. The answer is (b)")},
                                  traces=root / "runs")
    store = EvalStore(root / "eval" / "results.sqlite")
    summary = asyncio.run(run_eval(mcq_benchmark(data), runtime, store=store, progress=False))
    assert summary.ran == 3 and summary.errors == 0
    return write_report(store)


def test_three_case_pages_share_one_script(report: Path) -> None:
    out = report.parent
    pages = sorted((out / "traces").glob("*.html"))
    assert len(pages) == 3
    assert (out / "assets" / "mermaid.min.js").stat().st_size == SCRIPT  # written once, whole
    assert (out / "assets" / "mermaid.LICENSE").exists() and (out / "assets" / "view.css").exists()
    # nothing else anywhere under the evaluation holds a copy of the script
    copies = [p for p in out.parent.parent.rglob("*") if p.is_file() and p.stat().st_size >= SCRIPT]
    assert copies == [out / "assets" / "mermaid.min.js"]
    html = report.read_text()
    for page in pages:
        text = page.read_text()
        assert len(text) < 20_000
        assert '<script src="../assets/mermaid.min.js"></script>' in text
        assert 'href="../assets/view.css"' in text
        assert '<pre class="mermaid">' in text and "graph TD" in text  # the graph's source is there
        assert f'href="traces/{page.name}"' in html  # linked from the report by relative path
    # writing the report again reuses the pages and the shared copy
    before = {p: p.stat().st_mtime_ns for p in [*pages, out / "assets" / "mermaid.min.js"]}
    write_report(EvalStore(out.parent / "results.sqlite"))
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_standalone_view_stays_self_contained(report: Path, tmp_path: Path) -> None:
    run_dir = next((report.parent.parent.parent / "runs").glob("*-mcq-*"))
    page = write_view(Trace.load(run_dir), tmp_path / "one.html")
    text = page.read_text()
    assert "<script src" not in text and '<link rel="stylesheet"' not in text and len(text) > SCRIPT
    assert all(href.startswith("data:") for href in re.findall(r'<link [^>]*href="([^"]*)"', text))  # nothing fetched


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium); .ci/run installs it")
def test_case_page_renders_graph_in_chromium(report: Path) -> None:
    page = next((report.parent / "traces").glob("*.html"))
    with tempfile.TemporaryDirectory() as profile:
        dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                              "--disable-component-update", "--disable-sync", "--no-first-run",
                              f"--user-data-dir={profile}", "--virtual-time-budget=15000", "--dump-dom",
                              page.resolve().as_uri()], capture_output=True, text=True, timeout=120, check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-rendered="ok"' in dom.stdout and 'data-errors="0"' in dom.stdout
    assert re.search(r'<div class="card" id="graph">.*?<svg', dom.stdout, flags=re.S)  # the graph was drawn
