"""A LangGraph functional-API workflow (`@entrypoint` over a function that calls `@task`s) as a
rolegraph graph: the entrypoint runs as the graph's one node, and each task call is a recorded
step of its own, with its arguments and what it returned, nested under the node or task that
called it. Replay, fork, resume, diff and `trace to-test` then work as for any graph."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import types
import typing
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any, TypedDict, cast

from langgraph.func import entrypoint
from langgraph.graph import END, START
from pydantic import BaseModel, RootModel, TypeAdapter, create_model
from pydantic_core import to_jsonable_python

from rolegraph._langgraph import (
    Entrypoint,
    current_config,
    entrypoint_of,
    is_async_callable,
    route_task_calls,
    standalone_config,
    task_function,
    using_config,
)
from rolegraph.agents import Agent
from rolegraph.errors import UserError
from rolegraph.graphs._api import _REGISTRY, Graph, StateGraph
from rolegraph.graphs._result import RunResult
from rolegraph.graphs._revive import hints, revived
from rolegraph.runtime import Runtime
from rolegraph.traces import recorded_task, task_call

if typing.TYPE_CHECKING:
    from rolegraph.graphs._solver import GraphSolver

__all__ = ["FunctionalGraph", "WorkflowResult", "functional_graph", "workflow_tasks"]


class WorkflowResult(RunResult):
    """What a run of a functional-API workflow returns: the entrypoint's return value."""

    output: Any = None
    """What the entrypoint returned (its `entrypoint.final(value=...)` when it returned one)."""


def workflow_tasks(fn: Callable[..., Any]) -> dict[str, Callable[..., Any]]:
    """The `@task` functions that `fn` can call, by task name: those its code names (module-level or
    in its closure), in the functions it calls there, and in those tasks, a few levels down."""
    return _reached(fn)[0]


def _reached(fn: Callable[..., Any], depth: int = 3) -> tuple[dict[str, Callable[..., Any]], list[Agent[Any]]]:
    """The tasks (by name) and the Agents that `fn` reaches through the names its code uses."""
    tasks: dict[str, Callable[..., Any]] = {}
    agents: dict[int, Agent[Any]] = {}
    seen: set[int] = set()
    todo: list[tuple[Any, int]] = [(fn, 0)]
    while todo:
        f, level = todo.pop()
        code = getattr(f, "__code__", None)
        if code is None or id(f) in seen or level > depth:
            continue
        seen.add(id(f))
        values = [c.cell_contents for c in (f.__closure__ or ()) if _filled(c)]
        values += [f.__globals__[n] for n in _names(code) if n in f.__globals__]
        for v in values:
            task = task_function(v)
            if isinstance(v, Agent):
                agents.setdefault(id(v), v)
            elif task is not None:
                name = getattr(task, "__name__", type(task).__name__)
                other = tasks.setdefault(name, task)
                if other is not task:
                    raise UserError(f"two tasks are named '{name}' ({_where(other)} and {_where(task)}): a "
                                    "run tells task calls apart by name; give one another with @task(name=...)")
                todo.append((task, level + 1))
            elif inspect.isfunction(v):
                todo.append((v, level + 1))
    return tasks, list(agents.values())


