"""Prompt optimisation with DSPy against a real HTTP endpoint (a stub that answers in DSPy's chat
format): metric before and after, demos, and a prompt file the agent can load."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rolegraph import Runtime
from rolegraph.envs.mcq import load_mcqs
from rolegraph.models.servers.loadtest import LoadTestServer
from rolegraph.prompts import PromptLibrary
from tests.conftest import ROOT, SAMPLE_MCQS

pytest.importorskip("dspy", reason="optimisation needs the [optimize] extra (make setup installs it)")


VALUES = {
    "answer": "b",
    "question_stem": "A stained section shows dark granules. What are they?",
    "choices": '["Glycogen deposits", "Lipid droplets", "Iron deposits", "Melanin granules"]',
    "correct_index": "0",
}


def chat_format(body: dict) -> str:
    """Answer in DSPy's chat format with whatever output fields the request's system message asks
    for (so the optimisers' own proposal prompts parse too)."""
    system = body["messages"][0]["content"]
    block = re.search(r"Your output fields are:(.*?)(?:All interactions|\Z)", system, re.S)
    fields = re.findall(r"\d+\. `(\w+)`", block.group(1)) if block else ["answer"]
    parts = [f"[[ ## {f} ## ]]\n{VALUES.get(f, 'Answer carefully; end with the letter of the best option.')}\n"
             for f in fields]
    return "\n".join(parts) + "\n[[ ## completed ## ]]"


@pytest.fixture
def stub_url() -> Iterator[tuple[str, LoadTestServer]]:
    loop = asyncio.new_event_loop()
    server = LoadTestServer(delay_s=0.0, reply=chat_format)
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    yield server.base_url, server
    asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def runtime_for(url: str, tmp_path: Path) -> Runtime:
    cfg = tmp_path / "rolegraph.toml"
    cfg.write_text(f'[endpoints.stub]\nbase_url = "{url}"\ndialect = "openai"\n'
                   '[roles.default]\nendpoint = "stub"\nmodel = "stub"\n')
    return Runtime.load(cfg, env={})


def test_bootstrap_optimises_the_answerer_and_writes_a_loadable_prompt(stub_url: tuple[str, LoadTestServer],
                                                                        tmp_path: Path) -> None:
    from rolegraph.evals.optimize import optimize

    url, server = stub_url
    result = optimize("answerer", SAMPLE_MCQS, runtime_for(url, tmp_path), out_dir=tmp_path / "prompts", max_demos=2)
    assert server.requests > 0  # the LM calls went to our endpoint
    mcqs = list(load_mcqs(SAMPLE_MCQS))
    share_b = sum(m.correct_index == 1 for m in mcqs) / len(mcqs)
    assert 0 <= result.before <= 1 and result.after == pytest.approx(result.before)  # the stub always says b
    assert share_b > 0 and result.demos == 2
    # the new version sits where a user prompt directory overrides the package's, and renders
    template = PromptLibrary(tmp_path / "prompts").get("mcq/answer")
    assert template.source != PromptLibrary().get("mcq/answer").source
    text = template.render(question="Q?", options="(a) x\n(b) y", no_image=True, label_example="a").messages[-1].content
    assert text is not None and "Example 1:" in text and "The answer is (b)" in text and text.rstrip().endswith("(b) y")
    assert (tmp_path / "prompts" / "optimize-answerer.json").exists()


def test_stage1_writer_metric_and_optimisation(stub_url: tuple[str, LoadTestServer], tmp_path: Path) -> None:
    import dspy

    from rolegraph.evals.optimize import optimize, writer_metric

    ex = dspy.Example(question="What are the granules?", answer="Glycogen deposits")
    good = dspy.Prediction(question_stem="Dark granules fill the cells. What are they?",
                           choices=["Glycogen deposits", "Lipid droplets", "Iron deposits", "Melanin granules"],
                           correct_index=0)
    assert writer_metric(ex, good) == 1.0
    leaky = dspy.Prediction(question_stem="Are these glycogen deposits?", choices=good.choices, correct_index=0)
    assert writer_metric(ex, leaky) == 0.75  # the stem gives the answer away
    wrong = dspy.Prediction(question_stem=good.question_stem, choices=good.choices, correct_index=1)
    assert writer_metric(ex, wrong) == 0.75  # the marked option is not the answer; the rest holds
    assert writer_metric(ex, dspy.Prediction(question_stem="x", choices=[], correct_index=3)) == 0.0

    url, _ = stub_url
    result = optimize("mcq_writer", ROOT / "examples" / "data" / "qa_pairs.jsonl", runtime_for(url, tmp_path),
                      out_dir=tmp_path / "prompts", max_demos=1)
    assert result.after >= 0.5 and result.demos == 1
    assert "Example 1:" in PromptLibrary(tmp_path / "prompts").get("mcq/write").source


def test_mipro_runs_against_the_endpoint(stub_url: tuple[str, LoadTestServer], tmp_path: Path) -> None:
    from rolegraph.evals.optimize import optimize

    url, server = stub_url
    result = optimize("answerer", SAMPLE_MCQS, runtime_for(url, tmp_path), optimizer="mipro",
                      out_dir=tmp_path / "prompts", max_demos=1)
    assert server.requests > 50  # proposals, trials and evaluations all went to the endpoint
    assert result.after >= result.before and result.prompt_file.exists()
