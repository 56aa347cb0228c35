"""The public graph API: `@graph(input=..., state=..., result=...)` over a builder that adds
nodes to a traced StateGraph. The framework fills the manifest, runs, records and checkpoints."""

from __future__ import annotations

import asyncio
import inspect
import json
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from langchain_core.runnables import Runnable
from langgraph.graph import END, START
from langgraph.graph import StateGraph as _LangGraphStateGraph
from pydantic import BaseModel, ValidationError
from pydantic_core import to_json

from rolegraph._langgraph import RunnableCallable, is_async_callable, is_async_generator
from rolegraph.agents import Agent, agents_made
from rolegraph.errors import UserError
from rolegraph.graphs._hooks import call_hook, check_hook
from rolegraph.graphs._result import FRAMEWORK_FIELDS, RunFailure, RunResult, StateResult
from rolegraph.graphs._updates import update_checker
from rolegraph.runtime import Runtime
from rolegraph.traces import Manifest, RoleInfo, traced_node

if TYPE_CHECKING:
    from rolegraph.graphs._human import AnswerBook
    from rolegraph.graphs._run import RunStream
    from rolegraph.graphs._solver import GraphSolver

R = TypeVar("R", bound="RunResult")
__all__ = ["END", "MAX_INPUT_BYTES", "START", "Graph", "RunResult", "StateGraph", "StateResult", "graph"]
MAX_INPUT_BYTES = 1024 * 1024
"""The largest run input (as JSON) a graph accepts by default: 1 MiB, the same as an input file's line."""


def _json_len(value: Any) -> int:
    try:
        return len(to_json(value))
    except ValueError:  # a lone surrogate (from a JSON escape) has no UTF-8 form: count characters
        return len(json.dumps(value, default=str))


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB" if n >= 1024 * 1024 else f"{n / 1024:.1f} KiB"


class StateGraph(_LangGraphStateGraph[Any]):
    """LangGraph's StateGraph whose nodes are traced: `add_node(fn)` takes the node's name from
    the function, and every node is numbered and recorded with its state delta."""

    def add_node(self, node: Any, action: Any = None, **kwargs: Any) -> Any:
        if isinstance(node, str):
            name, fn = node, action
        else:
            fn = node
            name = getattr(node, "__name__", None) or node.get_name()
        if fn is None:
            raise UserError(f"add_node('{name}') needs the node's function")
        if not hasattr(fn, "rolegraph_inner"):
            fn = traced_node(name, fn, check=update_checker(self, name))
        return super().add_node(name, fn, **kwargs)

    def add_conditional_edges(self, source: str, path: Any, path_map: Any = None) -> Any:
        """LangGraph's, except that a plain function as `path` runs inline on the event loop:
        LangGraph would send each call of it to a thread (and through the callback manager),
        which cost more than the step it routes. A route reads the state; it must not block."""
        if (callable(path) and not isinstance(path, Runnable) and not is_async_callable(path)
                and not inspect.isgeneratorfunction(path) and not is_async_generator(path)):
            path = _inline_route(path)
        return super().add_conditional_edges(source, path, path_map)