def _names(code: types.CodeType) -> set[str]:
    """The global names a function's code uses, its comprehensions' and inner functions' included."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def _where(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"


# -- the run's input and output ------------------------------------------------------------------

def _first_parameter(entry: Entrypoint) -> str:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = [p for p in inspect.signature(entry.function).parameters.values() if p.kind in kinds]
    if not params:  # LangGraph refuses such an entrypoint when it is declared; kept for a clear word
        raise UserError(f"app(): entrypoint '{entry.name}' takes no input parameter")
    return params[0].name


def _returned(annotation: Any) -> Any:
    """An entrypoint's return annotation as the run's output type (`entrypoint.final[R, S]`: R)."""
    if annotation is entrypoint.final:
        return Any
    if typing.get_origin(annotation) is entrypoint.final:
        return typing.get_args(annotation)[0]
    return annotation


def _input_model(graph: str, param: str, arg_type: Any) -> tuple[type[BaseModel], Callable[[BaseModel], Any]]:
    """The run's input model for an entrypoint taking `arg_type`, and how a run's input becomes the
    entrypoint's argument: a pydantic model is itself; a TypedDict's keys and a dict's items are the
    input's fields; anything else (a str, a list, ...) is the input's one field, named `param`."""
    if isinstance(arg_type, type) and issubclass(arg_type, BaseModel):
        return arg_type, lambda value: value
    if typing.is_typeddict(arg_type):
        fields = typing.get_type_hints(arg_type)
        required = getattr(arg_type, "__required_keys__", frozenset(fields))
        model = create_model(f"{graph}_input", **{k: (t, ...) if k in required else (t, None)  # type: ignore[call-overload]
                                                   for k, t in fields.items()})
        return model, lambda value: {k: getattr(value, k) for k in fields if k in required or k in value.model_fields_set}
    origin = typing.get_origin(arg_type) or arg_type
    if origin in (dict, Mapping, collections.abc.Mapping):
        return RootModel[arg_type], lambda value: cast(Any, value).root
    return create_model(f"{graph}_input", **{param: (arg_type, ...)}), lambda value: getattr(value, param)  # type: ignore[call-overload]


def _declared(entry: Entrypoint, param: str, input: Any, output: Any) -> dict[str, Any]:
    """The entrypoint's resolved annotations; a UserError for one that cannot be resolved (a class
    defined inside a function, say) and is not stated instead."""
    found = hints(entry.function)
    signature = inspect.signature(entry.function)
    for what, written, stated in (("input", signature.parameters[param].annotation, input),
                                  ("output", signature.return_annotation, output)):
        key = param if what == "input" else "return"
        if written is not inspect.Parameter.empty and key not in found and stated is None:
            raise UserError(f"app(): the {what} type of entrypoint '{entry.name}', {written!r}, cannot be resolved "
                            f"where the function is defined; state it: app(workflow, {what}=...)")
    return found


# -- task calls: each one a recorded step ----------------------------------------------------------

def _named(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """A task call's arguments by parameter name (as its step records them)."""
    try:
        return dict(inspect.signature(func).bind_partial(*args, **kwargs).arguments)
    except (TypeError, ValueError):  # a call its signature refuses: it fails when it runs; keep what it was given
        return {"args": list(args), "kwargs": kwargs}


async def _call(func: Callable[..., Any], args: Iterable[Any], kwargs: Mapping[str, Any]) -> Any:
    """Call a task's function as LangGraph would: a sync one in a worker thread (context copied)."""
    if is_async_callable(func):
        return await func(*args, **kwargs)
    return await asyncio.to_thread(func, *args, **kwargs)


def _routed() -> dict[str, Any]:
    """The config in this context (a LangGraph node's or task's; outside a LangGraph run, one of our
    own) with its task calls sent to `_route`."""
    return route_task_calls(current_config() or standalone_config(Runtime.current()), _route)


def _route(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
           schedule: Callable[[Callable[..., Any]], Any] | None) -> Any:
    """One task call: numbered now, in the caller's order; run (by LangGraph when it schedules it)
    as a recorded step, inside which its own task calls are routed here too."""
    name = getattr(func, "__name__", None) or type(func).__name__
    task = task_call(name)
    inputs = _named(func, args, kwargs)

    async def run_task(*a: Any, **k: Any) -> Any:
        async with recorded_task(task, inputs, config=current_config()) as step:
            with using_config(_routed()):
                step.output = await _call(func, a, k)
        return step.output

    # LangGraph tells tasks (and, on resume, the results it saved) apart by name, and passes what
    # the signature asks for (config, runtime): both stay the task's own
    run_task.__name__, run_task.__qualname__, run_task.__doc__ = name, getattr(func, "__qualname__", name), func.__doc__
    run_task.__module__ = getattr(func, "__module__", run_task.__module__)
    with contextlib.suppress(TypeError, ValueError):
        run_task.__signature__ = inspect.signature(func)  # type: ignore[attr-defined]
    if schedule is not None:
        return schedule(run_task)
    return _now(run_task(*args, **kwargs), name)


