"""The recorder: context variables that follow each run, node and agent attempt through asyncio
tasks, so concurrent runs in one process never mix, and the wrappers that write events."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime as LGRuntime
from pydantic_core import to_jsonable_python

from rolegraph._langgraph import handoff_of, raised_interrupts, task_position
from rolegraph.errors import UserError
from rolegraph.models import ChatModel, ChatRequest, ChatResponse, TokenSink, chat_streamed
from rolegraph.traces._events import (
    AgentRetry,
    ErrorEvent,
    ForkOrigin,
    HumanInput,
    Manifest,
    ModelCall,
    NodeFinished,
    NodeStarted,
    PendingInterrupt,
    RunFinished,
    RunResumed,
    RunStarted,
    ToolInvocation,
    Totals,
)
from rolegraph.traces._seeds import seeded
from rolegraph.traces._store import TraceStore, new_run_id
from rolegraph.traces._tokens import NodeTokens, message_id
from rolegraph.traces._trace import Trace
from rolegraph.traces._writer import RunWriter

PACKAGES = ("rolegraph", "langgraph", "openai", "pydantic", "llama-cpp-python", "langchain-core", "langchain",
            "langgraph-supervisor", "langgraph-swarm")


@dataclass
class RunContext:
    """One run in progress. `writer` is None when the runtime keeps no traces."""

    run_id: str
    writer: RunWriter | None
    manifest: Manifest | None = None
    """What the run was started with (its graph's roles and prompts among it)."""
    started_at: float = field(default_factory=time.perf_counter)
    """perf_counter() at start (set back by the recorded duration when resuming)."""
    totals: Totals = field(default_factory=Totals)
    node_steps: int = 0
    key_counts: dict[str, int] = field(default_factory=dict)
    output: list[Any] = field(default_factory=list)
    resumed: dict[str, int] = field(default_factory=dict)
    """Resuming: node execution key -> its step in the interrupted log (a re-run keeps its number)."""
    finished_keys: set[str] = field(default_factory=set)
    """Resuming: node executions that finished before the interruption (re-run silently, if at all)."""
    asked: dict[str, PendingInterrupt] = field(default_factory=dict)
    """Questions nodes asked with `interrupt()` in this run, by interrupt id."""
    answered: dict[str, int] = field(default_factory=dict)
    """Node execution key -> the answers it has been given (its next question's `index`)."""
    pending: list[PendingInterrupt] = field(default_factory=list)
    """The questions the run stopped at (set when it ends interrupted; RunFinished says so)."""

    def emit(self, event: Any, raw: tuple[str, Any] | None = None) -> None:
        """Write `event`; `raw` = (field, value) fills a field with a value serialized as it is written."""
        if self.writer is None:
            return
        if raw is None:
            self.writer.write(event)
        elif isinstance(self.writer, RunWriter):
            self.writer.write(event, raw)
        else:  # another sink (a test's): the event as it always was, the value made JSON-ready
            setattr(event, raw[0], to_jsonable_python(raw[1], fallback=str))
            self.writer.write(event)


@dataclass
class NodeContext:
    node: str
    key: str
    step: int
    path: list[str] = field(default_factory=list)
    calls: int = 0
    memory_reads: int = 0
    tools: int = 0
    silent: bool = False
    """A resumed run re-executing a node that had finished: answered from the trace, not written again."""
    config: Any = None
    """The RunnableConfig LangGraph gave the node: its callbacks are who listens to its model calls' tokens."""
    tasks: int = 0
    """Functional-API task calls this execution has made (the next one's index in its key)."""


@dataclass
class Attempt:
    """An agent's attempt, as the model call it makes records it: which agent, which try, which prompt."""

    agent: str
    index: int
    prompt: str | None = None
    prompt_sha256: str | None = None


_RUN: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar("rolegraph_run", default=None)
_NODE: contextvars.ContextVar[NodeContext | None] = contextvars.ContextVar("rolegraph_node", default=None)


def current_run() -> RunContext | None:
    return _RUN.get()


_STARTED: contextvars.ContextVar[list[RunContext] | None] = contextvars.ContextVar("rolegraph_started", default=None)


@contextlib.contextmanager
def runs_started() -> Iterator[list[RunContext]]:
    """The runs recorded (started or resumed) inside this block, each listed as it starts: code that
    may cancel the work (an evaluation's case timeout) still knows which trace holds it."""
    started: list[RunContext] = []
    token = _STARTED.set(started)
    try:
        yield started
    finally:
        _STARTED.reset(token)


def current_node() -> NodeContext | None:
    return _NODE.get()


def run_totals() -> Totals | None:
    """The calls, tokens and steps of the run in progress so far (None outside a run)."""
    run = _RUN.get()
    return run.totals if run is not None else None


@lru_cache(maxsize=1)
def _versions() -> tuple[tuple[str, str], ...]:
    out = []
    for name in PACKAGES:
        try:
            out.append((name, version(name)))
        except PackageNotFoundError:
            continue
    return tuple(out)


def package_versions() -> dict[str, str]:
    """Versions of the packages a run depends on (read once per process: parsing metadata is slow)."""
    return dict(_versions())


@contextlib.asynccontextmanager
async def record_run(store: TraceStore | None, manifest: Manifest, *, parent: ForkOrigin | None = None,
                     resume: Trace | None = None) -> AsyncIterator[RunContext]:
    """Record one run: RunStarted now, RunFinished (ok or error, with totals) at the end.
    With `resume`, continue that run's log instead (RunResumed, steps numbered on)."""
    if resume is not None:
        if store is None:
            raise ValueError("resuming a run needs a trace store")
        writer: RunWriter | None = store.append_writer(resume)
        ctx = RunContext(resume.run_id, writer, totals=totals_of(resume))
        # a node re-executed after the interruption keeps its step number, so each step shows once
        ctx.resumed = {e.key: e.step for e in resume.events if isinstance(e, NodeStarted)}
        ctx.finished_keys = {e.key for e in resume.events
                             if isinstance(e, NodeFinished) and e.error is None and not e.interrupts}
        for e in resume.events:  # the questions asked and answered so far: a node asking again is numbered on
            if isinstance(e, (NodeFinished, RunFinished)):
                ctx.asked.update((i.id, i) for i in e.interrupts)
            elif isinstance(e, HumanInput):
                ctx.answered[e.interrupt.node_key] = ctx.answered.get(e.interrupt.node_key, 0) + 1
        ctx.node_steps = max(ctx.resumed.values(), default=-1) + 1
        ctx.totals.node_steps = len(ctx.resumed)
        if resume.finished is not None:  # paused at a question: the time it waited for the answer is no run time
            ctx.started_at -= resume.finished.totals.duration_s
        else:
            ctx.started_at -= max((e.ts for e in resume.events), default=0) - resume.started.ts
        ctx.emit(RunResumed(step=ctx.node_steps))
    else:
        run_id = new_run_id(manifest.graph)
        writer = store.writer(run_id) if store is not None else None
        ctx = RunContext(run_id, writer)
        manifest.packages = manifest.packages or package_versions()
        ctx.emit(RunStarted(run_id=run_id, manifest=manifest, parent=parent))
    ctx.manifest = manifest
    watchers = _STARTED.get()
    if watchers is not None:
        watchers.append(ctx)
    token = _RUN.set(ctx)
    try:
        yield ctx
    except BaseException as exc:
        cancelled = isinstance(exc, asyncio.CancelledError) and not str(exc)
        ctx.emit(ErrorEvent(type=type(exc).__name__, message="cancelled" if cancelled else str(exc)))
        if resume is None:  # a failed resume leaves the run resumable: it does not finish it
            ctx.totals.duration_s = time.perf_counter() - ctx.started_at
            ctx.emit(RunFinished(status="error", totals=ctx.totals))
        raise
    else:
        ctx.totals.duration_s = time.perf_counter() - ctx.started_at
        ctx.emit(RunFinished(status="interrupted" if ctx.pending else "ok", output=ctx.output[0] if ctx.output else None,
                             totals=ctx.totals, interrupts=ctx.pending))
    finally:
        _RUN.reset(token)
        if writer is not None:
            writer.close()


def totals_of(trace: Trace) -> Totals:
    """Totals recomputed from a (possibly interrupted) run's events."""
    t = Totals()
    for e in trace.events:
        if isinstance(e, NodeStarted):
            t.node_steps += 1
        elif isinstance(e, ModelCall) and e.response is not None:
            if e.replayed:
                t.replayed_calls += 1
            else:
                t.model_calls += 1
            t.prompt_tokens += e.usage.prompt_tokens
            t.completion_tokens += e.usage.completion_tokens
        elif isinstance(e, ToolInvocation):
            t.tool_calls += 1
        elif isinstance(e, AgentRetry):
            t.retries += 1
    return t


def set_output(ctx: RunContext, value: Any) -> None:
    """The run's output, written in RunFinished."""
    ctx.output[:] = [to_jsonable_python(value, fallback=str)]


def asked(ctx: RunContext, interrupt: Any) -> PendingInterrupt:
    """The question behind one of LangGraph's `Interrupt`s the run's stream gave: as the node that asked
    recorded it (an interrupt raised where no traced node saw it is placed nowhere, at step -1)."""
    known = ctx.asked.get(interrupt.id)
    if known is not None:
        return known
    return PendingInterrupt(id=interrupt.id, value=to_jsonable_python(interrupt.value, fallback=str), node="",
                            node_key="", step=-1)


def human_input(ctx: RunContext, question: PendingInterrupt, answer: Any, *, replayed: bool = False) -> None:
    """Record the answer to `question` the run goes on from (a person's, or the trace's in a replay)."""
    ctx.answered[question.node_key] = ctx.answered.get(question.node_key, 0) + 1
    ctx.emit(HumanInput(interrupt=question, answer=to_jsonable_python(answer, fallback=str), replayed=replayed))


def node_key(name: str, config: Any) -> tuple[list[str], str]:
    """A stable identity for one node execution: subgraph path, LangGraph step, Send index."""
    where = task_position(config)
    path = where.namespace or [name]
    if path[-1] != name:
        path.append(name)
    push = f"[{where.send}]" if where.send is not None else ""
    return path, f"{'/'.join(path)}@{where.step}{push}"


def takes_runtime(fn: Callable[..., Any]) -> bool:
    """Whether a node function takes (state, runtime) rather than (state)."""
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return False
    return len(params) >= 2


def traced_node(name: str, fn: Callable[..., Awaitable[Any]] | Any,
                check: Callable[[Any], None] | None = None) -> Callable[..., Awaitable[Any]]:
    """Wrap a graph node (an async function of the state, or of the state and the rolegraph
    Runtime, or a compiled subgraph) so each execution is numbered and recorded with its state
    delta. The Runtime reaches nodes as LangGraph's run context, so one compiled graph serves
    every runtime. `check(update)`, if given, sees each update a function node returns and raises
    what is wrong with it (a key the state does not have), as the node's error.

    A node's key must be the same when the run is replayed. Inside a traced subgraph node the
    key is prefixed with the enclosing execution's key; otherwise a repeated key (an untraced
    subgraph entered twice) gets an occurrence number.
    """
    invoke = fn.ainvoke if hasattr(fn, "ainvoke") else None
    wants_runtime = invoke is None and takes_runtime(fn)

    async def node(state: Any, config: RunnableConfig, runtime: LGRuntime[Any]) -> Any:
        run = _RUN.get()
        path, key = node_key(name, config)
        parent = _NODE.get()
        if parent is not None:
            key = f"{parent.key}>{key}"
            path = [*parent.path, *path[-1:]]
        base, seen = key, 0
        if run is not None:
            seen = run.key_counts.get(key, 0)
            run.key_counts[key] = seen + 1
            if seen:
                key = f"{key}#{seen}"
        step, silent = 0, False
        if run is not None and key in run.resumed:
            step, silent = run.resumed[key], key in run.finished_keys
        elif run is not None:
            step = run.node_steps
            run.node_steps += 1
            run.totals.node_steps += 1
        if run is not None and run.writer is not None and not silent:
            run.emit(NodeStarted(node=name, path=path, key=key, step=step), raw=("state", state))
        token = _NODE.set(NodeContext(name, key, step, path, silent=silent, config=config))
        started = time.perf_counter()
        try:
            if invoke is not None:
                update = await invoke(state, config)
            elif wants_runtime:  # the rolegraph Runtime travels as LangGraph's run context
                context = runtime.context if runtime is not None else None
                if context is None:
                    raise UserError(f"node '{name}' needs the rolegraph Runtime: run the graph with "
                                    "`await graph.run(input, runtime=rt)` (or `graph.run_sync(...)`)")
                update = await fn(state, context)
            else:
                update = await fn(state)
            if check is not None and invoke is None:  # a subgraph's output is its own state, filtered by design
                check(update)
        except BaseException as exc:
            questions = raised_interrupts(exc)
            if run is not None and questions is not None:
                _finish_interrupted(run, NodeFinished(node=name, key=key, step=step, duration_s=time.perf_counter()
                                                      - started), questions, silent=silent, recount=(base, seen))
            elif run is not None and not silent:
                _finish_raised(run, NodeFinished(node=name, key=key, step=step,
                                                 duration_s=time.perf_counter() - started), exc)
            raise
        finally:
            _NODE.reset(token)
        if run is not None and run.writer is not None and not silent:
            run.emit(NodeFinished(node=name, key=key, step=step, duration_s=time.perf_counter() - started),
                     raw=("delta", update))
        return update

    node.__name__ = name
    node.rolegraph_inner = fn  # type: ignore[attr-defined]  # what `replay_step` calls (not __wrapped__:
    # LangGraph reads the signature through __wrapped__ and would stop passing `config`)
    return node


def _finish_raised(run: RunContext, finished: NodeFinished, exc: BaseException) -> None:
    """Write the end of a node execution that raised: a handoff (control flow LangGraph raises up to
    the graph that applies it) as the step's outcome, with its update and destinations; anything
    else as the step's error."""
    handoff = handoff_of(exc)
    if handoff is None:
        finished.error = f"{type(exc).__name__}: {exc}"
        run.emit(finished)
        return
    finished.handoff = handoff.goto
    if run.writer is not None:
        run.emit(finished, raw=("delta", handoff.update))


def _finish_interrupted(run: RunContext, finished: NodeFinished, questions: list[Any], *, silent: bool,
                        recount: tuple[str, int]) -> None:
    """Write the end of a node execution that stopped at `interrupt()`: what it asked (the innermost
    node that saw a question keeps it: a subgraph's node, not the node running the subgraph). Once
    answered, LangGraph runs the node again from its start; that execution keeps this one's key and
    step, in a resumed run and in a replay that answers the question within the same run."""
    key, step = finished.key, finished.step
    for q in questions:
        if q.id not in run.asked:
            run.asked[q.id] = PendingInterrupt(id=q.id, value=to_jsonable_python(q.value, fallback=str),
                                               node=finished.node, node_key=key, step=step,
                                               index=run.answered.get(key, 0))
    finished.interrupts = [run.asked[q.id] for q in questions]
    base, seen = recount
    run.key_counts[base] = seen
    run.resumed[key] = step
    if not silent:
        run.emit(finished)


@contextlib.asynccontextmanager
async def as_node(run: RunContext, name: str, key: str, step: int) -> AsyncIterator[NodeContext]:
    """Enter a recorded node execution by hand (to replay one step alone)."""
    run_token, node_token = _RUN.set(run), _NODE.set(NodeContext(name, key, step, [name]))
    try:
        yield _NODE.get()  # type: ignore[misc]
    finally:
        _NODE.reset(node_token)
        _RUN.reset(run_token)


# -- functional-API task calls: each a step of its own, under the node or task that made it --------

TASK_CALL = "@call"
"""What marks a task call's key: `<caller's key>>NAME@callN`, N counting the caller's task calls."""
_TASK_KEY = re.compile(r"[^>/@]+@call\d+")


@dataclass
class TaskStep:
    """One functional-API task call, numbered in the caller's context when it is made (in the order the
    code makes them, whatever order they then run in), and recorded as a step when it runs."""

    name: str
    key: str
    """`<caller's key>>NAME@callN`: the same in a replay, a fork and a resumed run."""
    path: list[str]
    step: int
    silent: bool = False
    """A resumed run running again a task that had finished: answered from the trace, not written again."""
    output: Any = None
    """What the task returned (set inside `recorded_task`)."""


def is_task_key(key: str) -> bool:
    """Whether a node execution key is a functional-API task call's."""
    return _TASK_KEY.fullmatch(key.rsplit(">", 1)[-1]) is not None


def task_call(name: str) -> TaskStep:
    """Number a call of task `name` made now, under the node or task running in this context."""
    run, parent = _RUN.get(), _NODE.get()
    if parent is not None:
        index = parent.tasks
        parent.tasks += 1
        key, path = f"{parent.key}>{name}{TASK_CALL}{index}", [*parent.path, name]
    else:  # made where no traced node runs: numbered in the run
        counter = f"{TASK_CALL}:{name}"
        index = run.key_counts.get(counter, 0) if run is not None else 0
        if run is not None:
            run.key_counts[counter] = index + 1
        key, path = f"{name}{TASK_CALL}{index}", [name]
    step, silent = 0, False
    if run is not None and key in run.resumed:
        step, silent = run.resumed[key], key in run.finished_keys
    elif run is not None:
        step = run.node_steps
        run.node_steps += 1
        run.totals.node_steps += 1
    return TaskStep(name, key, path, step, silent)


@contextlib.asynccontextmanager
async def recorded_task(task: TaskStep, inputs: Any, *, config: Any = None) -> AsyncIterator[TaskStep]:
    """Run a task call as its step, inside the block: NodeStarted with its `inputs` (its arguments by
    name), then NodeFinished with `task.output`, or with its error, its questions (`interrupt()`) or
    its handoff, as a node's. Its model and tool calls are numbered within it."""
    run = _RUN.get()
    if run is not None and run.writer is not None and not task.silent:
        run.emit(NodeStarted(node=task.name, path=task.path, key=task.key, step=task.step), raw=("state", inputs))
    token = _NODE.set(NodeContext(task.name, task.key, task.step, task.path, silent=task.silent, config=config))
    started = time.perf_counter()
    try:
        yield task
    except BaseException as exc:
        finished = NodeFinished(node=task.name, key=task.key, step=task.step, duration_s=time.perf_counter() - started)
        questions = raised_interrupts(exc)
        if run is not None and questions is not None:
            _finish_interrupted(run, finished, questions, silent=task.silent, recount=(task.key, 0))
        elif run is not None and not task.silent:
            _finish_raised(run, finished, exc)
        raise
    finally:
        _NODE.reset(token)
    if run is not None and run.writer is not None and not task.silent:
        run.emit(NodeFinished(node=task.name, key=task.key, step=task.step, duration_s=time.perf_counter() - started),
                 raw=("delta", task.output))


class RecordedCall:
    """One model call being recorded (`RecordingModel.recorded`): its response, and the verdict of the
    agent attempt it belongs to (`accept` / `reject`, the agent's hook). The call's ModelCall event
    is written once, by the recorder, when the `recorded` block ends."""

    def __init__(self, response: ChatResponse, attempt: Attempt | None) -> None:
        self.response, self.attempt = response, attempt
        self.parsed: Any = None
        self.rejected: str | None = None

    def accept(self, parsed: Any) -> None:
        """The attempt's output, as the agent parsed it: written with the call."""
        self.parsed = to_jsonable_python(parsed, fallback=str)

    def reject(self, error: str) -> None:
        """The attempt's answer was invalid: written with the call, counted as a retry, and an
        AgentRetry event written now (the agent asks again with this error as feedback)."""
        self.rejected = error
        run, node = _RUN.get(), _NODE.get()
        if run is not None and not (node is not None and node.silent):
            run.totals.retries += 1
            agent = self.attempt.agent if self.attempt else ""
            index = self.attempt.index if self.attempt else 0
            run.emit(AgentRetry(agent=agent, attempt=index, error=error, node_key=node.key if node else None))


class RecordingModel:
    """Wraps a role's ChatModel: numbers each call within its node and writes a ModelCall."""

    def __init__(self, role: str, inner: ChatModel) -> None:
        self.role = role
        self.inner = inner

    def __repr__(self) -> str:
        return f"RecordingModel({self.role!r}, {self.inner!r})"

    async def chat(self, request: ChatRequest) -> ChatResponse:
        async with self.recorded(request) as call:
            return call.response

    async def chat_stream(self, request: ChatRequest, on_token: TokenSink) -> ChatResponse:
        """`chat`, with the answer's text passed to `on_token` as the model writes it (recorded the same)."""
        async with self.recorded(request, on_token=on_token) as call:
            return call.response

    @contextlib.asynccontextmanager
    async def recorded(self, request: ChatRequest, *, attempt: Attempt | None = None, on_token: TokenSink | None = None,
                       to_node: bool = False) -> AsyncIterator[RecordedCall]:
        """Make one call, numbered within its node, and write its ModelCall when the block ends, with
        the verdict the block gave (`accept` / `reject`): an agent parses its answer inside the block.
        A call that fails is written with its error (and the transport retries before it) and raises.

        The answer's text goes, as the model writes it, to `on_token`, and with `to_node` to whoever
        listens to the node the call runs in (LangGraph's `messages` stream mode). With neither, or
        nobody listening, the request is the plain one; either way the ModelCall written is the same."""
        run = _RUN.get()
        node = _NODE.get()
        index = 0
        if node is not None:
            index = node.calls
            node.calls += 1
        where = CallContext(node.key if node else None, node.step if node else None, index, self.role)
        # the seed it is sent with, recorded in it (the same again on replay: position and run seed are)
        request = seeded(request, run.manifest if run is not None else None, self.role, where.node_key, index,
                         attempt.index if attempt is not None else 0)
        token = _CALL.set(where)
        error: str | None = None
        response: ChatResponse | None = None
        retries: list[Any] = []
        call: RecordedCall | None = None  # made once the model answered; a failed call raises before its block
        try:
            try:
                response = await self._answer(request, node, index, on_token, to_node)
                retries = response.retries
            except asyncio.CancelledError as exc:  # e.g. an evaluation case's timeout: the call is kept, unanswered
                error = "cancelled"
                retries = list(getattr(exc, "retries", ()))  # the transport retries made before it, if the client says
                raise
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                retries = list(getattr(exc, "retries", ()))  # a ModelError carries the retries before it
                raise
            finally:
                _CALL.reset(token)
            call = RecordedCall(response, attempt)
            yield call
        finally:
            if run is not None and not (node is not None and node.silent):
                replayed = where.replayed
                if response is not None:
                    if replayed:
                        run.totals.replayed_calls += 1
                    else:
                        run.totals.model_calls += 1
                    run.totals.prompt_tokens += response.usage.prompt_tokens
                    run.totals.completion_tokens += response.usage.completion_tokens
                if run.writer is not None:  # without a writer: numbering and totals only
                    run.emit(ModelCall(
                        role=self.role, node_key=where.node_key, step=where.step, call_index=index,
                        fingerprint=request.fingerprint, request=request, response=response,
                        agent=attempt.agent if attempt else None, attempt=attempt.index if attempt else None,
                        prompt=attempt.prompt if attempt else None,
                        prompt_sha256=attempt.prompt_sha256 if attempt else None,
                        parsed=call.parsed if call else None, error=error or (call.rejected if call else None),
                        replayed=replayed, retries=retries,
                    ))

    async def _answer(self, request: ChatRequest, node: NodeContext | None, index: int, on_token: TokenSink | None,
                      to_node: bool) -> ChatResponse:
        """The inner model's answer, streamed to `on_token` and to the node's listeners as `recorded` asks."""
        listener = None
        if to_node and node is not None and not node.silent and node.config is not None:
            listener = NodeTokens.open(node.config, self.role, request, message_id(node.key, index))
        if listener is None:
            return await (self.inner.chat(request) if on_token is None else chat_streamed(self.inner, request, on_token))
        heard = listener

        async def both(piece: str) -> None:
            if on_token is not None:
                await on_token(piece)
            await heard.token(piece)

        await listener.start()
        try:
            response = await chat_streamed(self.inner, request, both)
        except BaseException as exc:
            await listener.fail(exc)
            raise
        await listener.end(response)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class CallContext:
    """The model call in progress: where it is, and whether a replayer answered it."""

    node_key: str | None
    step: int | None
    index: int
    role: str
    replayed: bool = False


_CALL: contextvars.ContextVar[CallContext | None] = contextvars.ContextVar("rolegraph_call", default=None)


def current_call() -> CallContext | None:
    return _CALL.get()
