"""One scorer shape: the same `fn(output, target)` scores an evaluation, `eval compare` compares
every scorer two evaluations share and says which, and blame and fork-compare take the function
unchanged; a function is bound by position and by name the same way everywhere."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import rolegraph as rg
from rolegraph.cli import app
from rolegraph.config import EndpointConfig, RoleConfig, RuntimeConfig
from rolegraph.evals import Benchmark, Case, EvalStore, FunctionScorer, load_scorer, run_eval
from rolegraph.evals.blame import blame
from rolegraph.evals.fork_compare import fork_compare
from rolegraph.models.servers.loadtest import LoadTestServer
from rolegraph.traces import TraceStore

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "blame"))
from planted import over_http, planted  # noqa: E402 - the example's folder first

SCORERS = '''
SHAPES = []

def kept(output, target):
    """The run succeeded as the target says it should."""
    SHAPES.append(type(output).__name__)
    return output["success"] == target

def answers(output):
    return len(output["answers"]) / 10
'''


async def test_one_scorer_runs_through_eval_compare_blame_and_fork_compare(tmp_path: Path) -> None:
    file = tmp_path / "scorers.py"
    file.write_text(SCORERS)
    kept, answers = load_scorer(f"{file}:kept"), load_scorer(f"{file}:answers")
    assert isinstance(kept, FunctionScorer)
    cases = [Case(id=f"c{i}", input={"fault": 1 + i % 4, "q": 0.5}, target=True) for i in range(8)]
    async with LoadTestServer(delay_s=0.0, reply=over_http) as server:
        def runtime(decider: str) -> rg.Runtime:
            roles = {"default": RoleConfig(endpoint="stub", model="stub"), "decider": RoleConfig(endpoint="stub",
                                                                                               model=decider)}
            config = RuntimeConfig(endpoints={"stub": EndpointConfig(base_url=server.base_url, dialect="openai")},
                                   roles=roles)
            return rg.Runtime(config, traces=TraceStore(tmp_path / "runs"))

        for name, decider, scorers in (("a", "stub", [kept, answers]), ("b", "careful", [kept])):
            bench = Benchmark(name="planted", cases=lambda: cases, solver=planted.solver(), scorers=scorers)
            async with runtime(decider) as rt:
                await run_eval(bench, rt, store=EvalStore(tmp_path / name / "results.sqlite"), progress=False)
        failed = next(r for r in EvalStore(tmp_path / "a" / "results.sqlite").records() if r.scores["kept"].value == 0)
        fault = next(c.input["fault"] for c in cases if c.id == failed.case_id)
        async with runtime("stub") as rt:
            report = await blame(TraceStore(tmp_path / "runs").load(failed.run_id or ""), live=rt,
                                 out=tmp_path / "blame", scorer=kept, target=True, method="bisect", progress=False)
            compared = await fork_compare(tmp_path / "a", live=rt, at="decider", model="careful", samples=2,
                                          scorer=kept, progress=False)
    assert report.outcome == 0.0 and report.decisive == fault
    assert compared.changed_mean == 1.0 and compared.recorded_mean < 1.0
    # every caller gave the function the same shape: the graph's result as a dict
    assert set(kept.fn.__globals__["SHAPES"]) == {"dict"}  # type: ignore[attr-defined]

    result = CliRunner().invoke(app, ["eval", "compare", str(tmp_path / "a"), str(tmp_path / "b")],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "comparing every scorer both share: kept; not compared: answers (only in" in result.output
    assert "kept: B - A on 8 shared cases" in result.output and "answers: B - A" not in result.output
    missing = CliRunner().invoke(app, ["eval", "compare", str(tmp_path / "a"), str(tmp_path / "b"),
                                       "--scorer", "answers"], env={"COLUMNS": "200"})
    assert isinstance(missing.exception, rg.UserError) and "--scorer answers: no result of" in str(missing.exception)


def test_a_scorer_is_bound_by_position_and_by_name() -> None:
    async def call(fn: Any, **extra: Any) -> float:
        case = Case(id="c", input={"q": 1}, target="T")
        return (await FunctionScorer(fn)(case, {"text": "has T"}, **extra)).value

    import asyncio

    assert asyncio.run(call(lambda output, target: target in output["text"])) == 1.0
    assert asyncio.run(call(lambda answer, expected: expected in answer["text"])) == 1.0  # any names, by position
    assert asyncio.run(call(lambda target, output: target in output["text"])) == 1.0  # by name, any order
    assert asyncio.run(call(lambda output, *, case, input: case.id == "c" and input == {"q": 1})) == 1.0
    assert asyncio.run(call(lambda result: result.ok, result=type("R", (), {"ok": True})())) == 1.0
    assert asyncio.run(call(lambda output, **kw: sorted(kw) == ["case", "input"])) == 1.0
    with pytest.raises(rg.UserError, match="parameter 'threshold' is not one rolegraph passes"):
        FunctionScorer(lambda output, target, threshold: 1.0)


def test_eval_refuses_a_scorer_that_wants_the_result_object(tmp_path: Path) -> None:
    (tmp_path / "s.py").write_text("def won(result):\n    return result.success\n")
    (tmp_path / "cases.jsonl").write_text('{"input": {"fault": 1}, "target": true}\n')
    result = CliRunner().invoke(app, ["eval", f"{ROOT / 'examples' / 'blame' / 'planted.py'}:planted",
                                      "--data", str(tmp_path / "cases.jsonl"), "--scorer", f"{tmp_path / 's.py'}:won",
                                      "--out", str(tmp_path / "evals")], env={"COLUMNS": "200"})
    assert isinstance(result.exception, rg.UserError)  # the command line prints it as one line
    assert "it asks for `result`, the graph's result object, which only blame and fork-compare have" in str(
        result.exception)
