"""Trace events: a versioned, discriminated union. One JSON object per line in a run's log."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from rolegraph.models import ChatRequest, ChatResponse, TransportRetry, Usage

FORMAT_VERSION = 1
DELTA_VERSION = 2
"""The version of a node_started event whose state is written as changes (`state_delta`), which readers
before it cannot read; every other event keeps FORMAT_VERSION."""


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format_version: int = FORMAT_VERSION
    seq: int = 0
    """Position in the run's log, from 0."""
    ts: float = Field(default_factory=time.time)


class RoleInfo(BaseModel):
    endpoint: str = ""
    base_url: str = ""
    model: str = ""
    sampling: dict[str, Any] = Field(default_factory=dict)


class Manifest(BaseModel):
    """What is needed to run the same thing again."""

    graph: str
    ref: str = ""
    """Where the graph is defined, as an import reference `module:attr` (how a replay finds it)."""
    file: str | None = None
    """The file that defines the graph, when it is not importable by `ref` (a script)."""
    prompt_dirs: list[str] = Field(default_factory=list)
    """The graph's own prompt directories, searched after the runtime's and before the package's."""
    input: Any = None
    options: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None
    seed_calls: bool = False
    """Whether each model call that carried no seed of its own was sent one: its role's configured seed
    (`role_seeds`), else one derived from `seed` and the call's place in the run. False in traces
    recorded before calls were seeded: their replays send the requests they recorded, unseeded."""
    role_seeds: dict[str, int | None] = Field(default_factory=dict)
    """The seeds configured for roles when the run started (`[roles.X] seed`), which win over a
    derived one; a role not listed takes the default role's. Empty when no role has one."""
    prompts: dict[str, str] = Field(default_factory=dict)
    """Template name -> sha256 of its content."""
    roles: dict[str, RoleInfo] = Field(default_factory=dict)
    packages: dict[str, str] = Field(default_factory=dict)
    mermaid: str = ""
    """The graph's drawing, for viewers."""
    tags: dict[str, str] = Field(default_factory=dict)
    """Labels for finding the run again; `pair` is the evaluation pair (eval/case/repeat) it answers."""


class ForkOrigin(BaseModel):
    run_id: str
    live_from: int | None = None
    """None for a pure replay; else the first node step that ran live."""
    live_from_call: int = 0
    """Within step `live_from`, the first model call that ran live (0: the whole step)."""
    changes: dict[str, str] = Field(default_factory=dict)


class SpanSource(BaseModel):
    """Where an imported event came from: the OpenTelemetry span it was made of, and what of that
    span no field of the event holds (kept as it came, never dropped)."""

    span_id: str
    """The span's id (hex)."""
    name: str = ""
    raw: dict[str, Any] = Field(default_factory=dict)
    """The span's attributes that were not mapped onto the event."""
    inner: list[dict[str, Any]] = Field(default_factory=list, exclude_if=lambda v: not v)
    """Spans inside it that became no event of their own (name, kind, attributes), as they came."""


class RunStarted(_Event):
    kind: Literal["run_started"] = "run_started"
    run_id: str
    manifest: Manifest
    parent: ForkOrigin | None = None
    source: SpanSource | None = None
    """Set on an imported run: its root span (and the resource's attributes) as they came."""


class RunResumed(_Event):
    kind: Literal["run_resumed"] = "run_resumed"
    step: int
    """The first node step numbered after the interruption."""


class NodeStarted(_Event):
    kind: Literal["node_started"] = "node_started"
    node: str
    path: list[str]
    """Enclosing subgraph nodes, outermost first, ending with `node`."""
    key: str
    """Stable identity of this execution: path, LangGraph step and Send index."""
    step: int
    """The n-th node execution of the run (what `trace show` and `--live-from` count)."""
    state: Any = None
    """The input state (JSON). Left out when it is written as `state_delta`; a loaded trace puts it back."""
    state_digest: str | None = None
    """sha256 of the input state's compact JSON (keys in their order), which a loaded trace checks the
    state it read or rebuilt against. None in traces recorded before states were written as changes."""
    state_delta: Any = None
    """The input state as changes to the state of event `state_base` (see `_deltas`: `add`, `set` and
    `del` operations on its JSON); such an event carries `format_version` 2."""
    state_base: int | None = None
    """The `seq` of the node_started event whose state `state_delta` changes."""
    source: SpanSource | None = None
    """Set on an imported event: the span it was made of."""


class NodeFinished(_Event):
    kind: Literal["node_finished"] = "node_finished"
    node: str
    key: str
    step: int
    delta: Any = None
    """The node's update to the state (JSON); for a handoff, the update its command carries."""
    duration_s: float = 0.0
    error: str | None = None
    handoff: list[str] | None = None
    """Set when the node ended by handing control on (a supervisor's or swarm's handoff, any
    `Command(goto=..., graph=Command.PARENT)`): the nodes it handed to. Not an error."""
    interrupts: list[PendingInterrupt] = Field(default_factory=list, exclude_if=lambda v: not v)
    """Set when the node stopped at LangGraph's `interrupt(value)`: what it asked. Not an error: the
    node runs again, from its start, once the run is resumed with the answer. (Left out when empty.)"""


