"""Prompt templates: files under `rolegraph/prompts/<graph>/<role>.j2`, rendered with Jinja2
StrictUndefined. A template holds `{% block system %}` and/or `{% block user %}`; each becomes one
message. Every render carries the template's name and content hash for the trace."""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from rolegraph.errors import PromptError
from rolegraph.models import Message

PACKAGE_DIR = Path(__file__).parent
BLOCKS = ("system", "user")


@dataclass(frozen=True)
class RenderedPrompt:
    name: str
    sha256: str
    messages: tuple[Message, ...]


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    source: str
    sha256: str
    _template: jinja2.Template
    path: str | None = None
    """The file it was read from, when Jinja does not know it (a fork's changed prompt)."""

    def render(self, **variables: Any) -> RenderedPrompt:
        ctx = self._template.new_context(variables)
        messages: list[Message] = []
        try:
            for block in BLOCKS:
                render = self._template.blocks.get(block)
                if render is not None:
                    text = "".join(render(ctx)).strip()
                    if text:
                        messages.append(Message(role=block, content=text))
            if not self._template.blocks:
                messages.append(Message(role="user", content=self._template.render(variables).strip()))
        except jinja2.UndefinedError as exc:
            raise undefined_error(self, exc, variables) from exc
        return RenderedPrompt(self.name, self.sha256, tuple(messages))


def undefined_error(template: PromptTemplate, exc: jinja2.UndefinedError, variables: Mapping[str, Any]) -> PromptError:
    """The error for a variable a template uses and its render was not given: the template file and
    line that use it, the variables that were passed (the name they most resemble first), and the fix."""
    where = f"prompt '{template.name}'"
    tb, found = exc.__traceback__, None
    while tb is not None:  # the innermost template frame: the file (an included one too) and line using it
        owner = tb.tb_frame.f_globals.get("__jinja_template__")
        if isinstance(owner, jinja2.Template):
            found = (owner, owner.get_corresponding_lineno(tb.tb_lineno))
        tb = tb.tb_next
    if found is not None:
        owner, line = found
        path = owner.filename if owner.filename and owner.filename != "<template>" else template.path
        where = f"{_shown_path(path)}:{line} (prompt '{template.name}')" if path else f"prompt '{template.name}' line {line}"
    passed = sorted(variables)
    missing = re.match(r"'([^']+)' is undefined", str(exc))
    close = difflib.get_close_matches(missing.group(1), passed, n=1, cutoff=0.6) if missing else []
    hint = f"; did you mean '{close[0]}'?" if close else ""
    fix = (f"fix the template, or pass '{missing.group(1)}' to the agent's run()" if missing
           else "fix the template, or pass what it needs to the agent's run()")
    return PromptError(f"{where}: {exc}; the variables passed: {', '.join(passed) or '(none)'}{hint} ({fix})")


def _shown_path(path: str) -> str:
    """`path` relative to the working directory when it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


@lru_cache(maxsize=32)
def _environment(dirs: tuple[str, ...]) -> jinja2.Environment:
    """One Jinja environment per search path, shared, so its compiled templates are too (Jinja
    checks each file's modification time before reusing it)."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(list(dirs)), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=False, autoescape=False)


class PromptLibrary:
    """Loads templates by name ("refinebot/evaluate") from one or more directories; the first
    directory that has the file wins, so a user's directory can override ours."""

    def __init__(self, *dirs: str | Path) -> None:
        self.dirs = [Path(d) for d in dirs] + [PACKAGE_DIR]
        self._env = _environment(tuple(str(d) for d in self.dirs))
        self._cache: dict[str, PromptTemplate] = {}
        self._below: dict[tuple[str, ...], PromptLibrary] = {}

    def below(self, *dirs: str | Path) -> PromptLibrary:
        """A library that searches this one's directories, then `dirs`, then the package's
        (a graph's own templates, still overridden by a user's directory). Made once per `dirs`."""
        key = tuple(str(d) for d in dirs)
        if key not in self._below:
            own = [d for d in self.dirs if d != PACKAGE_DIR]
            self._below[key] = PromptLibrary(*own, *(d for d in dirs if Path(d) not in own))
        return self._below[key]

    def get(self, name: str) -> PromptTemplate:
        if name not in self._cache:
            filename = name if name.endswith(".j2") else f"{name}.j2"
            try:
                assert self._env.loader is not None
                source, _, _ = self._env.loader.get_source(self._env, filename)
                template = self._env.get_template(filename)
            except jinja2.TemplateNotFound:
                raise PromptError(
                    f"no prompt template '{filename}' in {', '.join(str(d) for d in self.dirs)}"
                ) from None
            except jinja2.TemplateSyntaxError as exc:
                raise PromptError(f"prompt '{name}' line {exc.lineno}: {exc.message}") from exc
            sha = hashlib.sha256(source.encode()).hexdigest()
            self._cache[name] = PromptTemplate(name, source, sha, template)
        return self._cache[name]

    def render(self, name: str, **variables: Any) -> RenderedPrompt:
        return self.get(name).render(**variables)


class OverlayLibrary(PromptLibrary):
    """A library whose `overrides` (template name -> template) stand in for `base`'s own templates
    while `applies()` is true: a fork's changed prompts, rendered only in its live part."""

    def __init__(self, base: PromptLibrary, overrides: Mapping[str, PromptTemplate], applies: Callable[[], bool]) -> None:
        # shares `base`'s directories and cache: only `get` and `below` differ
        self.base, self.overrides, self.applies = base, dict(overrides), applies
        self.dirs = base.dirs

    def below(self, *dirs: str | Path) -> PromptLibrary:
        return OverlayLibrary(self.base.below(*dirs), self.overrides, self.applies)

    def get(self, name: str) -> PromptTemplate:
        if name in self.overrides and self.applies():
            return self.overrides[name]
        return self.base.get(name)


def load_template_file(name: str, path: str | Path) -> PromptTemplate:
    """A template from a file outside the library, used under `name` (a fork's changed prompt)."""
    p = Path(path)
    if not p.is_file():
        raise PromptError(f"prompt file not found: {p}")
    source = p.read_text()
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    try:
        template = env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise PromptError(f"{p} line {exc.lineno}: {exc.message}") from exc
    return PromptTemplate(name, source, hashlib.sha256(source.encode()).hexdigest(), template, path=str(p))


__all__ = ["OverlayLibrary", "PromptError", "PromptLibrary", "PromptTemplate", "RenderedPrompt", "load_template_file"]
