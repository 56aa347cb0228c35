"""`rolegraph trace to-test`: turn one recorded step into a pytest case (the trace becomes a
fixture beside it), so a behaviour seen once stays checked."""

from __future__ import annotations

import shutil
from pathlib import Path

from rolegraph.traces._events import NodeStarted
from rolegraph.traces._trace import Trace

TEMPLATE = '''"""Step {step} ({node}) of run {run_id}, replayed from its recorded input state.

Written by `rolegraph trace to-test`; the trace is in {fixture_rel}/. The node runs again with its
model and tool calls answered from the trace; it must return the update it returned then.
"""

import asyncio
from pathlib import Path

from rolegraph.graphs import replay_step
from rolegraph.traces import Trace

TRACE = Path(__file__).parent / "{fixture_rel}"


def test_{name}() -> None:
    result = asyncio.run(replay_step(Trace.load(TRACE), {step}))
    assert result.node == "{node}"
    assert result.delta == result.recorded_delta
'''


def write_test(trace: Trace, step: int, out: Path) -> Path:
    """Write `out` (a test_*.py file) and copy the trace beside it under traces/<run id>/."""
    node = next((e.node for e in trace.of_kind(NodeStarted) if e.step == step), None)
    if node is None:
        raise ValueError(f"run {trace.run_id} has no step {step}")
    out = out if out.suffix == ".py" else out / f"test_{trace.started.manifest.graph}_step{step}.py"
    out.parent.mkdir(parents=True, exist_ok=True)
    fixture = out.parent / "traces" / trace.run_id
    if not fixture.exists():
        fixture.mkdir(parents=True)
        shutil.copy2(trace.dir / "events.jsonl", fixture / "events.jsonl")
        if (trace.dir / "blobs").exists():
            shutil.copytree(trace.dir / "blobs", fixture / "blobs")
    name = f"{trace.started.manifest.graph}_step{step}_{node}".replace("-", "_")
    out.write_text(TEMPLATE.format(step=step, node=node, run_id=trace.run_id, name=name,
                                   fixture_rel=f"traces/{trace.run_id}"))
    return out