class ModelCall(_Event):
    kind: Literal["model_call"] = "model_call"
    role: str
    node_key: str | None
    step: int | None
    call_index: int
    """The n-th model call within its node execution."""
    fingerprint: str
    request: ChatRequest
    response: ChatResponse | None = None
    agent: str | None = None
    attempt: int | None = None
    prompt: str | None = None
    prompt_sha256: str | None = None
    parsed: Any = None
    error: str | None = None
    replayed: bool = False
    retries: list[TransportRetry] = Field(default_factory=list)
    """Transport retries made for this call (each failed attempt and the wait after it)."""
    source: SpanSource | None = None
    """Set on an imported event: the span it was made of."""

    @property
    def usage(self) -> Usage:
        return self.response.usage if self.response else Usage()

    @property
    def latency_s(self) -> float:
        return self.response.latency_s if self.response else 0.0


class BlobRef(BaseModel):
    """How traces written before the one blob reference (`$rolegraph_blob`) pointed at a large tool
    value: read (a replay resolves it), never written."""

    blob: str
    """sha256 of the payload's JSON, stored under the run's blobs/."""
    size: int


class ToolInvocation(_Event):
    kind: Literal["tool_call"] = "tool_call"
    name: str
    node_key: str | None
    step: int | None
    call_index: int
    input: Any = None
    output: Any = None
    """The tool's value as JSON (a large one is kept in the run's blobs and put back on load)."""
    duration_s: float = 0.0
    error: str | None = None
    replayed: bool = False
    source: SpanSource | None = None
    """Set on an imported event: the span it was made of."""


class MemoryWrite(_Event):
    kind: Literal["memory_write"] = "memory_write"
    memory: str
    memory_kind: str
    scope: str
    item: dict[str, Any]
    node_key: str | None = None


class MemoryRead(_Event):
    kind: Literal["memory_read"] = "memory_read"
    memory: str
    memory_kind: str
    scope: str
    op: Literal["recall", "window"]
    query: str | None = None
    k: int | None = None
    budget_tokens: int | None = None
    items: list[dict[str, Any]] = Field(default_factory=list)
    node_key: str | None = None
    read_index: int = 0
    """The n-th memory read within its node execution (how a replay finds it)."""
    model_calls: int = 0
    """Model calls the read made itself (a summary memory's summarizer); a replay skips them."""
    replayed: bool = False


class AgentRetry(_Event):
    kind: Literal["agent_retry"] = "agent_retry"
    agent: str
    attempt: int
    error: str
    node_key: str | None = None


class ErrorEvent(_Event):
    kind: Literal["error"] = "error"
    type: str
    message: str
    node_key: str | None = None


class PendingInterrupt(BaseModel):
    """A question a run stopped at: one call of LangGraph's `interrupt(value)` in a node."""

    id: str
    """LangGraph's interrupt id (what `Command(resume={id: answer})` names); drawn anew in each run, so
    comparisons of two runs leave it out."""
    value: Any = None
    """What the node asked: the value it gave `interrupt()` (JSON)."""
    node: str
    """The node that asked."""
    node_key: str
    """The node execution that asked (as its NodeStarted's `key`)."""
    step: int
    """That execution's node step."""
    index: int = 0
    """The n-th `interrupt()` of that execution (a node that asks twice is answered in order)."""


class HumanInput(_Event):
    """A person's answer to a question the run stopped at, given when the run was resumed (or, in a
    replay, answered from the trace it replays): the run goes on from this answer."""

    kind: Literal["human_input"] = "human_input"
    interrupt: PendingInterrupt
    """The question answered."""
    answer: Any = None
    """The answer (JSON), redacted like every event."""
    replayed: bool = False
    """Answered from a recorded trace (a replay or the replayed part of a fork), not by a person."""


class Totals(BaseModel):
    model_calls: int = 0
    replayed_calls: int = 0
    tool_calls: int = 0
    node_steps: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    duration_s: float = 0.0


class RunFinished(_Event):
    kind: Literal["run_finished"] = "run_finished"
    status: Literal["ok", "error", "interrupted"]
    """`interrupted`: the run stopped at `interrupt()` questions (`interrupts`) and can be resumed with
    their answers; its log then goes on after this event."""
    output: Any = None
    totals: Totals = Field(default_factory=Totals)
    interrupts: list[PendingInterrupt] = Field(default_factory=list, exclude_if=lambda v: not v)
    """The questions an interrupted run waits on (left out when empty)."""


Event = Annotated[
    RunStarted | RunResumed | NodeStarted | NodeFinished | ModelCall | ToolInvocation | MemoryRead | MemoryWrite
    | AgentRetry | ErrorEvent | HumanInput | RunFinished,
    Field(discriminator="kind"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(line: str | bytes) -> Event:
    return EVENT_ADAPTER.validate_json(line)
