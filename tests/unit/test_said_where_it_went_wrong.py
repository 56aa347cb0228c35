"""Mistakes are caught where they are made and shown where the user looks: each test makes one of the
mistakes a new user makes and checks the exact line the user reads (one line, no traceback, naming
the file, line, key or node to fix)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TypedDict

import pytest
from langgraph.types import Command

import rolegraph as rg
from rolegraph import ConfigError, InputError, Runtime, UserError
from rolegraph._inputs import text_lines
from rolegraph.cli import DIFF_LINES_SHOWN, print_replay_diff
from rolegraph.config import load_config
from rolegraph.envs.mcq import load_mcqs
from rolegraph.errors import ReplayMismatch
from rolegraph.graphs._updates import update_checker
from rolegraph.models import ScriptedModel

ROOT = Path(__file__).resolve().parents[2]

GRAPHS = '''
from typing import Any

from pydantic import BaseModel

import rolegraph as rg


class In(BaseModel):
    id: str
    topic: str


class TextState(BaseModel):
    id: str
    topic: str
    text: str = ""


class Out(rg.RunResult):
    text: str = ""


writer = rg.Agent(name="writer", prompt="hello", output=str, max_tokens=20)


async def write(state: TextState) -> dict[str, Any]:
    return {"txt": state.topic}  # a typo: the state's field is `text`


async def greet(state: TextState, runtime: rg.Runtime) -> dict[str, Any]:
    return {"text": await writer.run(runtime, topic=state.topic)}


@rg.graph(input=In, state=TextState, result=Out, prompts="prompts/", agents=[writer])
def typo(g: rg.StateGraph) -> None:
    g.add_node(write)
    g.add_edge(rg.START, "write")


@rg.graph(input=In, state=TextState, result=Out, prompts="prompts/", agents=[writer])
def greeting(g: rg.StateGraph) -> None:
    g.add_node(greet)
    g.add_edge(rg.START, "greet")
'''

HELLO = "{% block user %}\nWrite about\n{{ topik }}.\n{% endblock %}\n"
"""A template whose line 3 misspells the variable its agent is given (`topic`)."""

TYPO = ("UserError: node 'write' returned key 'txt' (did you mean 'text'?), which the state TextState does not have; "
        "its keys: id, text, topic. Return only the state's keys (LangGraph would drop any other without a word), or "
        "add the field to TextState")


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A user's folder: the graphs above in g29.py, the template, two inputs."""
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "hello.j2").write_text(HELLO)
    (tmp_path / "g29.py").write_text(GRAPHS)
    (tmp_path / "in.jsonl").write_text('{"id": "c1", "topic": "cats"}\n{"id": "c2", "topic": "dogs"}\n')
    return tmp_path


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLEGRAPH")}
    return subprocess.run([sys.executable, "-m", "rolegraph", *args], cwd=cwd, capture_output=True, text=True,
                          check=False, timeout=120, env={**env, "PYTHONPATH": str(ROOT), "COLUMNS": "200"})


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command ends with (after checking it failed, without a traceback)."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr.strip().splitlines()[-1]


def test_a_node_returning_a_key_the_state_lacks_fails_naming_the_node_the_key_and_the_states_keys(work: Path) -> None:
    result = cli("run", "g29.py:typo", "--input", "in.jsonl", cwd=work)
    lines = result.stdout.splitlines()
    assert f"failed line 1 (id c1), seed 0: {TYPO}" in lines  # one line per failed run, with its input's id
    assert f"failed line 2 (id c2), seed 0: {TYPO}" in lines
    assert "2 of 2 runs failed; every error is in typo-results.jsonl" in lines
    assert error_line(result) == f"error: every run of typo failed (the first: {TYPO}); see the errors in typo-results.jsonl"


def test_a_misspelt_role_in_the_config_is_refused_before_anything_runs(work: Path) -> None:
    (work / "rolegraph.toml").write_text("[roles.wrtier]\ntemperature = 0.0\n")
    refused = cli("run", "g29.py:typo", "--input", "in.jsonl", cwd=work)
    assert error_line(refused) == (
        "error: rolegraph.toml: table [roles.wrtier] configures a role that no graph, agent or default uses (did you "
        "mean [roles.writer]?); the roles graph 'typo' uses: writer, and default. Rename or remove the table, or pass "
        "--allow-unused-roles")
    assert not (work / "typo-results.jsonl").exists()
    allowed = cli("run", "g29.py:typo", "--input", "in.jsonl", "--allow-unused-roles", cwd=work)
    assert "configures a role" not in allowed.stderr and (work / "typo-results.jsonl").is_file()


