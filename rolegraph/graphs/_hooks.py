"""A graph's hooks (prepare, start, finish, roles, templates, recursion_limit, a solver's input and
seed): called with the keyword arguments they name, and checked when they are declared."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from rolegraph.errors import UserError


def _accepts(fn: Callable[..., Any]) -> tuple[set[str], bool]:
    params = inspect.signature(fn).parameters.values()
    return {p.name for p in params}, any(p.kind is p.VAR_KEYWORD for p in params)


HOOK_ARGUMENTS: dict[str, frozenset[str]] = {
    "prepare": frozenset({"options", "seed", "runtime"}),
    "start": frozenset({"options", "seed"}),
    "finish": frozenset({"input", "options", "error", "run_id", "seed"}),
    "roles": frozenset({"options"}),
    "templates": frozenset({"options"}),
    "recursion_limit": frozenset({"options"}),
    "solver input": frozenset({"repeat", "seed"}),
    "solver seed": frozenset({"repeat", "seed"}),
}
"""The keyword arguments rolegraph passes to each hook (after its one positional argument: the
input, the state or the case). A hook names those it uses."""


def check_hook(where: str, hook: str, fn: Any) -> None:
    """Refuse, when the graph is declared, a hook whose parameters rolegraph would not fill: a
    misspelt `opitons=None` would otherwise be None on every run, and `opitons` without a default a
    TypeError mid-run."""
    if not callable(fn):
        return
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return  # a builtin or C callable: nothing to check
    allowed = HOOK_ARGUMENTS[hook]
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    first = positional[0].name if positional else None
    unknown = [p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
               and p.name != first and p.name not in allowed]
    if unknown:
        raise UserError(f"{where}: the {hook} hook {getattr(fn, '__qualname__', fn)!r} takes "
                        f"{', '.join(repr(u) for u in unknown)}, which rolegraph does not pass; it passes "
                        f"{', '.join(sorted(allowed))} (by name) after the first argument")


def call_hook(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a hook with the keyword arguments its signature names (all of them with **kwargs),
    so a hook asks only for what it uses and new arguments break no hook."""
    names, var_kw = _accepts(fn)
    return fn(*args, **(kwargs if var_kw else {k: v for k, v in kwargs.items() if k in names}))
