"""What a graph run returns: `RunResult` (where it was recorded, how it ended, its tokens), which a
graph's result type extends; `StateResult` for a graph that declares none; `RunFailure` for a run of
a batch that raised."""

from __future__ import annotations

import warnings
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field

from rolegraph.errors import UserError
from rolegraph.traces import PendingInterrupt, Trace

FRAMEWORK_FIELDS = frozenset({"run_id", "trace_dir", "status", "prompt_tokens", "completion_tokens", "interrupts"})


class RunResult(BaseModel):
    """What every graph run returns: where it was recorded, how it ended, and its token usage.
    A graph's result type extends this; the framework fills these fields."""

    run_id: str | None = Field(default=None, validation_alias=AliasChoices("run_id", "trace_id"))
    """The run id (`rolegraph trace show RUN_ID`)."""
    trace_dir: str | None = None
    """The run's trace directory (None when the runtime keeps no traces)."""
    status: Literal["ok", "error", "interrupted"] = "ok"
    """`error` when one of the graph's `recorded_failures` ended the run; `interrupted` when it stopped
    at `interrupt()` questions (`interrupts`): `graph.resume(run_id, answer, runtime=rt)` continues it."""
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    interrupts: list[PendingInterrupt] = []
    """The questions an interrupted run waits on: each one's id, the value its node gave `interrupt()`,
    and the node execution and step that asked."""

    @property
    def trace_id(self) -> str | None:
        """Deprecated: the run id is `run_id`."""
        warnings.warn("RunResult.trace_id is now RunResult.run_id", DeprecationWarning, stacklevel=2)
        return self.run_id

    @property
    def trace(self) -> Trace:
        """The recorded run's events (needs a runtime with a trace store)."""
        if self.trace_dir is None:
            raise UserError("this run was not recorded: give the runtime a trace store (Runtime.load() does)")
        return Trace.load(self.trace_dir)


class StateResult(RunResult):
    """The result of a graph that declares none: its final state."""

    state: dict[str, Any] = {}


class RunFailure(RunResult):
    """A run of `Graph.run_many` that raised instead of returning the graph's result, kept as a
    value so that the other runs go on. (A graph's `recorded_failures` end with its own result.)"""

    status: Literal["ok", "error", "interrupted"] = "error"
    error: str | None = None
    """The exception's class and first line, e.g. `ConnectionError: endpoint 'gpu' does not answer`."""
