"""Agent: one role. A prompt template, a model role name, a typed output and a retry policy.

An agent is data (a frozen dataclass); `run(runtime, ...)` executes it. Output that fails to
parse or validate goes back to the model with the error, up to `max_attempts` in all; then
AgentOutputError carries every attempt.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from pydantic import BaseModel, ValidationError

from rolegraph.errors import AgentOutputError, UserError
from rolegraph.memory import MemoryFeed
from rolegraph.models import ChatRequest, ChatResponse, Message, ToolSpec, UnsafeJSON, Usage, decode_json
from rolegraph.traces import Attempt, current_run

if TYPE_CHECKING:
    from rolegraph.runtime import Runtime

T = TypeVar("T")

RETRY_PROMPT = "agents/retry"


class OutputInvalid(ValueError):
    """Raised by an output parser: the message goes back to the model as feedback."""


@dataclass(frozen=True)
class AgentAttempt:
    """One try: what the model said and why it was rejected (None if accepted)."""

    index: int
    text: str
    error: str | None
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True)
class AgentResult(Generic[T]):
    """The typed output plus the conversation that produced it."""

    output: T
    messages: tuple[Message, ...]
    """The prompt, the accepted answer, and any rejected answers with their feedback between."""
    response: ChatResponse
    attempts: tuple[AgentAttempt, ...]
    prompt_name: str
    prompt_sha256: str

    @property
    def usage(self) -> Usage:
        total = Usage()
        for a in self.attempts:
            total = total + a.usage
        return total


@dataclass(frozen=True, kw_only=True)
class Agent(Generic[T]):
    """One role.

    `output` is a pydantic model (the model is asked for JSON matching its schema), `str` (the
    text as is), or a function `text -> value` that raises OutputInvalid to ask again.
    """

    name: str
    prompt: str
    output: type[T] | Callable[[str], T]
    role: str | None = None
    """The runtime role whose model answers; default: `name`."""
    max_attempts: int = 3
    max_tokens: int | None = None
    temperature: float | None = None
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str | None = None
    memory: tuple[MemoryFeed, ...] = ()
    """Memories that fill prompt variables before each run (read through the runtime, traced)."""
    retry_prompt: str = RETRY_PROMPT
    """The template that tells the model why its answer was refused (gets error, schema, attempt)."""
    response_schema: dict[str, Any] | None = None
    """A JSON schema to ask for instead of the output model's own (e.g. with an enum of legal moves)."""
    top_logprobs: int | None = None
    """Ask for each generated token's most likely alternatives (AgentResult.response.logprobs)."""

    def __post_init__(self) -> None:
        made = _MADE.get()
        if made is not None:
            made.append(self)

    @property
    def model_role(self) -> str:
        return self.role or self.name

    @property
    def schema(self) -> dict[str, Any] | None:
        if self.response_schema is not None:
            return self.response_schema
        out = self.output
        if isinstance(out, type) and issubclass(out, BaseModel):
            return _json_schema(out)
        return None

    async def run(self, runtime: Runtime, *, history: Sequence[Message] = (), seed: int | None = None,
                  images: Sequence[str] = (), **inputs: Any) -> T:
        """Render the prompt with `inputs`, ask the role's model, return the validated output.
        `images` (URLs, e.g. base64 data URLs) go with the prompt's last user message."""
        return (await self.invoke(runtime, history=history, seed=seed, images=images, **inputs)).output

    async def invoke(self, runtime: Runtime, *, history: Sequence[Message] = (),
                     seed: int | None = None, images: Sequence[str] = (), **inputs: Any) -> AgentResult[T]:
        """Like `run`, but returns the whole conversation and every attempt as well."""
        self._check_declared()
        for feed in self.memory:
            inputs[feed.var] = await feed.read(runtime, inputs)
        rendered = runtime.prompts.render(self.prompt, **inputs)
        model = runtime.model(self.model_role)
        prompt = list(rendered.messages)
        if images:
            last = max(i for i, m in enumerate(prompt) if m.role == "user")
            prompt[last] = prompt[last].model_copy(update={"images": tuple(images)})
        messages: list[Message] = [*history, *prompt]
        attempts: list[AgentAttempt] = []
        schema = self.schema
        for index in range(self.max_attempts):
            request = ChatRequest(
                messages=tuple(messages),
                response_schema=schema,
                schema_name=_schema_name(self.output),
                tools=self.tools,
                tool_choice=self.tool_choice,
                max_tokens=self.max_tokens,
                temperature=self.temperature,
                seed=seed,
                top_logprobs=self.top_logprobs,
            )
            # the recorder writes the call once, with this attempt's verdict (accept / reject); the answer's
            # tokens go to whoever listens to the node (LangGraph's "messages" stream mode), if anyone does
            attempt = Attempt(self.name, index, rendered.name, rendered.sha256)
            async with model.recorded(request, attempt=attempt, to_node=True) as call:
                response = call.response
                try:
                    value = self._parse(response)
                except (OutputInvalid, ValidationError, json.JSONDecodeError) as exc:
                    error = _describe(exc) + _cut_off(response, request)
                    call.reject(error)
                    attempts.append(AgentAttempt(index, response.text, error, response.usage))
                    feedback = runtime.prompts.render(self.retry_prompt, error=error, schema=schema,
                                                      attempt=index + 1, max_attempts=self.max_attempts)
                    messages += [response.as_message(), *feedback.messages]
                    continue
                call.accept(value)
            attempts.append(AgentAttempt(index, response.text, None, response.usage))
            messages.append(response.as_message())
            return AgentResult(value, tuple(messages), response, tuple(attempts),
                               rendered.name, rendered.sha256)
        raise AgentOutputError(self.name, attempts)

    def _check_declared(self) -> None:
        """Inside a graph's run, this agent must be one of the graph's (its role and prompt in the
        run's manifest): else the run's fingerprint and replay would miss them."""
        run = current_run()
        manifest = run.manifest if run is not None else None
        if manifest is None:
            return
        missing = [f"role '{self.model_role}'"] if self.model_role not in manifest.roles else []
        missing += [f"prompt '{self.prompt}'"] if self.prompt not in manifest.prompts else []
        if missing:
            raise UserError(f"agent '{self.name}' is called in a run of graph '{manifest.graph}', which does not "
                            f"declare it ({' and '.join(missing)} not among the graph's): make the agent inside the "
                            "graph's build function, or list it in @rolegraph.graph(agents=[...]) (for agents "
                            "chosen at run time, name their roles and prompts in the roles= and templates= hooks)")

    def _parse(self, response: ChatResponse) -> T:
        out = self.output
        if out is str:
            return cast(T, response.text)
        if isinstance(out, type) and issubclass(out, BaseModel):
            if response.tool_calls and not response.text:
                value = out.model_validate_json(response.tool_calls[0].arguments)
            else:
                value = out.model_validate(decode_json(response.text))
            _refuse_non_finite(value, ())
            return cast(T, value)
        return cast(Callable[[str], T], out)(response.text)


