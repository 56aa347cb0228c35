"""examples/own_graph as docs/getting-started.md runs it: the user's graph file over JSONL on the embedded
model, then `rolegraph replay last` offline, then an evaluation with a scorer file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def rolegraph(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rolegraph", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=900, check=False)


def test_run_then_replay_then_eval_the_writer_critic_example(tmp_path: Path) -> None:
    work = tmp_path / "own_graph"
    shutil.copytree(ROOT / "examples" / "own_graph", work)
    done = rolegraph("run", "writer_critic.py:writer_critic", "--input", "questions.jsonl", "--limit", "2", cwd=work)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (work / "writer_critic-results.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["status"] == "ok" and r["draft"] and 1 <= r["rounds"] <= 3 for r in rows)
    assert all(r["prompt_tokens"] > 0 and r["completion_tokens"] > 0 for r in rows)

    replay = rolegraph("replay", "last", cwd=work)
    assert replay.returncode == 0, replay.stderr
    assert " 0 live" in replay.stdout and "output: identical to the recorded run" in replay.stdout

    done = rolegraph("eval", "writer_critic.py:writer_critic", "--data", "questions.jsonl", "--limit", "2",
                     "--scorer", "scorers.py:approved", "--out", "evals", cwd=work)
    assert done.returncode == 0, done.stderr
    assert "approved" in done.stdout and "runs ok" in done.stdout
    (report,) = (work / "evals").glob("*/report/report.html")
    assert "writer_critic" in report.read_text()
