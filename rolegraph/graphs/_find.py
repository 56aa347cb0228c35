"""Finding a graph again: by a target the user types (`FILE.py:NAME`, `module:NAME`, a name), or
from a recorded manifest in any process (registered here, its import reference, its file, the
`rolegraph.graphs` entry points)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from rolegraph.errors import UserError
from rolegraph.graphs._api import _REGISTRY, Graph
from rolegraph.traces import Manifest

GROUP = "rolegraph.graphs"


def installed_graphs() -> dict[str, str]:
    """Name -> import reference of every graph declared under the `rolegraph.graphs` entry points."""
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def _as_graph(obj: Any, where: str) -> Graph[Any]:
    if not isinstance(obj, Graph):
        if hasattr(obj, "astream") and hasattr(obj, "get_graph"):  # a LangGraph app: a compiled graph, an @entrypoint
            raise UserError(f"{where} is a LangGraph {type(obj).__name__}, not a rolegraph graph: wrap it in its file, "
                            f"`NAME = rolegraph.langchain.app({where.rpartition(':')[2] or 'app'})` (add name=... for a "
                            "compiled StateGraph), and give that NAME")
        raise UserError(f"{where} is a {type(obj).__name__}, not a graph declared with @rolegraph.graph(...)")
    return obj


def load_file(path: str | Path, attr: str) -> Graph[Any]:
    """Import a graph's defining file as a module (named after the file, its folder on sys.path,
    as `python FILE.py` would) and return its attribute `attr`."""
    file = Path(path).resolve()
    if not file.is_file():
        raise UserError(f"no such graph file: {file}")
    folder = str(file.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    module_name = file.stem
    module = sys.modules.get(module_name)
    if module is None or Path(getattr(module, "__file__", "") or "").resolve() != file:
        spec = importlib.util.spec_from_file_location(module_name, file)
        if spec is None or spec.loader is None:
            raise UserError(f"{file} cannot be imported as Python")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
    if not hasattr(module, attr):
        graphs = sorted(k for k, v in vars(module).items() if isinstance(v, Graph))
        raise UserError(f"{file} defines no '{attr}'; graphs there: {', '.join(graphs) or 'none'}")
    return _as_graph(getattr(module, attr), f"{file}:{attr}")


def import_ref(ref: str) -> Graph[Any]:
    module_name, _, attr = ref.partition(":")
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    return _as_graph(obj, ref)


def load_graph(target: str) -> Graph[Any]:
    """The graph a user names: `path/to/file.py:NAME`, `package.module:NAME`, or the name of a
    graph registered in this process or installed under the `rolegraph.graphs` entry points."""
    if isinstance(target, Graph):
        return target
    head, sep, attr = target.rpartition(":")
    if sep and (head.endswith(".py") or "/" in head or "\\" in head):
        return load_file(head, attr)
    if sep:
        try:
            return import_ref(target)
        except (ImportError, AttributeError) as exc:
            raise UserError(f"cannot import graph '{target}': {exc}") from None
    if target in _REGISTRY:
        return _REGISTRY[target]
    installed = installed_graphs()
    if target in installed:
        return import_ref(installed[target])
    if target.endswith(".py"):
        raise UserError(f"say which graph in {target}: {target}:NAME")
    raise UserError(f"unknown graph '{target}'; give FILE.py:NAME or module:NAME, or one of: "
                    f"{', '.join(sorted(set(installed) | set(_REGISTRY)))}")


def find_graph(manifest: Manifest) -> Graph[Any]:
    """The graph that recorded `manifest`, found in a process that may never have imported it."""
    name, ref, file = manifest.graph, manifest.ref, manifest.file
    registered = _REGISTRY.get(name)
    if registered is not None and (not ref or registered.ref == ref or (file and registered.file == file)):
        return registered
    tried: list[str] = []
    module_name = ref.partition(":")[0]
    if ref and module_name != "__main__":
        try:
            return import_ref(ref)
        except (ImportError, AttributeError, UserError) as exc:
            tried.append(f"import {ref}: {exc}")
    if file:
        if Path(file).is_file():
            return load_file(file, ref.partition(":")[2] or name)
        tried.append(f"file {file}: not found")
    installed = installed_graphs()
    if name in installed:
        return import_ref(installed[name])
    if registered is not None:
        return registered
    tried.append(f"entry point '{name}' in group '{GROUP}': none")
    raise UserError(f"cannot find graph '{name}' recorded at {ref or '(no reference)'}: " + "; ".join(tried)
                    + ". Import the module that defines it first, restore its file, or install the package that "
                    f"declares it under the '{GROUP}' entry points.")
