"""The layer contracts (import-linter, configured in pyproject.toml) hold, and they catch a
deliberately broken import; examples and benchmarks import only public names."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).parent / "lint-imports"


def lint(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
                          check=False)


def test_the_contracts_hold() -> None:
    done = lint(ROOT, ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Layers point one way KEPT" in done.stdout


def test_a_deliberately_broken_import_is_caught(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "rolegraph", tmp_path / "rolegraph", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    events = tmp_path / "rolegraph" / "traces" / "_events.py"
    events.write_text(events.read_text() + "\n\ndef _graphs():\n    from rolegraph.graphs import refinebot\n"
                                           "    return refinebot\n")
    done = lint(tmp_path, tmp_path)
    assert done.returncode != 0
    assert "BROKEN" in done.stdout
    assert "rolegraph.traces._events -> rolegraph.graphs.refinebot" in done.stdout


def test_examples_and_benchmarks_import_only_public_names() -> None:
    private = re.compile(r"^\s*(from|import)\s+rolegraph(\.\w+)*\._\w+", re.MULTILINE)
    offenders = [f"{p.relative_to(ROOT)}: {m.group(0).strip()}"
                 for folder in ("examples", "benchmarks") for p in sorted((ROOT / folder).rglob("*.py"))
                 for m in private.finditer(p.read_text())]
    assert offenders == []
