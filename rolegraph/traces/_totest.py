"""`rolegraph trace to-test`: turn one recorded step into a pytest case (the trace becomes a
fixture beside it), so a behaviour seen once stays checked. Any step that finished can: a graph
node with its recorded state, a `Send` target with its payload, a step inside a subgraph through
the subgraph, a functional-API task with its arguments; any other is refused, saying why."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rolegraph.errors import UserError
from rolegraph.traces._events import NodeFinished, NodeStarted
from rolegraph.traces._recorder import is_task_key
from rolegraph.traces._trace import Trace

Shape = Literal["node", "send", "inner", "task"]


@dataclass(frozen=True)
class StepRoute:
    """How a recorded step is run again by itself (`rolegraph.graphs.replay_step`)."""

    target: NodeStarted
    """The step to check."""
    recorded: NodeFinished
    """How it finished when recorded (its `delta` is what it must return again)."""
    outer: NodeStarted
    """The outermost step it ran in: itself for a step of the graph's own, else the graph node whose
    execution (a subgraph, a functional-API entrypoint) it was part of."""
    shape: Shape
    """`node`: a graph node, called with its recorded state; `send`: a `Send` target, called with
    its payload; `inner`: a step inside a subgraph, reached by calling `outer` with its recorded
    input; `task`: a functional-API task, called with its recorded arguments."""

    @property
    def how(self) -> str:
        """The route in words (the written test's docstring says it)."""
        if self.shape == "node":
            return "the node called with its recorded state"
        if self.shape == "send":
            return "the Send target called with its Send payload"
        if self.shape == "task":
            return "the functional-API task called with its recorded arguments"
        return f"reached by calling step {self.outer.step} ({self.outer.node}) with its recorded input"


def _finished(trace: Trace, key: str) -> NodeFinished | None:
    """How execution `key` finished: its last clean finish, else its last finish of any kind."""
    ends = [e for e in trace.of_kind(NodeFinished) if e.key == key]
    clean = [e for e in ends if e.error is None and not e.interrupts and not e.handoff]
    chosen = clean or ends
    return chosen[-1] if chosen else None


def _why_not(trace: Trace, started: NodeStarted, finished: NodeFinished | None, what: str) -> str | None:
    """Why `started` (the step itself, or the step it is reached through) cannot be replayed alone."""
    where = f"{what} {started.step} ({started.node})"
    if finished is None:
        return f"{where} did not finish: the run stopped while it ran"
    if any(e.interrupts for e in trace.of_kind(NodeFinished) if e.key == started.key):
        return f"{where} asks a person (interrupt()), and a step replayed by itself has nobody to answer it"
    if finished.error is not None:
        return f"{where} failed ({finished.error.splitlines()[0][:200]}): it returned nothing a test could check"
    if finished.handoff:
        return f"{where} hands control to its parent graph ({', '.join(finished.handoff)}), which a step replayed " \
               "by itself does not have"
    return None


def reach_step(trace: Trace, step: int) -> StepRoute:
    """How step `step` of `trace` is run again by itself; a UserError saying why when it cannot be."""
    target = next((e for e in trace.of_kind(NodeStarted) if e.step == step), None)
    if target is None:
        steps = sorted({e.step for e in trace.of_kind(NodeStarted)})
        known = f"steps {steps[0]}-{steps[-1]}" if steps else "no steps"
        raise UserError(f"run {trace.run_id} has no step {step} (it has {known}; see `rolegraph trace show {trace.run_id}`)")
    finished = _finished(trace, target.key)
    why = _why_not(trace, target, finished, "step")
    if why is not None:
        raise UserError(f"step {step} cannot become a test: {why}")
    assert finished is not None
    root = target.key.split(">", 1)[0]
    outer = target if root == target.key else next((e for e in trace.of_kind(NodeStarted) if e.key == root), None)
    if outer is None:
        raise UserError(f"step {step} cannot become a test: it ran inside node execution {root}, which the trace "
                        "does not hold (a damaged log?)")
    if is_task_key(target.key):
        shape: Shape = "task"
    elif outer is not target:
        shape = "inner"
        why = _why_not(trace, outer, _finished(trace, outer.key), "it runs inside step")
        if why is not None:
            raise UserError(f"step {step} cannot become a test: {why}")
    else:
        shape = "send" if re.search(r"@[^>@]*\[[^\]]*\](#\d+)?$", target.key) else "node"
    return StepRoute(target, finished, outer, shape)


TEMPLATE = '''"""Step {step} ({node}) of run {run_id}: {how}.

Written by `rolegraph trace to-test`; the trace is in {fixture_rel}/. The step runs again with its
model and tool calls answered from the trace; it must return what it returned then.
"""

import asyncio
from pathlib import Path

from rolegraph.graphs import replay_step
from rolegraph.traces import Trace, comparable

TRACE = Path(__file__).parent / "{fixture_rel}"


def {test}() -> None:
    result = asyncio.run(replay_step(Trace.load(TRACE), {step}))
    assert result.node == {node_literal}
    assert comparable(result.delta) == comparable(result.recorded_delta)
'''


def _identifier(text: str) -> str:
    return re.sub(r"\W", "_", text)


def written_test_name(trace: Trace, step: int) -> str:
    """The test function `write_test` writes for `step`."""
    node = next((e.node for e in trace.of_kind(NodeStarted) if e.step == step), "step")
    return _identifier(f"test_{trace.started.manifest.graph}_step{step}_{node}")


def write_test(trace: Trace, step: int, out: Path) -> Path:
    """Write `out` (a test_*.py file, or a directory to write one in) and copy the trace beside it
    under traces/<run id>/. A step that cannot become a test raises UserError saying why."""
    route = reach_step(trace, step)
    node = route.target.node
    out = out if out.suffix == ".py" else out / f"test_{_identifier(trace.started.manifest.graph)}_step{step}.py"
    out.parent.mkdir(parents=True, exist_ok=True)
    fixture = out.parent / "traces" / trace.run_id
    if not fixture.exists():
        fixture.mkdir(parents=True)
        shutil.copy2(trace.dir / "events.jsonl", fixture / "events.jsonl")
        if (trace.dir / "blobs").exists():
            shutil.copytree(trace.dir / "blobs", fixture / "blobs")
    out.write_text(TEMPLATE.format(step=step, node=node, node_literal=json.dumps(node), run_id=trace.run_id,
                                   how=route.how, test=written_test_name(trace, step), fixture_rel=f"traces/{trace.run_id}"))
    return out


CHECK = "import runpy, sys\nrunpy.run_path(sys.argv[1])[sys.argv[2]]()\n"


def check_test(path: Path, test: str, *, timeout_s: float = 300) -> str | None:
    """Run the written test `test` in `path` once, in a fresh process (as pytest would, from this
    directory): None when it passes, else why it failed (the error's last line)."""
    package_root = str(Path(__file__).resolve().parents[2])  # this rolegraph, wherever it is installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
    try:
        done = subprocess.run([sys.executable, "-c", CHECK, str(path), test], capture_output=True, text=True,
                              timeout=timeout_s, env=env, check=False)
    except subprocess.TimeoutExpired:
        return f"it did not finish within {timeout_s:.0f} s"
    if done.returncode == 0:
        return None
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return (lines[-1].strip() if lines else f"it exited with status {done.returncode}")[:500]