def _inline_route(fn: Callable[..., Any]) -> Any:
    async def inline(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    # func's signature tells LangGraph what to pass (config, runtime) and its return hint the path map
    return RunnableCallable(fn, inline, name=getattr(fn, "__name__", None), trace=False)


class Graph(Generic[R]):
    """A declared graph: made by `@graph(...)`. `await g.run(input, runtime=rt)` runs it recorded;
    `g.run_sync(...)` does the same from synchronous code."""

    def __init__(self, build: Callable[..., Any], *, name: str, input: type[BaseModel], state: type[Any],
                 result: type[R], options: type[BaseModel] | None, prompts: Sequence[Path],
                 prepare: Callable[..., Any] | None, start: Callable[..., Any] | None,
                 finish: Callable[..., Any] | None, roles: Callable[..., Iterable[str]] | Iterable[str] | None,
                 templates: Callable[..., Iterable[str]] | Iterable[str] | None,
                 recorded_failures: tuple[type[BaseException], ...],
                 recursion_limit: int | Callable[..., int], output_exclude: frozenset[str],
                 max_input_bytes: int | None = None, agents: Sequence[Agent[Any]] = ()) -> None:
        self.build_fn = build
        self.name = name
        self.input_type, self.state_type, self.result_type, self.options_type = input, state, result, options
        self.prompt_dirs = tuple(prompts)
        self._prepare, self._start, self._finish = prepare, start, finish
        self._roles, self._templates = roles, templates
        self.recorded_failures = recorded_failures
        self._recursion_limit = recursion_limit
        self.output_exclude = FRAMEWORK_FIELDS | output_exclude
        self.max_input_bytes = max_input_bytes
        self.declared_agents = tuple(agents)
        self.ref = f"{build.__module__}:{build.__qualname__}"
        try:
            self.file: str | None = str(Path(inspect.getfile(build)).resolve())
        except (TypeError, OSError):
            self.file = None
        self._compiled: dict[str, tuple[Any, list[Agent[Any]]]] = {}
        self._drawings: dict[str, str] = {}
        self.store: Any = None
        """A LangGraph store (`BaseStore`) the compiled graph is given: a wrapped app's own, which its
        `InjectedStore` tools and nodes use."""
        self.__doc__ = build.__doc__
        self.__name__ = name

    def __repr__(self) -> str:
        return f"<rolegraph graph {self.name!r} ({self.ref})>"

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (to a Ray worker) without the compiled graphs and drawings made in this process:
        a compiled LangGraph graph holds context variables, which cannot be pickled."""
        state = self.__dict__.copy()
        state["_compiled"], state["_drawings"] = {}, {}
        return state

    # -- declaration ----------------------------------------------------------------------

    def options(self, options: Any = None) -> BaseModel | None:
        """`options` (an instance, a dict or None) as the graph's options type."""
        if self.options_type is None:
            if options not in (None, {}):
                raise UserError(f"graph '{self.name}' takes no options")
            return None
        if isinstance(options, self.options_type):
            return options
        return self.options_type.model_validate(options or {})

    def input(self, value: Any) -> BaseModel:
        """`value` (an instance or a dict) as the graph's input type."""
        if isinstance(value, self.input_type):
            return value
        if isinstance(value, BaseModel):
            value = value.model_dump()
        return self.input_type.model_validate(value)

    def compile(self, options: Any = None) -> Any:
        """The compiled LangGraph for `options`, built once per options and shared: nodes get the
        Runtime from the run's context."""
        return self._build(self.options(options))[0]

    def agents(self, options: Any = None) -> list[Agent[Any]]:
        """The graph's agents: those made while its build function ran, and those declared with
        `@graph(agents=[...])`. (One rule: an agent made anywhere else is not the graph's, and a run
        that calls it stops with a UserError saying how to declare it.)"""
        return self._build(self.options(options))[1]

    def _build(self, options: BaseModel | None) -> tuple[Any, list[Agent[Any]]]:
        key = options.model_dump_json() if options is not None else ""
        if key not in self._compiled:
            builder = StateGraph(self.state_type)
            with agents_made() as made:
                if len(inspect.signature(self.build_fn).parameters) >= 2:
                    self.build_fn(builder, options)
                else:
                    self.build_fn(builder)
            compiled = builder.compile(name=self.name, store=self.store)
            agents: dict[int, Agent[Any]] = {id(a): a for a in (*made, *self.declared_agents)}
            self._compiled[key] = (compiled, list(agents.values()))
        return self._compiled[key]

    def roles(self, input: Any = None, options: Any = None) -> list[str]:
        """The model roles a run may use: its agents' roles, plus the `roles` hook's."""
        opts = self.options(options)
        found = {a.model_role for a in self._build(opts)[1]}
        if self._roles is not None:
            found |= set(call_hook(self._roles, input, options=opts) if callable(self._roles) else self._roles)
        return sorted(found)

    def templates(self, input: Any = None, options: Any = None) -> list[str]:
        """The prompt templates a run may render (their hashes go into the manifest)."""
        opts = self.options(options)
        agents = self._build(opts)[1]
        names = {a.prompt for a in agents} | {a.retry_prompt for a in agents if a.max_attempts > 1}
        if self._templates is not None:
            extra = self._templates
            names |= set(call_hook(extra, input, options=opts) if callable(extra) else extra)
        return sorted(names)

    # -- running --------------------------------------------------------------------------

    def manifest(self, input: Any, *, runtime: Runtime, seed: int = 0, options: Any = None) -> Manifest:
        """What a run records: the graph and where it lives, input, options, seed, prompts with
        their hashes, roles, the drawing. Runs the `prepare` hook (once per fresh run)."""
        return self._fresh(input, runtime=runtime, seed=seed, options=options)[0]

    def _fresh(self, input: Any, *, runtime: Runtime, seed: int, options: Any) -> tuple[Manifest, BaseModel, BaseModel | None]:
        """A fresh run's manifest, with the input (after `prepare`) and options it validated."""
        if self.ref.endswith(":"):  # "module:": the module-level variable that holds this graph
            module = sys.modules.get(self.ref[:-1])
            attr = next((k for k, v in vars(module).items() if v is self), None) if module is not None else None
            self.ref += attr or self.name
        opts = self.options(options)
        value = self.input(input)
        if self._prepare is not None:
            value = self.input(call_hook(self._prepare, value, options=opts, seed=seed, runtime=runtime))
        data = value.model_dump(mode="json")
        self._check_size(data)
        roles = self.roles(value, opts)
        runtime.require_roles(roles)  # fail early, naming every missing role, before a graph starts
        prompts = runtime.with_prompt_dirs(self.prompt_dirs).prompts
        manifest = Manifest(graph=self.name, ref=self.ref, file=self.file,
                            prompt_dirs=[str(d) for d in self.prompt_dirs], input=data,
                            options=opts.model_dump(mode="json") if opts is not None else {}, seed=seed,
                            prompts={p: prompts.get(p).sha256 for p in self.templates(value, opts)},
                            roles=dict.fromkeys(roles, RoleInfo()), mermaid=self.drawing(opts))
        return manifest, value, opts

    def drawing(self, options: Any = None) -> str:
        """The graph's Mermaid drawing for `options`, drawn once (it cost a run's first milliseconds)."""
        opts = self.options(options)
        key = opts.model_dump_json() if opts is not None else ""
        if key not in self._drawings:
            self._drawings[key] = self._build(opts)[0].get_graph().draw_mermaid()
        return self._drawings[key]

    def _check_size(self, data: dict[str, Any]) -> None:
        if self.max_input_bytes is None:
            return
        size = _json_len(data)
        if size <= self.max_input_bytes:
            return
        field, biggest = max(((k, _json_len(v)) for k, v in data.items()), key=lambda kv: kv[1], default=("", 0))
        raise UserError(f"graph '{self.name}': the input is {_size(size)}, over the limit of "
                        f"{_size(self.max_input_bytes)}" + (f" (field '{field}' is {_size(biggest)})" if field else "")
                        + "; shorten it, or declare the graph with a larger `max_input_bytes`")

    async def run(self, input: Any, *, runtime: Runtime, seed: int = 0, options: Any = None,
                  tags: dict[str, str] | None = None) -> R:
        """Run once on `input` (the input type or a dict), recorded in the runtime's trace store
        (with `tags` in its manifest)."""
        from rolegraph.graphs._run import run_graph

        manifest, value, opts = self._fresh(input, runtime=runtime, seed=seed, options=options)
        manifest.tags.update(tags or {})
        return cast(R, await run_graph(self, manifest, runtime, plan=self.plan(manifest, input=value, options=opts)))

    def astream(self, input: Any, *, runtime: Runtime, seed: int = 0, options: Any = None,
                stream_mode: str | Sequence[str] = "updates", subgraphs: bool = False,
                tags: dict[str, str] | None = None) -> RunStream:
        """`run`, streamed: iterate the returned `RunStream` for LangGraph's chunks of `stream_mode`
        (`updates`, `values`, `messages`, `custom`, `debug`; a list for several, each chunk then
        `(mode, chunk)`); its `result` is the run's result once the stream ends. The run is recorded
        exactly as `run` records it, so it replays, forks and resumes the same way."""
        from rolegraph.graphs._run import RunStream

        manifest, value, opts = self._fresh(input, runtime=runtime, seed=seed, options=options)
        manifest.tags.update(tags or {})
        return RunStream(self, manifest, runtime, stream_mode=stream_mode, subgraphs=subgraphs,
                         plan=self.plan(manifest, input=value, options=opts))

    def run_sync(self, input: Any, *, runtime: Runtime, seed: int = 0, options: Any = None) -> R:
        """`run` from synchronous code (a fresh event loop)."""
        return runtime.run_sync(self.run(input, runtime=runtime, seed=seed, options=options))

    async def resume(self, run: Any, answer: Any = None, *, runtime: Runtime) -> R:
        """Continue a run of this graph in the runtime's trace store: one that stopped at questions
        (`interrupt()`, status "interrupted") from `answer`, or one that was killed (no answer).

        `run` is a run id (a unique prefix, or "last"), a result, or a trace. `answer` is the bare answer
        when the run waits on one question; `{interrupt id: answer}` when it waits on several (their ids
        are in `result.interrupts`; a node's name or execution key also names its question); or
        LangGraph's `Command(resume=...)`. The answers go into the run's own trace, so a replay gives
        them again. Returns the run's result: "ok", or "interrupted" again at its next questions."""
        from rolegraph.graphs._replay import resume_run
        from rolegraph.traces import Trace

        if runtime.traces is None:
            raise UserError("resume needs the runtime's trace store, where the run was recorded (Runtime.load() "
                            "has one; Runtime.from_models(..., traces='runs'))")
        if isinstance(run, Trace):
            trace = run
        elif isinstance(run, RunResult):
            if run.run_id is None or run.trace_dir is None:
                raise UserError("this result's run was not recorded (its runtime kept no traces), so it cannot be resumed")
            trace = Trace.load(run.trace_dir)
        else:
            trace = runtime.traces.load(str(run))
        recorded = trace.started.manifest.graph
        if recorded != self.name:
            raise UserError(f"run {trace.run_id} is a run of graph '{recorded}', not '{self.name}'")
        return cast(R, await resume_run(trace, store=runtime.traces, live=runtime, graph=self, answer=answer))

    def resume_sync(self, run: Any, answer: Any = None, *, runtime: Runtime) -> R:
        """`resume` from synchronous code (a fresh event loop)."""
        return runtime.run_sync(self.resume(run, answer, runtime=runtime))

    async def run_many(self, inputs: Iterable[Any], *, runtime: Runtime, seeds: Iterable[int] = (0,),
                       options: Any = None, concurrency: int = 4) -> AsyncIterator[R | RunFailure]:
        """Every (input, seed) pair as its own run, `concurrency` at a time, yielded as they end. A run
        that raises does not end the batch: it is yielded as a `RunFailure`, and the others go on.
        `run_batch` says which input and seed each result is for."""
        async for _, _, result in self.run_batch(inputs, runtime=runtime, seeds=seeds, options=options,
                                                 concurrency=concurrency):
            yield result

    async def run_batch(self, inputs: Iterable[Any], *, runtime: Runtime, seeds: Iterable[int] = (0,),
                        options: Any = None, concurrency: int = 4) -> AsyncIterator[tuple[int, int, R | RunFailure]]:
        """`run_many`, each result yielded with its input's index and its seed: the one loop that runs
        a graph over many inputs (`rolegraph run` is this loop over a file)."""
        from rolegraph.errors import one_line

        seeds = list(seeds)
        semaphore = asyncio.Semaphore(concurrency)

        async def one(index: int, value: Any, seed: int) -> tuple[int, int, R | RunFailure]:
            async with semaphore:
                try:
                    return index, seed, await self.run(value, runtime=runtime, seed=seed, options=options)
                except Exception as exc:  # noqa: BLE001 - this run's failure, recorded; the others go on
                    return index, seed, RunFailure(error=f"{type(exc).__name__}: {one_line(exc)}")

        tasks = [asyncio.create_task(one(i, v, s)) for i, v in enumerate(inputs) for s in seeds]
        try:
            for next_done in asyncio.as_completed(tasks):
                yield await next_done
        finally:
            for t in tasks:
                t.cancel()

    def solver(self, *, options: Any = None, input: Callable[..., Any] | None = None,
               output: Callable[[R], Any] | None = None, seed: Callable[..., int] | None = None,
               answers: AnswerBook | str | Path | None = None) -> GraphSolver[R]:
        """A solver for `rolegraph.evals.run_eval`: runs the graph on each case (its `input`, or
        `input(case, repeat=..., seed=...)`), so every result carries its trace id and tokens.
        `output(result)` picks what the scorers grade (default: the result without framework fields);
        `seed(case, repeat=..., seed=...)` the run's seed (default: the runner's, seed + repeat).
        `answers` (an `AnswerBook` or the path of its JSONL file) answers the questions the graph asks
        with `interrupt()`; without it, a case whose run stops at a question fails (HumanInputNeeded)."""
        from rolegraph.graphs._human import AnswerBook
        from rolegraph.graphs._solver import GraphSolver

        check_hook(f"graph '{self.name}' solver", "solver input", input)
        check_hook(f"graph '{self.name}' solver", "solver seed", seed)
        book = AnswerBook.load(answers) if isinstance(answers, (str, Path)) else answers
        return GraphSolver(self, self.options(options), input, output, seed, answers=book)

    # -- what run_graph calls -------------------------------------------------------------

    def plan(self, manifest: Manifest, *, input: BaseModel | None = None,
             options: BaseModel | None = None) -> RunPlan[R]:
        """One run decided once, from its manifest: the input and options validated (or taken as
        given, already validated), the compiled graph, the initial state and the recursion limit."""
        opts = options if options is not None else self.options(manifest.options)
        value = input if input is not None else self.input(manifest.input)
        seed = manifest.seed or 0
        limit = self._recursion_limit
        return RunPlan(self, manifest, value, opts, self._build(opts)[0], self._initial_state(value, opts, seed),
                       call_hook(limit, value, options=opts) if callable(limit) else limit)

    def _initial_state(self, value: BaseModel, opts: BaseModel | None, seed: int) -> Any:
        """The `start` hook's state, else the input's fields that the state has (and the seed)."""
        pydantic_state = isinstance(self.state_type, type) and issubclass(self.state_type, BaseModel)
        if self._start is not None:
            state = call_hook(self._start, value, options=opts, seed=seed)
            return self.state_type.model_validate(state) if isinstance(state, dict) and pydantic_state else state
        if pydantic_state and isinstance(value, self.state_type):
            return value
        fields = self.state_type.model_fields if pydantic_state else getattr(self.state_type, "__annotations__", {})
        data = {k: getattr(value, k) for k in type(value).model_fields if k in fields}
        if "seed" in fields and "seed" not in data:
            data["seed"] = seed
        return self.state_type.model_validate(data) if pydantic_state else data

    def _state_fields(self, state: Any) -> dict[str, Any]:
        """With no finish hook: the final state's fields that the result type has (StateResult: all)."""
        if self.result_type is StateResult:
            return {"state": state.model_dump(mode="json") if isinstance(state, BaseModel) else dict(state)}
        if isinstance(state, BaseModel):
            return {k: getattr(state, k) for k in type(state).model_fields if k in self.result_type.model_fields}
        return {k: v for k, v in dict(state).items() if k in self.result_type.model_fields}

    def _as_result(self, out: Any) -> R:
        """A finish hook's value (or the state's fields) as the result type, or one UserError saying why not."""
        if isinstance(out, self.result_type):
            return out
        if not isinstance(out, (BaseModel, dict)):
            raise UserError(f"graph '{self.name}': the finish hook returned {type(out).__name__}; return a "
                            f"{self.result_type.__name__} or a dict of its fields")
        try:
            return self.result_type.model_validate(out.model_dump() if isinstance(out, BaseModel) else out)
        except ValidationError as exc:
            raise UserError(f"graph '{self.name}': the run's end does not make a {self.result_type.__name__}: "
                            f"{exc}") from exc


@dataclass(frozen=True)
class RunPlan(Generic[R]):
    """One run of a graph, decided once before it starts (`Graph.plan`): what `run_graph` executes,
    whether the run is fresh, replayed, forked or resumed."""

    graph: Graph[R]
    manifest: Manifest
    input: BaseModel
    """The run's input, validated (after the `prepare` hook of a fresh run)."""
    options: BaseModel | None
    compiled: Any
    """The compiled LangGraph graph for these options (shared by every run with them)."""
    initial: Any
    """The state the run starts from."""
    recursion_limit: int

    def finish(self, final: Any, error: BaseException | None, run_id: str) -> R:
        """The run's result. Contract: the `finish` hook's value (a result or a dict of its fields)
        when the graph has one, called even after a recorded failure; else the final state's
        fields that the result type has, and a run that left no state re-raises its failure. The
        result carries the run id, and a recorded failure as `status="error"` with its message."""
        graph = self.graph
        state = final
        pydantic_state = isinstance(graph.state_type, type) and issubclass(graph.state_type, BaseModel)
        if final is not None and pydantic_state and not isinstance(final, graph.state_type):
            state = graph.state_type.model_validate(final)
        if graph._finish is not None:
            out = call_hook(graph._finish, state, input=self.input, options=self.options, error=error, run_id=run_id,
                             seed=self.manifest.seed or 0)
        elif state is None:
            raise error or UserError(f"graph '{graph.name}' ended without a state")
        else:
            out = graph._state_fields(state)
        result = graph._as_result(out)
        result.run_id = run_id
        if error is not None:
            result.status = "error"
            result.error = result.error or str(error)
        return result


_REGISTRY: dict[str, Graph[Any]] = {}


def _agent_list(where: str, agents: Iterable[Agent[Any]]) -> tuple[Agent[Any], ...]:
    listed = tuple(agents)
    for a in listed:
        if not isinstance(a, Agent):
            raise UserError(f"{where}: agents=[...] lists {a!r}, which is not a rolegraph Agent")
    return listed


def graph(*, input: type[BaseModel], state: type[Any], result: type[R] = cast(Any, StateResult),
          options: type[BaseModel] | None = None, prompts: str | Path | Sequence[str | Path] | None = None,
          name: str | None = None, prepare: Callable[..., Any] | None = None,
          start: Callable[..., Any] | None = None, finish: Callable[..., Any] | None = None,
          roles: Callable[..., Iterable[str]] | Iterable[str] | None = None,
          templates: Callable[..., Iterable[str]] | Iterable[str] | None = None,
          recorded_failures: tuple[type[BaseException], ...] = (), recursion_limit: int | Callable[..., int] = 25,
          output_exclude: Iterable[str] = (), max_input_bytes: int | None = MAX_INPUT_BYTES,
          agents: Iterable[Agent[Any]] = ()) -> Callable[[Callable[..., Any]], Graph[R]]:
    """Declare a graph. The decorated function adds nodes and edges to a StateGraph (and takes the
    options as a second argument if it wants them); it is called once per options.

    - `input`, `state`, `result`: pydantic models. The start state takes the input's fields that
      the state has (and `seed`, if the state has one); the result takes the final state's fields
      that it has. `result` defaults to StateResult (the final state whole).
    - `prompts`: the graph's template directories, relative to the defining file. A runtime's own
      prompt directory still overrides them.
    - Hooks (each is called with the keyword arguments it names): `prepare(input, options, seed,
      runtime) -> input` once before a fresh run (what it returns is recorded); `start(input,
      options, seed) -> state`; `finish(state, input, options, error, run_id, seed) -> result | dict`;
      `roles(input, options)` and `templates(input, options)` for roles and prompts chosen at run time.
    - `recorded_failures`: errors that end a run with a result (status "error") instead of raising.
    - `recursion_limit`: LangGraph's, an int or `fn(input, options)`.
    - `output_exclude`: result fields left out of the trace's recorded output.
    - `max_input_bytes`: the largest input (as JSON) a run accepts, default 1 MiB (None: no limit).
      A larger one is refused with a UserError naming its largest field, before anything is recorded.
    - `agents`: agents made outside the build function (e.g. at module level) that the nodes call.
      A graph's agents are exactly those made while the build function runs and those listed here;
      their roles and prompts are the run's (checked against the runtime before a run starts, hashed
      into its manifest). A node calling any other agent stops the run with a UserError naming it.
      Agents chosen at run time (per input) are covered by the `roles` and `templates` hooks instead.
    """
    dirs = [prompts] if isinstance(prompts, (str, Path)) else list(prompts or ())

    def decorate(build: Callable[..., Any]) -> Graph[R]:
        try:
            base = Path(inspect.getfile(build)).resolve().parent
        except (TypeError, OSError):
            base = Path.cwd()
        resolved = [(base / d).resolve() for d in dirs]
        for d in resolved:
            if not d.is_dir():
                raise UserError(f"graph '{name or build.__name__}': prompt directory {d} does not exist")
        where = f"graph '{name or build.__name__}'"
        for hook, fn in (("prepare", prepare), ("start", start), ("finish", finish), ("roles", roles),
                         ("templates", templates), ("recursion_limit", recursion_limit)):
            check_hook(where, hook, fn)
        g: Graph[R] = Graph(build, name=name or build.__name__, input=input, state=state, result=result,
                              options=options, prompts=resolved, prepare=prepare, start=start, finish=finish,
                              roles=roles, templates=templates, recorded_failures=tuple(recorded_failures),
                              recursion_limit=recursion_limit, output_exclude=frozenset(output_exclude),
                              max_input_bytes=max_input_bytes, agents=_agent_list(where, agents))
        _REGISTRY[g.name] = g
        return g

    return decorate