_MADE: contextvars.ContextVar[list[Agent[Any]] | None] = contextvars.ContextVar("rolegraph_agents", default=None)


@contextlib.contextmanager
def agents_made() -> Iterator[list[Agent[Any]]]:
    """Collect the agents constructed inside this block (how a graph learns its roles and prompts
    while it is built)."""
    made: list[Agent[Any]] = []
    token = _MADE.set(made)
    try:
        yield made
    finally:
        _MADE.reset(token)


@lru_cache(maxsize=256)
def _json_schema(model: type[BaseModel]) -> dict[str, Any]:
    # generating a schema costs about 1 ms; an agent asks for it on every attempt
    return model.model_json_schema()


def _schema_name(output: Any) -> str:
    return output.__name__ if isinstance(output, type) else "output"


def _cut_off(response: ChatResponse, request: ChatRequest) -> str:
    """Why an answer may be unusable that its text alone does not say: the server stopped it at the
    token limit (so the model is asked for a shorter one, not just a valid one)."""
    if response.finish_reason != "length":
        return ""
    limit = f" of {request.max_tokens} tokens" if request.max_tokens else ""
    return f" (the answer was cut off at the length limit{limit}: give a shorter one)"


def _refuse_non_finite(value: Any, loc: tuple[Any, ...]) -> None:
    """Raise OutputInvalid at the first NaN or infinity in a parsed output: pydantic accepts them in
    a float field (from "NaN", "inf", or a tool call's NaN), yet no score, comparison or JSON file can
    use one, so the model is asked again, told where."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise OutputInvalid(f"{'.'.join(map(str, loc)) or 'value'}: Input should be a finite number, not {value}")
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _refuse_non_finite(getattr(value, name), (*loc, name))
        for name, item in (value.model_extra or {}).items():
            _refuse_non_finite(item, (*loc, name))
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_non_finite(item, (*loc, key))
    elif isinstance(value, (list, tuple, set, frozenset)):
        for i, item in enumerate(value):
            _refuse_non_finite(item, (*loc, i))


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
        )
    if isinstance(exc, UnsafeJSON):
        return f"not accepted: {exc.msg}"
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON ({exc.msg} at position {exc.pos})"
    return str(exc)
