"""The documentation site's code blocks (docs/): each runs or is checked here, or is marked as a
fragment by an `<!-- fragment -->` line just above it. The README, the landing page, is checked too:
its example runs (its models scripted), its shell lines exist and its links lead to pages.

- python: a page's blocks run in order as one script, offline, in a copy of examples/own_graph;
- toml: a rolegraph.toml that loads;
- bash: every `rolegraph ...` line names a command and options the CLI has, every `make X` a target;
- a block included from a file (`--8<-- "examples/..."`): an example the tests use.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer

from rolegraph.cli import app
from rolegraph.config import RuntimeConfig

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
FENCE = re.compile(r"^```(?P<lang>[^\n`]*)\n(?P<code>.*?)^```$", re.M | re.S)
FRAGMENT = "<!-- fragment -->"
INCLUDE = re.compile(r'^--8<-- "(?P<path>[^"]+)"$')


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    code: str
    fragment: bool

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line} ({self.lang or 'no language'})"


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    found = []
    for m in FENCE.finditer(text):
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        found.append(Block(page, text.count("\n", 0, m.start()) + 1, m["lang"].strip().split(" ")[0], m["code"],
                           before == FRAGMENT))
    return found


ALL = [b for page in PAGES for b in blocks(page)]
README = ROOT / "README.md"


def test_the_site_has_its_pages_and_every_block_says_its_language() -> None:
    assert len(PAGES) >= 30, [p.name for p in PAGES]
    unlabelled = [str(b) for b in ALL if not b.lang]
    assert unlabelled == [], unlabelled


def test_blocks_that_are_neither_checked_nor_run_are_marked_as_fragments() -> None:
    unchecked = [str(b) for b in ALL if b.lang not in ("python", "toml", "bash") and not b.fragment]
    assert unchecked == [], f"mark these `{FRAGMENT}` or make them python, toml or bash: {unchecked}"


def test_included_files_are_examples_the_tests_run() -> None:
    tests = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("*.py"))
    for block in ALL:
        includes = [m["path"] for line in block.code.splitlines() if (m := INCLUDE.match(line.strip()))]
        for path in includes:
            assert (ROOT / path).is_file(), f"{block}: {path} does not exist"
            assert path.startswith("examples/") and Path(path).stem in tests, \
                f"{block}: {path} is included, and no test runs it"


@pytest.mark.parametrize("block", [b for b in ALL if b.lang == "toml" and not b.fragment], ids=str)
def test_a_toml_block_is_a_rolegraph_toml_that_loads(block: Block) -> None:
    RuntimeConfig.model_validate(tomllib.loads(block.code))


def _is_group(command: Any) -> bool:
    return getattr(command, "commands", None) is not None  # typer's groups are its own click's


def _command(words: list[str]) -> tuple[Any, list[str]]:
    """The CLI command `words` name (after `rolegraph`), and the words left for it."""
    command: Any = typer.main.get_command(app)
    while _is_group(command) and words and not words[0].startswith("-"):
        _, found, words = command.resolve_command(command.make_context("rolegraph", [], resilient_parsing=True), words)
        assert found is not None
        command = found
    return command, words


def _options(command: Any) -> set[str]:
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts)}


@pytest.mark.parametrize("block", [b for b in [*ALL, *blocks(README)] if b.lang == "bash" and not b.fragment], ids=str)
def test_a_shell_block_names_commands_and_options_that_exist(block: Block) -> None:
    targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))
    for line in block.code.splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["make"]:
            assert set(words[1:]) <= targets, f"{block}: {line!r} names no Makefile target"
        if words[:1] != ["rolegraph"]:
            continue
        command, rest = _command(words[1:])
        assert not _is_group(command), f"{block}: {line!r} names a group, not a command"
        if command.context_settings.get("ignore_unknown_options"):
            continue  # a graph's own options are flags too
        unknown = [w.split("=")[0] for w in rest if w.startswith("--") and w.split("=")[0] not in _options(command)]
        assert unknown == [], f"{block}: `rolegraph` has no option {unknown} for {command.name!r}"


@pytest.mark.parametrize("page", [p for p in PAGES if any(b.lang == "python" and not b.fragment
                                                           and not INCLUDE.match(b.code.strip()) for b in blocks(p))],
                         ids=lambda p: str(p.relative_to(DOCS)))
def test_a_pages_python_blocks_run(page: Path, tmp_path: Path) -> None:
    code = "\n\n".join(b.code for b in blocks(page)
                       if b.lang == "python" and not b.fragment and not INCLUDE.match(b.code.strip()))
    work = tmp_path / "own_graph"
    shutil.copytree(ROOT / "examples" / "own_graph", work)
    (work / "page.py").write_text(code, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLEGRAPH")}
    done = subprocess.run([sys.executable, "page.py"], check=False, cwd=work, capture_output=True, text=True,
                          timeout=120, env={**env, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, f"{page.relative_to(ROOT)}'s python blocks failed:\n{done.stderr[-3000:]}"


def test_the_supported_versions_are_pyprojects_ranges() -> None:
    requirements = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    ranges = {re.split(r"[\[<>=]", r, maxsplit=1)[0]: re.sub(r"^[\w.-]+(\[[\w,]+\])?", "", r.split(";")[0]).strip()
              for r in requirements}
    table = (DOCS / "how-to" / "install.md").read_text(encoding="utf-8")
    stated = dict(re.findall(r"^\| ([\w-]+)(?: \([^)]*\))? \| `([^`]+)` \|", table, re.M))
    stated.pop("Python", None)
    assert stated == ranges


SCRIPTED = """import rolegraph as rg
from rolegraph.models import ScriptedModel

rg.Runtime.load = classmethod(lambda cls, *args, **kwargs: cls.from_models(
    {"writer": ScriptedModel(["Air scatters light.", "Air scatters blue light the most."]),
     "critic": ScriptedModel([{"ok": False, "feedback": "say which colour"}, {"ok": True}])}, traces="runs"))
"""


def test_the_readmes_example_runs_as_a_users_file(tmp_path: Path) -> None:
    code = [b.code for b in blocks(README) if b.lang == "python"]
    assert len(code) == 1, "the README shows one example; longer ones belong on a docs page"
    work = tmp_path / "own_graph"
    shutil.copytree(ROOT / "examples" / "own_graph", work)
    (work / "readme.py").write_text(SCRIPTED + code[0], encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLEGRAPH")}
    done = subprocess.run([sys.executable, "readme.py"], check=False, cwd=work, capture_output=True, text=True,
                          timeout=120, env={**env, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, f"README.md's example failed:\n{done.stderr[-3000:]}"
    assert done.stdout.startswith("Air scatters blue light the most. "), done.stdout


def test_the_readmes_links_lead_to_pages_of_the_site() -> None:
    text = README.read_text(encoding="utf-8")
    links = re.findall(r"\]\((docs/[^)#]+)", text)
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert len(links) >= 20, links
    missing = [link for link in links if not (ROOT / link).is_file() or link.removeprefix("docs/") not in nav]
    assert missing == [], f"README.md links to pages that are not in the site: {missing}"

