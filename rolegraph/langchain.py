"""Existing LangGraph apps on rolegraph, changed only in how their models and tools are made.

- `RoleChatModel(role="writer")`: a LangChain chat model (a `BaseChatModel`) whose calls go through the run's Runtime (the
  role's endpoint and model from rolegraph.toml, or the embedded default; dialects, transport
  retries, recording, replay and fork). `invoke`/`ainvoke`, `bind_tools` (with `tool_choice`),
  `with_structured_output(PydanticModel)` and histories with tool messages.
- `tools([...])`: LangChain tools (or plain functions) whose every call is a recorded tool call,
  answered from the trace on replay (the tool does not run) and live after a fork's step.
- `app(compiled, name=...)`: any compiled LangGraph app (`create_react_agent(...)`, a user's
  `StateGraph(...).compile()` with TypedDict or pydantic state) as a rolegraph graph, every node
  step recorded with its update and the node functions untouched. Assign it to a module-level
  name, so that a replay in another process imports it again.
- `app(workflow)`: a functional-API workflow (`@entrypoint` with `@task`s), each task call a
  recorded step with its arguments and return value.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.tool import invalid_tool_call, tool_call
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.tools import BaseTool, InjectedToolCallId
from langchain_core.tools import tool as as_tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.store.base import BaseStore
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rolegraph import _langchain_values as lc_values
from rolegraph._langgraph import builder_of, copy_graph, entrypoint_of, node_specs, state_schema
from rolegraph.errors import UserError
from rolegraph.graphs import Graph, StateGraph, functional_graph, graph, workflow_tasks
from rolegraph.models import ChatRequest, ChatResponse, Message, ToolSpec, decode_json
from rolegraph.models import ToolCall as RGToolCall
from rolegraph.runtime import Runtime
from rolegraph.traces import current_node

__all__ = ["Messages", "RecordedTool", "RoleChatModel", "app", "tools"]

T = TypeVar("T")
_REQUEST_KEYS = frozenset({"tools", "tool_choice", "response_schema", "schema_name", "temperature", "top_p",
                           "max_tokens", "seed"})
_STANDALONE: list[Runtime] = []


# -- reaching the run's runtime -------------------------------------------------------------


def _runtime() -> Runtime:
    """The run's Runtime; outside a rolegraph run, one loaded from rolegraph.toml (or the
    embedded default), made once per process."""
    current = Runtime.current()
    if current is not None:
        return current
    if not _STANDALONE:
        _STANDALONE.append(Runtime.load())
    return _STANDALONE[0]


def _sync(make: Callable[[], Coroutine[Any, Any, T]], what: str) -> T:
    """Run a coroutine from synchronous code: on the run's event loop when a sync node calls us
    from LangGraph's worker thread, else in a fresh loop."""
    loop = Runtime.current_loop()
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if loop is not None and loop.is_running() and running is not loop:
        # the task runs in the worker's context (call_soon_threadsafe copies it): node and call numbering hold
        return asyncio.run_coroutine_threadsafe(make(), loop).result()
    if running is not None:
        raise UserError(f"{what} was called synchronously inside a running event loop (an async node): "
                        f"use its async form (ainvoke) there")
    return _runtime().run_sync(make())


# -- messages ------------------------------------------------------------------------------------


def _text(content: Any) -> tuple[str, tuple[str, ...]]:
    """A LangChain message content as text and image URLs."""
    if isinstance(content, str):
        return content, ()
    texts: list[str] = []
    images: list[str] = []
    for part in content or ():
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and part.get("type") == "text":
            texts.append(str(part.get("text", "")))
        elif isinstance(part, dict) and part.get("type") == "image_url":
            url = part.get("image_url")
            images.append(str(url.get("url") if isinstance(url, dict) else url))
        else:
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise UserError(f"message content part of type {kind!r} is not supported; give text or image_url parts")
    return "".join(texts), tuple(images)


