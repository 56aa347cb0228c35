"""Human input on the real embedded model, as docs/how-to/human-input.md runs it: the approval
example stops at its question, `rolegraph resume RUN --answer ...` goes on from the answer (a live
rewrite), and `rolegraph replay RUN` gives the recorded answer again offline: identical, no live
call."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from rolegraph.traces import HumanInput, ModelCall, TraceStore

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=900, check=False,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "COLUMNS": "200"})


def test_the_approval_example_pauses_and_resumes_from_the_command_line(tmp_path: Path, embedded_url: str) -> None:
    work = tmp_path / "human_input"
    shutil.copytree(ROOT / "examples" / "human_input", work)
    # every process of the test uses the session's embedded server
    (work / "rolegraph.toml").write_text(f'[endpoints.local]\nbase_url = "{embedded_url}"\n\n'
                                         '[roles.default]\nendpoint = "local"\nmodel = "smollm2-135m"\n')
    paused = run("approval.py", "the tides", cwd=work)
    assert paused.returncode == 0, paused.stderr
    found = re.search(r"^run (\S+): interrupted$", paused.stdout, re.M)
    assert found is not None, paused.stdout
    run_id = found.group(1)
    assert "Publish this draft?" in paused.stdout and "rolegraph resume" in paused.stdout

    shown = run("-m", "rolegraph", "trace", "show", run_id, cwd=work)
    assert "status interrupted" in shown.stdout and "waiting for human input: 1 question" in shown.stdout

    answer = {"approve": False, "note": "say what causes them"}
    resumed = run("-m", "rolegraph", "resume", run_id, "--answer", json.dumps(answer), cwd=work)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed {run_id}: status ok" in resumed.stdout
    trace = TraceStore(work / "runs").load(run_id)
    assert [e.answer for e in trace.of_kind(HumanInput)] == [answer]
    live = [e for e in trace.of_kind(ModelCall) if not e.replayed]
    assert len(live) == 2  # the draft before the question, the rewrite after the answer: nothing made twice
    assert "say what causes them" in (live[1].request.messages[-1].content or "")
    assert trace.finished is not None and trace.finished.output["state"]["final"]

    replayed = run("-m", "rolegraph", "replay", run_id, cwd=work)
    assert replayed.returncode == 0, replayed.stderr
    text = " ".join(replayed.stdout.split())
    assert "2 calls answered from the trace, 0 live; status ok" in text
    assert "1 human answer: 1 from the trace, 0 given" in text and "output: identical to the recorded run" in text
