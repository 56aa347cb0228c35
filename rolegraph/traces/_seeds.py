"""A run's seed reaches each of its model calls: a call that carries no seed of its own is sent its
role's configured seed, else one derived from the run's seed and the call's place in the run, so the
same graph, input, settings and seed make the same requests (and, on a server that honours seeds,
get the same answers)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from rolegraph.models import ChatRequest
from rolegraph.traces._events import Manifest

SEED_BITS = 31
"""Derived seeds lie in [0, 2**31): every server we know takes them (llama.cpp's are 32-bit)."""


def call_seed(run_seed: int, node_key: str | None, index: int, attempt: int = 0) -> int:
    """The seed of the model call at (node execution `node_key`, call `index` within it, agent
    `attempt`) in a run whose seed is `run_seed`: the same in a replay, a fork and a resumed run
    (the node key names a parallel branch by its `Send` index, not by when it finished), different
    for every other call, run seed or repeat."""
    what = json.dumps([run_seed, node_key, index, attempt])
    return int.from_bytes(hashlib.sha256(what.encode()).digest()[:8], "big") % (1 << SEED_BITS)


def role_seed(manifest: Manifest, role: str) -> int | None:
    """The seed configured for `role` when the run started (`[roles.X] seed`), as the runtime picks
    the model: the role's own entry, else the default role's."""
    seeds = manifest.role_seeds
    return seeds[role] if role in seeds else seeds.get("default")


def seeded(request: ChatRequest, manifest: Manifest | None, role: str, node_key: str | None, index: int,
           attempt: int = 0) -> ChatRequest:
    """`request` with the seed it is sent with written into it: its own (an explicit `seed=`), else the
    role's configured one, else `call_seed(...)`. Unchanged outside a run, and in runs recorded before
    calls were seeded (`Manifest.seed_calls` false), whose replays must send what they recorded."""
    if request.seed is not None or manifest is None or not manifest.seed_calls:
        return request
    seed = role_seed(manifest, role)
    if seed is None:
        seed = call_seed(manifest.seed or 0, node_key, index, attempt)
    # a new instance (not model_copy, which would carry the cached fingerprints along)
    fields: dict[str, Any] = {name: getattr(request, name) for name in type(request).model_fields}
    return type(request).model_construct(**{**fields, "seed": seed})