def to_message(m: BaseMessage) -> Message:
    """One LangChain message as a rolegraph Message."""
    text, images = _text(m.content)
    if isinstance(m, SystemMessage):
        return Message(role="system", content=text)
    if isinstance(m, HumanMessage):
        return Message(role="user", content=text, images=images)
    if isinstance(m, AIMessage):
        calls = tuple(RGToolCall(id=c.get("id") or f"call_{i}", name=c["name"],
                                 arguments=json.dumps(c["args"], ensure_ascii=False))
                      for i, c in enumerate(m.tool_calls))
        return Message(role="assistant", content=text, tool_calls=calls)
    if isinstance(m, ToolMessage):  # no name: OpenAI's tool message has none, and servers refuse one
        return Message(role="tool", content=text, tool_call_id=m.tool_call_id)
    if isinstance(m, ChatMessage) and m.role in ("system", "user", "assistant"):
        return Message(role=cast(Any, m.role), content=text)
    raise UserError(f"a {type(m).__name__} (role {getattr(m, 'role', m.type)!r}) cannot be sent to a model; "
                    "use system, human, AI or tool messages")


def to_ai_message(response: ChatResponse) -> AIMessage:
    """A rolegraph response as LangChain's AIMessage; tool arguments that are not a JSON object
    become `invalid_tool_calls` (LangGraph's ToolNode reports them to the model)."""
    calls, invalid = [], []
    for c in response.tool_calls:
        try:
            args = decode_json(c.arguments) if c.arguments.strip() else {}
        except ValueError as exc:
            invalid.append(invalid_tool_call(name=c.name, args=c.arguments, id=c.id, error=str(exc)))
            continue
        if isinstance(args, dict):
            calls.append(tool_call(name=c.name, args=args, id=c.id))
        else:
            invalid.append(invalid_tool_call(name=c.name, args=c.arguments, id=c.id,
                                             error=f"arguments must be a JSON object, not {type(args).__name__}"))
    usage = response.usage
    return AIMessage(content=response.text, tool_calls=calls, invalid_tool_calls=invalid,
                     usage_metadata={"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens,
                                     "total_tokens": usage.prompt_tokens + usage.completion_tokens},
                     response_metadata={"model_name": response.model, "finish_reason": response.finish_reason})


def _tool_choice(choice: Any, names: list[str]) -> str | None:
    """LangChain's tool_choice forms as the request's: auto, none, required, or a tool's name."""
    if choice is None or choice is False:
        return None
    if choice is True or choice == "any":
        return "required" if len(names) != 1 else names[0]
    if isinstance(choice, dict):
        choice = (choice.get("function") or {}).get("name") or choice.get("name")
    if choice in ("auto", "none", "required"):
        return str(choice)
    if choice not in names:
        raise UserError(f"tool_choice {choice!r} names no bound tool; tools: {', '.join(names) or 'none'}")
    return str(choice)


# -- the chat model ------------------------------------------------------------------------------