def test_a_config_error_names_the_file_the_table_and_the_key_when_it_loads(work: Path) -> None:
    (work / "rolegraph.toml").write_text('[endpoints.dead]\nbase_url = "http://127.0.0.1:9/v1"\n\n'
                                         '[roles.writer]\nendpoint = "dead"\n')
    result = cli("run", "g29.py:typo", "--input", "in.jsonl", cwd=work)
    assert error_line(result) == (
        "error: rolegraph.toml: table [roles.writer] has no key model: role 'writer' is served by endpoint 'dead', "
        'which needs the model name to ask for; set model = "..." there')
    (work / "rolegraph.toml").write_text("[roles.writer]\ntemprature = 0.0\n")
    with pytest.raises(ConfigError) as info:
        load_config(work / "rolegraph.toml", env={})
    assert str(info.value) == (
        f"{work / 'rolegraph.toml'}: table [roles.writer] has no key 'temprature' (did you mean 'temperature'?); "
        "known: endpoint, max_tokens, model, seed, temperature, top_p (roles.writer.temprature: Extra inputs are "
        "not permitted)")
    with pytest.raises(ConfigError) as info:
        load_config(work / "rolegraph.toml", env={"ROLEGRAPH__ROLES__WRITER__TEMPRATURE": "1"})
    assert "(set by $ROLEGRAPH__ROLES__WRITER__TEMPRATURE)" in str(info.value)


def test_an_undefined_template_variable_names_the_template_file_and_line_and_the_variables_passed(work: Path) -> None:
    result = cli("run", "g29.py:greeting", "--input", "in.jsonl", cwd=work)
    assert ("failed line 1 (id c1), seed 0: PromptError: prompts/hello.j2:3 (prompt 'hello'): 'topik' is undefined; the "
            "variables passed: topic; did you mean 'topic'? (fix the template, or pass 'topik' to the agent's run())"
            ) in result.stdout.splitlines()
    assert error_line(result).startswith("error: every run of greeting failed (the first: PromptError: prompts/hello.j2:3")


def test_csv_given_where_jsonl_is_read_names_both_formats_and_the_line(work: Path) -> None:
    (work / "in.csv").write_text("id,topic\nc1,cats\n")
    assert error_line(cli("run", "g29.py:typo", "--input", "in.csv", cwd=work)) == (
        "error: in.csv:1: expected JSONL (one JSON object per line), found CSV (comma-separated values): 'id,topic'; "
        'write each input as a JSON object on a line of its own, like {"id": ..., "topic": ...}')


def test_utf16_input_names_the_encoding_found(work: Path) -> None:
    (work / "in16.jsonl").write_bytes('{"id": "c1", "topic": "cats"}\n'.encode("utf-16-le"))
    assert error_line(cli("run", "g29.py:typo", "--input", "in16.jsonl", cwd=work)) == (
        "error: in16.jsonl:1: UTF-16 (little-endian, no byte-order mark) text (NUL bytes between its characters), not "
        "UTF-8; save the file as UTF-8")
    (work / "bom.jsonl").write_bytes('{"id": "c1"}\n'.encode("utf-16"))  # with its byte-order mark
    with pytest.raises(InputError) as info:
        list(text_lines(work / "bom.jsonl"))
    assert str(info.value) == (f"{work / 'bom.jsonl'}:1: UTF-16 (little-endian, with a byte-order mark) text, not "
                               "UTF-8; save the file as UTF-8")


def test_a_directory_given_as_the_input_says_it_is_one(work: Path) -> None:
    (work / "inputs").mkdir()
    (work / "inputs" / "cases.jsonl").write_text('{"id": "c1", "topic": "cats"}\n')
    assert error_line(cli("run", "g29.py:typo", "--input", "inputs", cwd=work)) == (
        "error: inputs: is a directory, not a file; give the input file itself (JSONL, one JSON object per line); "
        "input files in it: cases.jsonl")


