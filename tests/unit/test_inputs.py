"""Input files: MCQs from JSONL and MicroVQA's CSV; malformed rows name the line and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rolegraph import InputError
from rolegraph.envs.mcq import load_mcqs
from tests.conftest import SAMPLE_MCQS


def test_sample_set_loads() -> None:
    mcqs = list(load_mcqs(SAMPLE_MCQS))
    assert len(mcqs) >= 20
    assert len({m.key for m in mcqs}) == len(mcqs)
    assert {m.correct_index for m in mcqs} != {0}  # the answers are not all in one position


def test_microvqa_csv(tmp_path: Path) -> None:
    p = tmp_path / "demo.csv"
    p.write_text(
        'key_question,question,choices,correct_index,use_case\n'
        '7,"What is stained?","[\'nuclei\', \'actin\', \'tubulin\']",1,2\n'
        '8,"Which phase?","{\'choices\': [\'G1\', \'M\'], \'correct_index\': 1}",,1\n'
    )
    a, b = load_mcqs(p)
    assert (a.key, a.choices, a.correct_index, a.metadata["use_case"]) == ("7", ["nuclei", "actin", "tubulin"], 1, "2")
    assert (b.key, b.choices, b.correct_index) == ("8", ["G1", "M"], 1)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"question": "q", "choices": ["a"], "correct_index": 0}', ":2: field 'choices'"),
        ('{"question": "q", "choices": ["a", "b"], "correct_index": 5}', ":2: .*correct_index 5"),
        ('{"question": "q", "choices": ["a", "b"]}', ":2: field 'correct_index': Field required"),
        ('{"question": "q", "choices": ["a", "b"], "correct_index": "x"}', ":2: field 'correct_index'"),
        ('{"question": "q", "choices": ', ":2: not valid JSON"),
    ],
)
def test_malformed_jsonl_names_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    p = tmp_path / "cases.jsonl"
    p.write_text('{"question": "ok?", "choices": ["a", "b"], "correct_index": 1}\n' + line + "\n")
    with pytest.raises(InputError, match=message):
        list(load_mcqs(p))


def test_malformed_csv_choices(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text('key_question,question,choices,correct_index\n1,q,"[\'a\', \'b\'",0\n')
    with pytest.raises(InputError, match=r"bad.csv:2: field 'choices': not a list literal"):
        list(load_mcqs(p))


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rolegraph", *args], capture_output=True, text=True, check=False,
                          cwd=cwd, timeout=60)


def test_cli_reports_bad_input_in_one_line(tmp_path: Path) -> None:
    p = tmp_path / "cases.jsonl"
    p.write_text('{"question": "q", "choices": ["a", "b"], "correct_index": 3}\n')
    result = cli("run", "refinebot", "--input", str(p), cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cases.jsonl:1" in lines[0] and "correct_index 3" in lines[0]
    assert not (tmp_path / "refinebot-results.jsonl").exists()


def test_cli_debug_shows_traceback(tmp_path: Path) -> None:
    result = cli("--debug", "run", "refinebot", "--input", "missing.jsonl", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" in result.stderr


def test_cli_config_error_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "rolegraph.toml").write_text('[roles.evaluator]\nendpoint = "gpu"\n')
    result = cli("run", "refinebot", "--input", str(SAMPLE_MCQS), "--limit", "1", cwd=tmp_path)
    assert result.returncode == 1
    assert "error: rolegraph.toml: role 'evaluator' uses endpoint 'gpu'" in result.stderr.strip()


def test_cli_version() -> None:
    result = cli("--version", cwd=Path.cwd())
    assert result.returncode == 0 and result.stdout.startswith("rolegraph 0.")


def test_network_guard_blocks_other_hosts() -> None:
    import socket

    with socket.socket() as s, pytest.raises(ConnectionRefusedError, match=r"only connect to 127\.0\.0\.1"):
        s.connect(("10.1.2.3", 80))