class RoleChatModel(BaseChatModel):
    """A LangChain chat model played by a rolegraph role. Inside a rolegraph run it uses the
    run's Runtime (recorded, replayed, forked); elsewhere a Runtime loaded from rolegraph.toml."""

    role: str = "default"
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    structured_attempts: int = Field(default=3, ge=1)
    """Attempts `with_structured_output` makes: a reply that is not a valid instance is sent back
    with the error, then the last failure raises OutputParserException."""

    model_config = ConfigDict(extra="forbid")

    @property
    def _llm_type(self) -> str:
        return "rolegraph"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"role": self.role}

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None,
                   **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        formatted = [convert_to_openai_tool(t) for t in tools]
        names = [t["function"]["name"] for t in formatted]
        return self.bind(tools=formatted, tool_choice=_tool_choice(tool_choice, names), **kwargs)

    def _request(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> ChatRequest:
        unknown = sorted(k for k in kwargs if k not in _REQUEST_KEYS and not k.startswith("ls_"))
        if unknown:
            raise UserError(f"RoleChatModel(role={self.role!r}) does not take {', '.join(unknown)}; "
                            f"it takes {', '.join(sorted(_REQUEST_KEYS))}")
        specs = tuple(ToolSpec(name=t["function"]["name"], description=t["function"].get("description", ""),
                               parameters=t["function"].get("parameters") or {"type": "object", "properties": {}})
                      for t in kwargs.get("tools") or ())
        return ChatRequest(
            messages=tuple(to_message(m) for m in messages), tools=specs, tool_choice=kwargs.get("tool_choice"),
            response_schema=kwargs.get("response_schema"), schema_name=kwargs.get("schema_name") or "output",
            temperature=kwargs.get("temperature", self.temperature), top_p=kwargs.get("top_p"),
            max_tokens=kwargs.get("max_tokens", self.max_tokens), seed=kwargs.get("seed", self.seed),
            stop=tuple(stop or ()))

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        request = self._request(messages, stop, kwargs)
        node = current_node()
        # the id LangChain would draw at random: the call's place in the run, the same in a replay
        ident = f"rg-{node.key}-{node.calls}" if node is not None else None
        response = await _runtime().model(self.role).chat(request)
        message = to_ai_message(response)
        message.id = ident
        return ChatResult(generations=[ChatGeneration(message=message)],
                          llm_output={"model_name": response.model, "role": self.role})

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        """The answer as the model writes it (`astream`, and LangGraph's `messages` stream mode): a chunk
        per piece of text, then one with the tool calls, usage and finish reason, so the chunks add up
        to `ainvoke`'s message. Recorded as `ainvoke`'s call is; a replay passes the recorded text on
        in one piece."""
        request = self._request(messages, stop, kwargs)
        node = current_node()
        ident = f"rg-{node.key}-{node.calls}" if node is not None else None
        model = _runtime().model(self.role)
        pieces: asyncio.Queue[str | None] = asyncio.Queue()

        async def on_token(piece: str) -> None:
            pieces.put_nowait(piece)

        # the call runs beside this generator (in a copy of its context: the same node and run), so each
        # piece is yielded as it comes
        call = asyncio.ensure_future(model.chat_stream(request, on_token))
        call.add_done_callback(lambda _: pieces.put_nowait(None))
        try:
            while (piece := await pieces.get()) is not None:
                yield ChatGenerationChunk(message=AIMessageChunk(content=piece, id=ident))
            response = await call  # the call's error, if it failed
        finally:
            if not call.done():  # the reader stopped early
                call.cancel()
                await asyncio.wait([call])
        whole = to_ai_message(response)
        yield ChatGenerationChunk(message=AIMessageChunk(
            content="", id=ident, tool_calls=whole.tool_calls, invalid_tool_calls=whole.invalid_tool_calls,
            usage_metadata=whole.usage_metadata, response_metadata=whole.response_metadata, chunk_position="last"))

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return _sync(lambda: self._agenerate(messages, stop, None, **kwargs), f"RoleChatModel(role={self.role!r}).invoke")

    def with_structured_output(self, schema: dict[str, Any] | type, *, include_raw: bool = False,
                               **kwargs: Any) -> Runnable[LanguageModelInput, Any]:
        """Answers as `schema` (a pydantic model, or a JSON schema dict giving dicts) through the
        endpoint's structured-output dialect, with the small-model schema constraints it applies.
        An invalid reply is sent back with the error, up to `structured_attempts` in all."""
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            json_schema, name = schema.model_json_schema(), schema.__name__
        elif isinstance(schema, dict):
            json_schema, name = schema, str(schema.get("title") or "output")
        else:
            raise UserError(f"with_structured_output takes a pydantic model or a JSON schema dict, not {schema!r}")
        unknown = sorted(set(kwargs) - {"method", "strict"})
        if unknown:
            raise UserError(f"with_structured_output does not take {', '.join(unknown)}")
        bound = self.bind(response_schema=json_schema, schema_name=name)

        def parse(text: str) -> Any:
            value = decode_json(text)
            return schema.model_validate(value) if isinstance(schema, type) else value

        async def answer(value: LanguageModelInput) -> Any:
            messages = list(self._convert_input(value).to_messages())
            error: Exception | None = None
            raw: AIMessage | None = None
            for attempt in range(self.structured_attempts):
                raw = await bound.ainvoke(messages)
                text = raw.content if isinstance(raw.content, str) else _text(raw.content)[0]
                try:
                    parsed = parse(text)
                except (ValueError, ValidationError) as exc:
                    error = exc
                    if attempt + 1 < self.structured_attempts:
                        messages += [raw, HumanMessage(content=f"That reply is not a valid {name}: {exc}. "
                                                               "Reply again with only the JSON object.")]
                    continue
                return {"raw": raw, "parsed": parsed, "parsing_error": None} if include_raw else parsed
            failure = OutputParserException(f"role {self.role!r}: no valid {name} after {self.structured_attempts} "
                                            f"attempts: {error}", llm_output=str(raw.content if raw else ""))
            if include_raw:
                return {"raw": raw, "parsed": None, "parsing_error": failure}
            raise failure

        def answer_sync(value: LanguageModelInput) -> Any:
            return _sync(lambda: answer(value), f"RoleChatModel(role={self.role!r}).with_structured_output(...).invoke")

        return RunnableLambda(answer_sync, afunc=answer, name=f"{name}Output")


# -- tools ---------------------------------------------------------------------------------------


class RecordedTool(BaseTool):
    """A LangChain tool whose calls are recorded in the run's trace: input and output as a tool
    call event; on replay the recorded output comes back and the tool does not run.

    Arguments the model does not fill (`InjectedToolCallId`, `InjectedState`, `InjectedStore`,
    which LangGraph's ToolNode injects) reach the tool but are not its recorded input. A message
    or a `Command` the tool returns (a handoff) is recorded so that the replay gets it back whole."""

    inner: BaseTool

    @classmethod
    def of(cls, tool: BaseTool | Callable[..., Any]) -> RecordedTool:
        inner = tool if isinstance(tool, BaseTool) else as_tool(tool)
        if isinstance(inner, RecordedTool):
            return inner
        # metadata and tags travel along: a swarm finds a handoff tool's destination in its metadata
        return cls(name=inner.name, description=inner.description, args_schema=inner.args_schema,
                   return_direct=inner.return_direct, metadata=inner.metadata, tags=inner.tags, inner=inner)

    async def _arun(self, *args: Any, **kwargs: Any) -> Any:
        hidden, call_id_arg = _injected_args(self.inner)
        injected = {k: kwargs.pop(k) for k in list(kwargs) if k in hidden}
        value = dict(kwargs) if not args else {"args": list(args), **kwargs}
        state = _given_state(v for k, v in injected.items() if k != call_id_arg)

        async def run(v: Any) -> Any:
            given = {**v, **{k: x for k, x in injected.items() if k != call_id_arg}}
            if call_id_arg is not None:  # the tool wants its call's id: it is given the call whole, as ToolNode does
                given = {"type": "tool_call", "id": injected.get(call_id_arg), "name": self.inner.name, "args": given}
            out = await self.inner.ainvoke(given)
            return lc_values.encode(out, state) if lc_values.is_langchain_value(out) else out

        current = Runtime.current()
        output = await run(value) if current is None else await current.call_tool(f"langchain.{self.name}", run, value)
        return lc_values.decode(output, state)

    def _run(self, *args: Any, **kwargs: Any) -> Any:
        return _sync(lambda: self._arun(*args, **kwargs), f"tool {self.name!r}")


def _given_state(values: Iterable[Any]) -> Any:
    """The graph state among a tool's injected values (an `InjectedState`, or a `ToolRuntime`'s), if any."""
    for v in values:
        if isinstance(v, BaseStore):
            continue
        if hasattr(v, "state") and hasattr(v, "tool_call_id"):  # langchain's ToolRuntime
            return v.state
        if isinstance(v, (dict, BaseModel)):
            return v
    return None


def _injected_args(tool: BaseTool) -> tuple[frozenset[str], str | None]:
    """The arguments of `tool` that the model does not fill (LangGraph injects them), and the one of
    them that takes the tool call's id, if any."""
    schema = tool.args_schema
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        return frozenset(), None
    shown = tool.tool_call_schema
    visible = set(shown.model_fields) if isinstance(shown, type) and issubclass(shown, BaseModel) else \
        set((shown or {}).get("properties", {})) if isinstance(shown, dict) else set()
    hidden = frozenset(set(schema.model_fields) - visible)
    call_id = next((name for name in sorted(hidden) if any(
        m is InjectedToolCallId or isinstance(m, InjectedToolCallId) for m in schema.model_fields[name].metadata)), None)
    return hidden, call_id


def tools(items: Iterable[BaseTool | Callable[..., Any]]) -> list[BaseTool]:
    """LangChain tools (`@tool` functions, BaseTools, plain functions) with their calls recorded:
    give the result to `ToolNode`, `create_react_agent` or `bind_tools` as you would the tools."""
    return [RecordedTool.of(t) for t in items]


# -- a compiled LangGraph app as a rolegraph graph -----------------------------------------------


class Messages(BaseModel):
    """The default input of a wrapped app: a chat, as `{"role": ..., "content": ...}` objects (the
    form LangGraph's `add_messages` takes)."""

    messages: list[dict[str, Any]]


def _chat_models(root: Any, limit: int = 4000) -> set[str]:
    """Roles of the rolegraph ChatModels a compiled app reaches (node runnables, bindings,
    sequences, closures, the module globals a node's code names), so the manifest lists them
    and a run fails early on a missing role. A compiled graph met on the way (a supervisor's
    members, a swarm's agents, a `create_agent` or `create_react_agent` graph a node calls) is
    searched from its own nodes, at any depth."""
    roles: set[str] = set()
    seen: set[int] = set()
    todo: list[tuple[Any, int]] = [(root, 0)]
    while todo and len(seen) < limit:
        obj, depth = todo.pop()
        if id(obj) in seen or depth > 8 or obj is None or isinstance(obj, (str, bytes, int, float, bool, type)):
            continue
        seen.add(id(obj))
        if isinstance(obj, RoleChatModel):
            roles.add(obj.role)
            continue
        nested = builder_of(obj) if isinstance(obj, Runnable) else None
        if nested is not None:  # an agent inside the app: its nodes, counted from depth 0 again
            todo.append((node_specs(nested), 0))
        if isinstance(obj, dict):
            todo += [(v, depth + 1) for v in obj.values()]
        elif isinstance(obj, (list, tuple, set, frozenset)):
            todo += [(v, depth + 1) for v in obj]
        elif inspect.isfunction(obj) or inspect.ismethod(obj):
            try:  # what its closure holds and the module-level names its code uses
                names = inspect.getclosurevars(getattr(obj, "__func__", obj))
            except ValueError:  # an empty closure cell
                continue
            todo += [(v, depth + 1) for v in [*names.nonlocals.values(), *names.globals.values()]]
        elif dataclasses.is_dataclass(obj):
            todo += [(getattr(obj, f.name, None), depth + 1) for f in dataclasses.fields(obj)]
        elif isinstance(obj, (Runnable, BaseModel)) and hasattr(obj, "__dict__"):
            todo += [(v, depth + 1) for v in vars(obj).values()]
    return roles


def app(compiled: Any, *, name: str | None = None, input: Any = None, output: Any = None,
        roles: Iterable[str] | None = None, recursion_limit: int = 25) -> Graph[Any]:
    """Any compiled LangGraph app as a rolegraph graph named `name`: the same nodes, edges,
    branches and schemas, each node step recorded with its update. `input` is the run's input
    model (default: `Messages`); its fields that the app's state has start the run. A
    functional-API workflow (`@entrypoint` with `@task`s) is taken too: see `_functional_app`. `roles`:
    the model roles it uses (default: those of the rolegraph ChatModels it reaches, at any depth:
    agents inside agents too). The app's store is kept; its checkpointer is not (see
    `_keep_app_services`)."""
    if entrypoint_of(compiled) is not None:
        workflow = _functional_app(compiled, name=name, input=input, output=output, roles=roles,
                                   recursion_limit=recursion_limit)
        _found_from(workflow, sys._getframe(1))
        _keep_app_services(compiled, workflow)
        return workflow
    builder = builder_of(compiled)
    if builder is None:
        raise UserError(f"app(): {type(compiled).__name__} is not a compiled LangGraph StateGraph "
                        "(it has no .builder) nor an @entrypoint workflow; pass what StateGraph(...).compile(), "
                        "create_react_agent() or @entrypoint() returns")
    if name is None:
        raise UserError("app(): name the app: rolegraph.langchain.app(compiled, name=...)")
    if output is not None:
        raise UserError(f"app(name={name!r}): output= is for functional-API workflows; a StateGraph app's result "
                        "is its final state")
    input = input if input is not None else Messages
    found = sorted(set(roles) if roles is not None else _chat_models(node_specs(builder)) or {"default"})

    def build(g: StateGraph) -> None:
        copy_graph(builder, g)

    made: Graph[Any] = graph(input=input, state=state_schema(builder), name=name, roles=found,
                             recursion_limit=recursion_limit)(build)
    _found_from(made, sys._getframe(1))
    _keep_app_services(compiled, made)
    return made


def _found_from(made: Graph[Any], frame: Any) -> None:
    """Let a replay in another process find the app again from the caller's module: "module:" names
    the module-level variable that holds it (looked up when it first runs)."""
    made.ref = f"{frame.f_globals.get('__name__', '')}:"
    file = frame.f_globals.get("__file__")
    made.file = str(Path(file).resolve()) if file else None


def _functional_app(workflow: Any, *, name: str | None, input: Any, output: Any, roles: Iterable[str] | None,
                    recursion_limit: int) -> Graph[Any]:
    """A functional-API workflow (what `@entrypoint()` returns) as a rolegraph graph: the entrypoint
    runs as its one node and each `@task` call is a step of its own, recorded with its arguments
    and return value, its model calls numbered within it (so replay, fork, resume, diff and
    `trace to-test` reach it). `name` defaults to the entrypoint function's. `input`/`output`: the
    entrypoint's argument and return types, read from its annotations unless given; a run's input
    is that type when it is a pydantic model, its keys for a TypedDict or a dict, else one field
    named after the entrypoint's parameter (`{"topic": "cats"}` for `def essay(topic: str)`).
    `roles` default: those of the RoleChatModels the entrypoint and its tasks reach (its Agents'
    roles are found by the graph)."""
    entry = entrypoint_of(workflow)
    assert entry is not None
    found = set(roles) if roles is not None else _chat_models([entry.function, *workflow_tasks(entry.function).values()])
    return functional_graph(workflow, name=name, input=input, output=output, roles=sorted(found),
                            recursion_limit=recursion_limit)


def _keep_app_services(compiled: Any, made: Graph[Any]) -> None:
    """What the compiled app was given besides its graph: its store is kept (its `InjectedStore`
    tools and nodes use it); its checkpointer is not, and a warning says so: a rolegraph run keeps
    its own checkpoints, one thread per run, which resume and fork use."""
    made.store = getattr(compiled, "store", None)
    saver = getattr(compiled, "checkpointer", None)
    if saver is not None and not isinstance(saver, bool):
        import warnings

        warnings.warn(f"app(name={made.name!r}): the app's own checkpointer ({type(saver).__name__}) is not used; "
                      "each rolegraph run keeps its own checkpoints (one thread per run). To go on with a "
                      "conversation, start the next run from the last run's state (docs/how-to/multi-agent.md)",
                      UserWarning, stacklevel=3)


def __getattr__(name: str) -> object:
    """Names kept for code written before they changed."""
    if name == "ChatModel":
        import warnings

        warnings.warn("rolegraph.langchain.ChatModel is now rolegraph.langchain.RoleChatModel (a LangChain chat "
                      "model bound to a rolegraph role)", DeprecationWarning, stacklevel=2)
        return RoleChatModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