def _now(coro: Coroutine[Any, Any, Any], name: str) -> Any:
    """Run a task call outside LangGraph (a step replayed alone): a future of it, on the run's loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # a sync caller on a worker thread
        loop = Runtime.current_loop()
        if loop is None:
            coro.close()
            raise UserError(f"task '{name}' was called outside a run: call the workflow through its graph "
                            "(rolegraph.langchain.app(...)).run(...)") from None
        return asyncio.run_coroutine_threadsafe(coro, loop)
    return asyncio.ensure_future(coro)


# -- the graph -------------------------------------------------------------------------------------

class FunctionalGraph(Graph[Any]):
    """A functional-API workflow as a rolegraph graph (made by `rolegraph.langchain.app(workflow)`):
    one node runs the entrypoint; each task call is a step, recorded with its arguments and return
    value. The workflow's own store is kept (`rolegraph.langchain.app` gives it); its checkpointer
    and cache are not: each run is recorded and checkpointed in its trace folder, on a thread of its
    own (so `previous` is always None)."""

    def __init__(self, workflow: Any, entry: Entrypoint, *, name: str, input: Any = None, output: Any = None,
                 roles: Iterable[str] = (), recursion_limit: int = 25) -> None:
        self.workflow, self.entry = workflow, entry
        self.tasks, agents = _reached(entry.function)
        """The workflow's `@task` functions by name (a task step replayed alone calls its function)."""
        param = _first_parameter(entry)
        declared = _declared(entry, param, input, output)
        self.arg_type: Any = input if input is not None else declared.get(param, Any)
        self.output_type: Any = output if output is not None else _returned(declared.get("return", Any))
        try:
            model, to_arg = _input_model(name, param, self.arg_type)
            optional: Any = typing.Optional[self.output_type]  # noqa: UP045 - a type built at run time
            result = create_model(f"{name}_result", __base__=WorkflowResult, output=(optional, None))
        except Exception as exc:  # noqa: BLE001 - pydantic's word on a type it cannot validate
            raise UserError(f"app(): workflow '{name}': {type(exc).__name__}: {exc}. State its input and output "
                            "types with app(workflow, input=..., output=...) (pydantic models, or JSON types)") from None
        self._argument = TypeAdapter(self.arg_type)
        state = cast(Any, TypedDict)(f"{name}_state", {"input": self.arg_type, "output": self.output_type}, total=False)
        node = self._node()

        def build(g: StateGraph) -> None:
            g.add_node(entry.name, node)
            g.add_edge(START, entry.name)
            g.add_edge(entry.name, END)

        def start(input: BaseModel) -> dict[str, Any]:
            return {"input": to_arg(input)}

        def finish(state: dict[str, Any]) -> dict[str, Any]:
            return {"output": state.get("output")}

        super().__init__(build, name=name, input=model, state=state, result=result, options=None, prompts=(),
                         prepare=None, start=start, finish=finish, roles=list(roles), templates=None,
                         recorded_failures=(), recursion_limit=recursion_limit, output_exclude=frozenset(),
                         agents=agents)
        self.__doc__ = entry.function.__doc__

    def _node(self) -> Callable[[dict[str, Any]], Coroutine[Any, Any, dict[str, Any]]]:
        entry, argument = self.entry, self._argument

        async def node(state: dict[str, Any]) -> dict[str, Any]:
            config = _routed()
            with using_config(config):
                value = await entry.runnable.ainvoke(argument.validate_python(state["input"]), config)
            return {"output": value.value if isinstance(value, entrypoint.final) else value}

        node.__name__ = entry.name
        return node

    def solver(self, *, options: Any = None, input: Callable[..., Any] | None = None,
               output: Callable[[Any], Any] | None = None, seed: Callable[..., int] | None = None,
               answers: Any = None) -> GraphSolver[Any]:
        """`Graph.solver`, whose default output (what scorers grade) is what the entrypoint returned."""
        return super().solver(options=options, input=input, seed=seed, answers=answers,
                              output=output or (lambda result: to_jsonable_python(result.output, fallback=str)))

    async def replay_task(self, name: str, inputs: dict[str, Any]) -> Any:
        """Call task `name` again with its recorded arguments (`inputs`, JSON, validated into the
        types its parameters declare), its own task calls routed as in a run. Run it inside the
        task step's node context (`rolegraph.traces.as_node`), so its calls are answered by key."""
        func = self.tasks[name]
        signature = inspect.signature(func)
        types = hints(func)
        arguments: dict[str, Any] = {}
        for key, value in inputs.items():
            param = signature.parameters.get(key)
            annotation = types.get(key)
            if param is not None and param.kind is inspect.Parameter.VAR_POSITIONAL:
                arguments[key] = tuple(revived(list[annotation] if annotation else None, value))  # type: ignore[valid-type]
            elif param is not None and param.kind is inspect.Parameter.VAR_KEYWORD:
                arguments[key] = revived(dict[str, annotation] if annotation else None, value)  # type: ignore[valid-type]
            else:
                arguments[key] = revived(annotation, value)
        bound = inspect.BoundArguments(signature, collections.OrderedDict(arguments))
        with using_config(_routed()):
            return await _call(func, bound.args, bound.kwargs)


def functional_graph(workflow: Any, *, name: str | None = None, input: Any = None, output: Any = None,
                     roles: Iterable[str] = (), recursion_limit: int = 25) -> FunctionalGraph:
    """A functional-API workflow (what `@entrypoint()` returns) as a rolegraph graph named `name`
    (default: the entrypoint function's name). `input`/`output`: the entrypoint's argument and
    return types, when its annotations do not say (or say something else). `roles`: model roles its
    LangChain chat models play (its Agents' roles are found)."""
    entry = entrypoint_of(workflow)
    if entry is None:
        raise UserError(f"{type(workflow).__name__} is not a functional-API workflow: give what @entrypoint() "
                        "returns, or use rolegraph.langchain.app for a compiled StateGraph")
    made = FunctionalGraph(workflow, entry, name=name or entry.name, input=input, output=output, roles=roles,
                           recursion_limit=recursion_limit)
    _REGISTRY[made.name] = made
    return made
