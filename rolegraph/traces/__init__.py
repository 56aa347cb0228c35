"""Traces: every run as an append-only log of versioned events — shown, diffed, viewed in a
browser, replayed offline with no model, or forked (replayed up to a step, live after it)."""

from rolegraph.errors import ReplayMismatch
from rolegraph.traces._diff import Divergence, comparable, final_state, first_divergence, state_differences
from rolegraph.traces._events import (
    FORMAT_VERSION,
    AgentRetry,
    BlobRef,
    ErrorEvent,
    Event,
    ForkOrigin,
    HumanInput,
    Manifest,
    MemoryRead,
    MemoryWrite,
    ModelCall,
    NodeFinished,
    NodeStarted,
    PendingInterrupt,
    RoleInfo,
    RunFinished,
    RunResumed,
    RunStarted,
    SpanSource,
    ToolInvocation,
    Totals,
    parse_event,
)
from rolegraph.traces._import import IMPORTED, ImportedRun, ImportReport, import_traces, imported
from rolegraph.traces._import_replay import CAPTURE_HELP, ImportedAnswers
from rolegraph.traces._otlp import to_otlp
from rolegraph.traces._recorder import (
    Attempt,
    RecordedCall,
    RecordingModel,
    RunContext,
    TaskStep,
    as_node,
    asked,
    current_node,
    current_run,
    human_input,
    is_task_key,
    record_run,
    recorded_task,
    run_totals,
    runs_started,
    set_output,
    takes_runtime,
    task_call,
    traced_node,
)
from rolegraph.traces._redact import Redactor
from rolegraph.traces._replay import (
    ANY_QUESTION,
    Point,
    Replay,
    ReplayModel,
    ReplayTools,
    request_diff,
    request_lines,
    role_prompts,
    same_request,
)
from rolegraph.traces._show import StepSummary, show_questions, steps
from rolegraph.traces._store import SORT_COLUMNS, IndexUnavailable, RunInfo, RunPage, TraceStore
from rolegraph.traces._tools import ToolSource, record_tool
from rolegraph.traces._totest import StepRoute, reach_step
from rolegraph.traces._trace import Trace
from rolegraph.traces._view import ASSETS, SHARED_ASSETS, render_view, write_assets, write_view
from rolegraph.traces._writer import write_once


def load(ref: str, root: str = "runs") -> Trace:
    """A recorded run by id, id prefix, 'last', or directory path."""
    return TraceStore(root).load(ref)


__all__ = [
    "ANY_QUESTION",
    "ASSETS",
    "CAPTURE_HELP",
    "FORMAT_VERSION",
    "IMPORTED",
    "SHARED_ASSETS",
    "SORT_COLUMNS",
    "AgentRetry",
    "Attempt",
    "BlobRef",
    "Divergence",
    "ErrorEvent",
    "Event",
    "ForkOrigin",
    "HumanInput",
    "ImportReport",
    "ImportedAnswers",
    "ImportedRun",
    "IndexUnavailable",
    "Manifest",
    "MemoryRead",
    "MemoryWrite",
    "ModelCall",
    "NodeFinished",
    "NodeStarted",
    "PendingInterrupt",
    "Point",
    "RecordedCall",
    "RecordingModel",
    "Redactor",
    "Replay",
    "ReplayMismatch",
    "ReplayModel",
    "ReplayTools",
    "RoleInfo",
    "RunContext",
    "RunFinished",
    "RunInfo",
    "RunPage",
    "RunResumed",
    "RunStarted",
    "SpanSource",
    "StepRoute",
    "StepSummary",
    "TaskStep",
    "ToolInvocation",
    "ToolSource",
    "Totals",
    "Trace",
    "TraceStore",
    "as_node",
    "asked",
    "comparable",
    "current_node",
    "current_run",
    "final_state",
    "first_divergence",
    "human_input",
    "import_traces",
    "imported",
    "is_task_key",
    "load",
    "parse_event",
    "reach_step",
    "record_run",
    "record_tool",
    "recorded_task",
    "render_view",
    "request_diff",
    "request_lines",
    "role_prompts",
    "run_totals",
    "runs_started",
    "same_request",
    "set_output",
    "show_questions",
    "state_differences",
    "steps",
    "takes_runtime",
    "task_call",
    "to_otlp",
    "traced_node",
    "write_assets",
    "write_once",
    "write_view",
]


def __getattr__(name: str) -> object:
    """Names kept for code written before they changed (each warns once where it is used)."""
    if name == "ToolCall":
        import warnings

        warnings.warn("rolegraph.traces.ToolCall (the event) is now ToolInvocation; rolegraph.models.ToolCall "
                      "is a tool call in a model's answer", DeprecationWarning, stacklevel=2)
        return ToolInvocation
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
