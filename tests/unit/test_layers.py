"""The layer contracts (import-linter, configured in pyproject.toml) hold, and they catch a
deliberately broken import; examples and benchmarks import only public names, and inside the
package a private module is imported only by its own package; LangGraph's private modules and
metadata keys are reached through rolegraph._langgraph alone."""

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
    assert "Only rolegraph._langgraph imports LangGraph's private modules KEPT" in done.stdout


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
    private = re.compile(r"^\s*((from|import)\s+rolegraph(\.\w+)*\._\w+"  # import rolegraph.a._x
                         r"|from\s+rolegraph(\.\w+)*\s+import\s+\(?[^)\n]*\b_[a-z]\w*)",  # from rolegraph.a import _x
                         re.MULTILINE)
    offenders = [f"{p.relative_to(ROOT)}: {m.group(0).strip()}"
                 for folder in ("examples", "benchmarks") for p in sorted((ROOT / folder).rglob("*.py"))
                 for m in private.finditer(p.read_text())]
    assert offenders == []


def private_imports_across_packages(package: Path) -> list[str]:
    """Imports, anywhere under `package`, of a private module (`_x`) from outside the package that
    holds it: `rolegraph.a._x` may be imported by `rolegraph.a` and its subpackages only."""
    import ast

    found = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        here = parts[:-1]  # the package this file belongs to (an __init__ belongs to its own)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                names = module.split(".")
                private = next((i for i, n in enumerate(names) if n.startswith("_") and not n.startswith("__")), None)
                if names[0] == package.name and private is not None and tuple(names[:private]) != here[:private]:
                    found.append(f"{path.relative_to(package.parent)}:{node.lineno}: {module}")
    return found


def test_private_modules_are_imported_only_inside_their_own_package() -> None:
    assert private_imports_across_packages(ROOT / "rolegraph") == []


def test_a_private_import_from_another_package_is_caught(tmp_path: Path) -> None:
    pkg = tmp_path / "rolegraph"
    (pkg / "traces").mkdir(parents=True)
    (pkg / "agents").mkdir()
    (pkg / "traces" / "_store.py").write_text("X = 1\n")
    (pkg / "traces" / "_view.py").write_text("from rolegraph.traces._store import X\n")  # its own package: fine
    (pkg / "agents" / "_agent.py").write_text("from rolegraph.traces._store import X\n")
    (pkg / "runtime.py").write_text("import rolegraph.traces._store\n")
    assert private_imports_across_packages(pkg) == [
        "rolegraph/agents/_agent.py:1: rolegraph.traces._store", "rolegraph/runtime.py:1: rolegraph.traces._store"]


def test_a_private_langgraph_import_outside_its_module_is_caught(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "rolegraph", tmp_path / "rolegraph", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    recorder = tmp_path / "rolegraph" / "traces" / "_recorder.py"
    recorder.write_text(recorder.read_text() + "\n\ndef _push():\n    from langgraph._internal._constants import PUSH\n"
                                                "    return PUSH\n")
    done = lint(tmp_path, tmp_path)
    assert done.returncode != 0
    assert "Only rolegraph._langgraph imports LangGraph's private modules BROKEN" in done.stdout
    assert "rolegraph.traces._recorder -> langgraph._internal._constants" in done.stdout


LANGGRAPH_KEY = re.compile(r"langgraph_\w+|__pregel_\w*")
"""LangGraph's node metadata keys (`langgraph_checkpoint_ns`, ...) and its private markers (`__pregel_push`)."""


def langgraph_keys_outside_their_module(package: Path) -> list[str]:
    """String constants, anywhere under `package` but its `_langgraph.py`, that are one of LangGraph's
    metadata keys or private markers: those are read through `rolegraph._langgraph` alone."""
    import ast

    found = []
    for path in sorted(package.rglob("*.py")):
        if path == package / "_langgraph.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and LANGGRAPH_KEY.fullmatch(node.value):
                found.append(f"{path.relative_to(package.parent)}:{node.lineno}: {node.value!r}")
    return found


def test_only_the_langgraph_module_reads_langgraphs_metadata_keys() -> None:
    assert langgraph_keys_outside_their_module(ROOT / "rolegraph") == []


def test_a_langgraph_key_read_elsewhere_is_caught(tmp_path: Path) -> None:
    pkg = tmp_path / "rolegraph"
    (pkg / "traces").mkdir(parents=True)
    (pkg / "_langgraph.py").write_text('PUSH = "__pregel_push"\nNS = "langgraph_checkpoint_ns"\n')
    (pkg / "traces" / "_recorder.py").write_text(
        '"""Reads langgraph_checkpoint_ns."""\nns = meta["langgraph_checkpoint_ns"]\npush = path[0] == "__pregel_push"\n')
    assert langgraph_keys_outside_their_module(pkg) == [
        "rolegraph/traces/_recorder.py:2: 'langgraph_checkpoint_ns'", "rolegraph/traces/_recorder.py:3: '__pregel_push'"]