@pytest.mark.parametrize(("row", "problem"), [
    ('What is 1+1?,"[1,2],0\nWhat is 2?,"[3,4]",1\n',
     "a quote (\") opened in this row is not closed on its line, so the row runs on to line 3: 'What is 1+1?,\"[1,2],0'"),
    ('"What is 1+1?,"[1,2]",0\n', "text follows the closing quote (\") of a field: '\"What is 1+1?,\"[1,2]\",0'"),
])
def test_a_csv_quoting_mistake_is_reported_at_its_row_as_that(tmp_path: Path, row: str, problem: str) -> None:
    p = tmp_path / "q.csv"
    p.write_text("question,choices,correct_index\n" + row)
    with pytest.raises(InputError) as info:
        list(load_mcqs(p))
    assert str(info.value) == (f"{p}:2: a CSV quoting problem: {problem}. Put a field that holds a comma or a quote in "
                               'quotes, and write each quote inside it twice ("")')


def test_every_case_of_an_evaluation_failing_shows_the_first_error(work: Path) -> None:
    line = error_line(cli("eval", "g29.py:typo", "--data", "in.jsonl", "--out", "evals", cwd=work))
    assert re.fullmatch(rf"error: every case of typo failed \(the first, case c[12]: {re.escape(TYPO)}\); see "
                        r"evals/\S+/report/report\.html", line), line


def test_a_replay_mismatch_prints_the_diff_bounded_with_the_file_that_holds_all_of_it(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICE_API_KEY", "sk-abcdef123456")
    diff = "\n".join(["--- recorded", "+++ now", *(f"-line {i} sk-abcdef123456" for i in range(100))])
    print_replay_diff(ReplayMismatch("replay: ...", diff).diff)
    shown = capsys.readouterr().err.splitlines()
    assert shown[:2] == ["--- recorded", "+++ now"] and len(shown) == DIFF_LINES_SHOWN + 1
    assert shown[-2] == "-line 37 [REDACTED]"
    found = re.fullmatch(r"\.\.\. the whole diff \(102 lines\): (\S+\.diff)", shown[-1])
    assert found is not None, shown[-1]
    whole = Path(found.group(1)).read_text()
    Path(found.group(1)).unlink()
    assert whole.splitlines()[-1] == "-line 99 [REDACTED]" and "sk-abcdef123456" not in whole
    print_replay_diff("--- recorded\n+++ now\n-a\n+b")  # a short diff is printed whole, and no file is written
    assert capsys.readouterr().err.splitlines() == ["--- recorded", "+++ now", "-a", "+b"]


async def test_in_code_the_same_node_mistake_raises_where_it_is_made(work: Path) -> None:
    sys.path.insert(0, str(work))
    try:
        from rolegraph.graphs import load_graph

        graph = load_graph(f"{work / 'g29.py'}:typo")
        async with Runtime.from_models({"writer": ScriptedModel([])}) as rt:
            with pytest.raises(UserError) as info:
                await graph.run({"id": "c1", "topic": "cats"}, runtime=rt)
    finally:
        sys.path.remove(str(work))
    assert f"{type(info.value).__name__}: {info.value}" == TYPO


class Draft(TypedDict, total=False):
    topic: str
    text: str


def test_a_typeddict_states_command_updates_are_checked_and_a_handoff_to_the_parent_graph_is_not() -> None:
    check = update_checker(rg.StateGraph(Draft), "write")
    check({"text": "x"})
    check(Command(update={"text": "x"}, goto="next"))
    check([Command(update=[("topic", "y")]), {"text": "x"}])
    check(Command(graph=Command.PARENT, update={"messages": []}, goto="supervisor"))  # the parent's keys
    check(None)
    with pytest.raises(UserError) as info:
        check(Command(update={"txt": "x", "topic": "y"}, goto="next"))
    assert str(info.value) == (
        "node 'write' returned key 'txt' (did you mean 'text'?), which the state Draft does not have; its keys: text, "
        "topic. Return only the state's keys (LangGraph would drop any other without a word), or add the field to Draft")
