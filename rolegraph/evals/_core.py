"""What a benchmark is: typed cases, a solver that answers one case (usually a graph run), and
scorers that grade the answer. Everything persisted is a versioned pydantic record."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import AliasChoices, BaseModel, Field

if TYPE_CHECKING:
    from rolegraph.runtime import Runtime

RECORD_VERSION = 1


class Case(BaseModel):
    """One benchmark item: its input, the expected target, and metadata (e.g. a category)."""

    id: str
    input: Any
    target: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def category(self) -> str:
        return str(self.metadata.get("category", ""))


class Score(BaseModel):
    value: float
    explanation: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


class SolverOutput(BaseModel):
    """What a solver returns: the answer, and where its run was recorded."""

    output: Any
    run_id: str | None = Field(default=None, validation_alias=AliasChoices("run_id", "trace_id"))
    """The run's id (`rolegraph trace show RUN_ID`); results written before it was named so read `trace_id`."""
    trace_dir: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    adopted: bool = False
    """True when the run was not made now but rebuilt from the one an earlier, killed try of the
    same evaluation left, with everything that decides it unchanged."""

    @classmethod
    def of(cls, result: Any, *, exclude: Iterable[str] = ()) -> SolverOutput:
        """From a graph's result model: its trace and token counts, and the rest as the output."""
        return cls(output=result.model_dump(mode="json", exclude={"trace_dir", *exclude}), run_id=result.run_id,
                   trace_dir=result.trace_dir, prompt_tokens=result.prompt_tokens,
                   completion_tokens=result.completion_tokens)


class Solver(Protocol):
    """Answers one case. `repeat` and `seed` let repeats differ (pass^k, flip rates). `pair` is the
    evaluation pair's key (`<evaluation uid>/<case id>/<repeat>`: the evaluation's own id, made with
    its result store, never a folder name); a solver may tag its run with it, as a graph's solver
    does to adopt on resume the run a killed try of the same evaluation left. The runner passes it
    (as `pair=`) only to a solver whose call has a `pair` parameter, so it is optional. A graph's
    `graph.solver()` is one: it returns the run's result, and its `output(result)` is scored."""

    async def __call__(self, case: Case, runtime: Runtime, *, repeat: int, seed: int) -> Any: ...


class Scorer(Protocol):
    """Grades one answer."""

    @property
    def name(self) -> str: ...

    async def __call__(self, case: Case, output: Any) -> Score: ...


@dataclass(frozen=True)
class Benchmark:
    """A named dataset of cases, a solver and its scorers. `cases` is called to stream them."""

    name: str
    cases: Callable[[], Iterable[Case]]
    solver: Solver
    scorers: Sequence[Scorer]
    config: dict[str, Any] = field(default_factory=dict)
    """Settings recorded with the results (model, prompt variant, transform...)."""


class EvalRecord(BaseModel):
    """One finished (case, repeat): written once, never updated."""

    format_version: int = RECORD_VERSION
    kind: Literal["result"] = "result"
    case_id: str
    repeat: int
    status: Literal["ok", "error", "timeout"]
    output: Any = None
    target: Any = None
    category: str = ""
    scores: dict[str, Score] = Field(default_factory=dict)
    error: str | None = None
    run_id: str | None = Field(default=None, validation_alias=AliasChoices("run_id", "trace_id"))
    """The run's id (`rolegraph trace show RUN_ID`); results written before it was named so read `trace_id`."""
    trace_dir: str | None = None
    latency_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finished_at: float = 0.0
    adopted: bool = False
    """True when this result was rebuilt from the run an earlier, killed try of this same
    evaluation left (replayed offline, or resumed from its checkpoint), not run afresh."""


@dataclass(frozen=True)
class Match:
    """Scorer: 1.0 when the output equals the case's target."""

    name: str = "match"

    async def __call__(self, case: Case, output: Any) -> Score:
        ok = output == case.target
        return Score(value=1.0 if ok else 0.0, explanation=f"answer {output!r}, target {case.target!r}")
