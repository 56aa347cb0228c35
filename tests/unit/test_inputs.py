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


# Hardening (issue 14): every malformed file is one InputError line `FILE:LINE: field 'x': ...`.
OK_LINE = '{"question": "ok?", "choices": ["a", "b"], "correct_index": 1}\n'


def load_error(p: Path) -> str:
    with pytest.raises(InputError) as info:
        list(load_mcqs(p))
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(p))
    return message[len(str(p)):]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (OK_LINE + '{"question": "q", "choices": ["a", "b"], "correct_index": 0, "metadata": "x"}\n',
         ":2: field 'metadata': must be a JSON object, not a string"),
        (OK_LINE + '{"question": "q", "choices": ["a", "b"], "correct_index": true}\n',
         ":2: field 'correct_index': Input should be a valid integer"),
        (OK_LINE + '{"question": "q", "choices": ["a", "b"], "correct_index": "1"}\n',
         ":2: field 'correct_index': Input should be a valid integer"),
        (OK_LINE + '{"question": "' + "x" * (1 << 20) + '", "choices": ["a", "b"], "correct_index": 0}\n',
         ":2: line is longer than 1 MiB, the limit per input line"),
    ],
)
def test_jsonl_findings(tmp_path: Path, body: str, expected: str) -> None:
    p = tmp_path / "cases.jsonl"
    p.write_text(body)
    assert load_error(p) == expected


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_latin1_and_binary_files_are_not_utf8(tmp_path: Path, suffix: str) -> None:
    p = tmp_path / f"cases{suffix}"
    head = OK_LINE if suffix == ".jsonl" else "question,choices,correct_index\n"
    p.write_bytes(head.encode() + 'caf\xe9 "q"\n'.encode("latin-1"))
    assert load_error(p) == ":2: not UTF-8 text (byte 0xe9 at byte 4 of the line); save the file as UTF-8"
    p.write_bytes(b"\x1f\x8b\x08\x00\xff\xfe")  # a gzip header
    assert load_error(p) == ":1: not UTF-8 text (byte 0x8b at byte 2 of the line); save the file as UTF-8"


@pytest.mark.parametrize("body", ["", "\n  \n"])
def test_empty_file_is_refused(tmp_path: Path, body: str) -> None:
    for name in ("cases.jsonl", "cases.csv"):
        p = tmp_path / name
        p.write_text(body if name.endswith(".jsonl") else "question,choices,correct_index\n" + body)
        with pytest.raises(InputError, match=r"^no cases in .*cases\.(jsonl|csv) \(the file is empty"):
            list(load_mcqs(p))


CSV_HEAD = "key_question,question,choices,correct_index\n"


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ('1,q,"{[1], 2}",0\n', ":2: field 'choices': not a list literal: '{[1], 2}'"),
        ('1,q,"{\'a\', \'b\'}",0\n', ":2: field 'choices': must be a list of options, not set: \"{'a', 'b'}\""),
        ('1,q,"[\'a\', \'b\']",true\n', ":2: field 'correct_index': must be a whole number, not 'true'"),
        ('1,"' + "x\n" * (600 * 1024) + '","[\'a\', \'b\']",0\n',
         ":2: a field is longer than 1 MiB, the limit per input field"),
        ('1,"' + "x" * (1 << 20) + '","[\'a\', \'b\']",0\n', ":2: line is longer than 1 MiB, the limit per input line"),
        ('1,q,"[\'a\', \'b\']",0,extra\n', ":2: 1 more value(s) than there are columns"),
    ],
)
def test_csv_findings(tmp_path: Path, row: str, expected: str) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(CSV_HEAD + row)
    assert load_error(p) == expected


def test_csv_field_over_128_kib_loads(tmp_path: Path) -> None:
    p = tmp_path / "big.csv"
    p.write_text(CSV_HEAD + '1,"' + "x" * 200_000 + '","[\'a\', \'b\']",1\n')
    (m,) = load_mcqs(p)
    assert len(m.question) == 200_000


def test_csv_with_byte_order_mark_keeps_key_question(tmp_path: Path) -> None:
    p = tmp_path / "bom.csv"
    p.write_bytes(b"\xef\xbb\xbf" + (CSV_HEAD + '7,q,"[\'a\', \'b\']",1\n').encode())
    (m,) = load_mcqs(p)
    assert (m.key, m.metadata) == ("7", {})
    j = tmp_path / "bom.jsonl"
    j.write_bytes(b"\xef\xbb\xbf" + OK_LINE.encode())
    assert [m.question for m in load_mcqs(j)] == ["ok?"]


def test_generic_readers_share_the_checks(tmp_path: Path) -> None:
    from rolegraph.evals._any import graph_cases
    from rolegraph.graphs.cli import read_inputs
    from rolegraph.graphs.mcq import mcq

    p = tmp_path / "cases.jsonl"
    p.write_text(OK_LINE + '{"input": {"question": "q", "choices": ["a", "b"], "correct_index": 0}, "metadata": [1]}\n')
    with pytest.raises(InputError, match=r"^.*cases\.jsonl:2: field 'metadata': must be a JSON object, not a list$"):
        graph_cases(mcq, p)
    p.write_bytes(OK_LINE.encode() + b'{"question": "\xff"}\n')
    for read in (graph_cases, read_inputs):
        with pytest.raises(InputError, match=r"cases\.jsonl:2: not UTF-8 text \(byte 0xff at byte 15 of the line\)"):
            read(mcq, p)
    p.write_text("\n")
    for read in (graph_cases, read_inputs):
        with pytest.raises(InputError, match=r"^no cases in .*cases\.jsonl"):
            read(mcq, p)
