"""The reference systems, one module per graph: each has a State model, `build(runtime)`,
`run(...)`, and a `SPEC` (GraphSpec) that replay and resume use to run it from a manifest."""

from __future__ import annotations

import importlib
from types import ModuleType

from rolegraph.errors import UserError
from rolegraph.graphs._run import GraphSpec, Prepared, run_graph

GRAPHS = {"refinebot": "rolegraph.graphs.refinebot", "mcq": "rolegraph.graphs.mcq", "spin": "rolegraph.graphs.spin",
          "spin_pddl": "rolegraph.graphs.spin_pddl", "spin_diplomacy": "rolegraph.graphs.spin_diplomacy",
          "being0": "rolegraph.graphs.being0", "videomind": "rolegraph.graphs.videomind", "lvas": "rolegraph.graphs.lvas"}


__all__ = ["GRAPHS", "GraphSpec", "Prepared", "get", "run_graph"]


def get(name: str) -> ModuleType:
    if name not in GRAPHS:
        raise UserError(f"unknown graph '{name}'; known graphs: {', '.join(sorted(GRAPHS))}")
    return importlib.import_module(GRAPHS[name])
