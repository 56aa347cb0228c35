"""Runtime: the explicit bundle a graph runs with — a model per role, the prompt library and
the servers it started. It is passed to graphs; nothing in rolegraph reads a global."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import os
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TypeVar, cast

from rolegraph.config import EMBEDDED, EndpointConfig, RoleConfig, RuntimeConfig, load_config
from rolegraph.errors import ConfigError, ServerStartError, UnknownRoleError
from rolegraph.memory import MemoryStore, RecordedMemory, TokenCounter
from rolegraph.models import ChatModel, ChatRequest, Endpoint, OpenAICompatModel, RetryPolicy
from rolegraph.models.servers import EmbeddedConfig, EmbeddedServer
from rolegraph.prompts import OverlayLibrary, PromptLibrary
from rolegraph.traces import (
    Attempt,
    ForkOrigin,
    Manifest,
    RecordingModel,
    Redactor,
    Replay,
    ReplayModel,
    ReplayTools,
    RoleInfo,
    RunContext,
    ToolSource,
    Trace,
    TraceStore,
    current_node,
    record_run,
    record_tool,
)

T = TypeVar("T")

_CURRENT: contextvars.ContextVar[tuple[Runtime, asyncio.AbstractEventLoop] | None] = contextvars.ContextVar(
    "rolegraph_runtime", default=None)


def _live_step(replay: Replay) -> Callable[[], bool]:
    """Whether the node step in progress is in the replay's live part (where a fork's prompts apply)."""

    def live() -> bool:
        node = current_node()
        return node is not None and not replay.answers(node.step)

    return live


class Runtime:
    """Models by role, prompts, and the servers behind them.

    `Runtime.load()` reads rolegraph.toml (or runs every role on the embedded CPU model, started
    on first use); `Runtime.from_models({...})` wires chat models directly, as tests do.
    """

    def __init__(
        self,
        config: RuntimeConfig | None = None,
        *,
        models: Mapping[str, ChatModel] | None = None,
        prompts: PromptLibrary | None = None,
        env: Mapping[str, str] | None = None,
        traces: TraceStore | None = None,
        trace_parent: ForkOrigin | None = None,
        memory_store: MemoryStore | str | Path | None = None,
        fallback: Callable[[str], ChatModel] | None = None,
        replay: Replay | None = None,
        live: Runtime | None = None,
        counter_source: Runtime | None = None,
    ) -> None:
        self.config = config or RuntimeConfig()
        self.replay = replay
        """What this runtime answers from a recorded trace (a replay, fork or resume); None: all live.
        Its models, tools, memories and prompts all ask it; nothing changes it after construction."""
        self.prompts: PromptLibrary = prompts or PromptLibrary()
        if replay is not None and replay.prompts:  # a fork's changed prompts, in its live part only
            self.prompts = OverlayLibrary(self.prompts, replay.prompts, _live_step(replay))
        self.traces = traces
        """Where runs are recorded; None records nothing (node and call numbering still work)."""
        self.trace_parent = trace_parent if trace_parent is not None or replay is None else replay.origin
        self.tool_source: ToolSource | None = ReplayTools(replay) if replay is not None else None
        """Answers tool calls from the replay's trace instead of running the tools."""
        self._memory_store = memory_store
        """Where memories persist (a path opens on first use); None keeps them in this process only."""
        self.counter_source = counter_source
        """A fork's live runtime: memories count tokens as it does, so its prompts are what a live run makes."""
        self._live = live
        """Plays the roles in the part of a replay that runs live (a fork's, a resume's gaps)."""
        self._memories: dict[tuple[str, str, str], RecordedMemory] = {}
        self._env = os.environ if env is None else env
        self._given: dict[str, ChatModel] = dict(models or {})
        self._fallback = fallback if fallback is not None or replay is None else self._replay_model
        self._made: dict[str, ChatModel] = {}
        """Makes the model for a role that neither `models` nor the config names (replays use it)."""
        self._models: dict[str, RecordingModel] = {}
        self._endpoints: dict[str, Endpoint] = {}
        self._embedded: EmbeddedServer | None = None
        self._resources: dict[str, Any] = {}
        self.redactor = traces.redactor if traces is not None else Redactor(self._env)
        """Knows every API key this runtime is configured with (whatever its variable is called);
        shared with the trace store and handed to the memory and eval stores it writes to."""
        self._register_secrets()

    def _register_secrets(self) -> None:
        """Teach the redactor every configured key value, before anything is written: a key
        whose variable name lacks KEY/TOKEN/SECRET would otherwise reach traces, checkpoints,
        results and memories verbatim (echoed by a 401 body, say)."""
        for ec in self.config.all_endpoints().values():
            if ec.api_key_env:
                self.redactor.add(self._env.get(ec.api_key_env))
        for model in self._given.values():
            endpoint = getattr(model, "endpoint", None)
            if isinstance(endpoint, Endpoint):
                self.redactor.add(endpoint.api_key)
        if isinstance(self._memory_store, MemoryStore):
            self._memory_store.redactor.add(*self.redactor.values)

    @classmethod
    def load(cls, path: str | Path | None = None, *, prompts_dir: str | Path | None = None,
             env: Mapping[str, str] | None = None) -> Runtime:
        """From `path`, $ROLEGRAPH_CONFIG or ./rolegraph.toml; else the embedded default model."""
        prompts = PromptLibrary(prompts_dir) if prompts_dir else PromptLibrary()
        config = load_config(path, env=env)
        traces = TraceStore(config.traces.dir, snapshot_every=config.traces.snapshot_every) if config.traces.enabled else None
        memory = config.memory_dir() / "memory.sqlite"  # created only if a memory is used
        return cls(config, prompts=prompts, env=env, traces=traces, memory_store=memory)

    @classmethod
    def from_models(cls, models: Mapping[str, ChatModel], *, prompts: PromptLibrary | None = None,
                    traces: TraceStore | str | Path | None = None,
                    trace_parent: ForkOrigin | None = None, memory_store: MemoryStore | None = None,
                    fallback: Callable[[str], ChatModel] | None = None, replay: Replay | None = None,
                    live: Runtime | None = None, counter_source: Runtime | None = None) -> Runtime:
        """A runtime whose roles are exactly `models` ("default" answers unlisted roles; then
        `fallback(role)`, if given, makes one; with `replay`, every other role is answered from its
        trace, and what it runs live goes to `live`'s models)."""
        store = traces if isinstance(traces, TraceStore) or traces is None else TraceStore(traces)
        return cls(RuntimeConfig(roles={}), models=models, prompts=prompts, traces=store,
                   trace_parent=trace_parent, memory_store=memory_store, fallback=fallback, replay=replay,
                   live=live, counter_source=counter_source)

    def with_prompt_dirs(self, dirs: Sequence[str | Path]) -> Runtime:
        """This runtime, with `dirs` searched for templates after its own prompt directories and
        before the package's (a graph's own prompts). Shares models, servers and memories."""
        if not dirs:
            return self
        view = copy.copy(self)
        view.prompts = self.prompts.below(*dirs)
        return view

    # -- roles ---------------------------------------------------------------------------

    @property
    def roles(self) -> list[str]:
        return sorted(set(self._given) | set(self.config.roles))

    def model(self, role: str) -> RecordingModel:
        """The model that plays `role` (falling back to the "default" role), recorded in traces."""
        if role not in self._models:
            self._models[role] = RecordingModel(role, self._resolve(role))
        return self._models[role]

    def unrecorded_model(self, role: str) -> ChatModel:
        """The role's model without the recorder (for wrapping in another runtime)."""
        return self._resolve(role)

    def _resolve(self, role: str) -> ChatModel:
        if role in self._made:
            return self._made[role]
        for name in (role, "default"):
            if name in self._given:
                return self._given[name]
            if name in self.config.roles:
                return self._build_model(self.config.roles[name])
        if self._fallback is not None:
            if role not in self._made:
                self._made[role] = self._fallback(role)
            return self._made[role]
        raise UnknownRoleError(role, self.roles)

    def _replay_model(self, role: str) -> ChatModel:
        """A replayed role: answered from the trace; its live part (if any) played by `live`'s model,
        under the fork's changed model name when it has one."""
        assert self.replay is not None
        replay, live = self.replay, self._live
        live_model: ChatModel | None = None
        if live is not None and (replay.live_from is not None or replay.fill_gaps):
            live_model = live.model_named(role, replay.models[role]) if role in replay.models else live.unrecorded_model(role)
        return ReplayModel(replay, live=live_model)

    @property
    def calls_answered(self) -> int:
        """Model calls this runtime's replayed roles answered from the trace so far."""
        return sum(m.answered for m in self._made.values() if isinstance(m, ReplayModel))

    def model_named(self, role: str, model_name: str) -> ChatModel:
        """`role`'s model (unrecorded) on the same endpoint under another model name (another LoRA
        adapter)."""
        inner = self._resolve(role)
        if not isinstance(inner, OpenAICompatModel):
            raise ConfigError(f"role '{role}' is not served over HTTP, so its model name cannot change")
        d = inner.defaults
        return OpenAICompatModel(endpoint=inner.endpoint, model=model_name, temperature=d["temperature"],
                                 top_p=d["top_p"], max_tokens=d["max_tokens"], seed=d["seed"])

    def memory(self, name: str, *, kind: str = "buffer", scope: str = "", **options: Any) -> RecordedMemory:
        """The memory `name` of `kind` (buffer, notes, summary, vector) in `scope`, created on first
        use and persisted in the runtime's memory store; reads and writes are traced."""
        key = (kind, name, scope)
        if key not in self._memories:
            from rolegraph.memory import make_memory

            if kind == "vector":
                options.setdefault("embed_model", self.config.memory.embed_model)
            if kind == "summary":
                options.setdefault("summarizer", self._summarize)
            inner = make_memory(kind, name, scope, store=self.memory_store,  # opens it if a path
                                counter=self.token_counter(options.pop("role", "default")), **options)
            replay = self.replay if self.replay is not None and self.replay.reads_memory else None
            self._memories[key] = RecordedMemory(inner, kind, replay=replay)
        return self._memories[key]

    async def _summarize(self, previous: str, items: list[str]) -> str:
        """A summary memory's default summarizer: the "summarizer" role with prompts/memory/summary.j2."""
        rendered = self.prompts.render("memory/summary", previous=previous, items=items)
        request = ChatRequest(messages=rendered.messages, max_tokens=256)
        async with self.model("summarizer").recorded(request, attempt=Attempt("summarizer", 0, rendered.name,
                                                                              rendered.sha256)) as call:
            return call.response.text

    @property
    def memory_store(self) -> MemoryStore | None:
        if isinstance(self._memory_store, (str, Path)):
            self._memory_store = MemoryStore(self._memory_store, redactor=self.redactor)
        return self._memory_store

    def resource(self, key: str, factory: Callable[[], T]) -> T:
        """A heavy helper (a game engine process, a solver with its tables) made once per runtime
        and shared by the runs it serves; its `close()`, if any, is called when the runtime closes."""
        if key not in self._resources:
            self._resources[key] = factory()
        return cast(T, self._resources[key])

    def token_counter(self, role: str = "default") -> TokenCounter:
        """Exact counts with the serving model's tokenizer when it is the embedded GGUF, else an
        estimate that never undercounts (UTF-8 bytes)."""
        if self.counter_source is not None:
            return self.counter_source.token_counter(role)
        rc = self.config.roles.get(role) or self.config.roles.get("default")
        if rc is not None and rc.endpoint == EMBEDDED:
            try:
                from rolegraph.memory import LlamaTokens
                from rolegraph.models.servers import find_default_gguf

                return LlamaTokens(self.config.embedded.model_path or find_default_gguf())
            except (ImportError, ServerStartError):
                pass
        from rolegraph.memory import ByteEstimate

        return ByteEstimate()

    async def call_tool(self, name: str, fn: Callable[[Any], Awaitable[Any]], value: Any) -> Any:
        """Run a tool, recorded in the trace (and answered from it when replaying)."""
        return await record_tool(name, fn, value, replay=self.tool_source)

    def describe_role(self, role: str) -> RoleInfo:
        inner = self._resolve(role) if role not in self._models else self._models[role]
        inner = inner.inner if isinstance(inner, RecordingModel) else inner
        if isinstance(inner, OpenAICompatModel):
            return RoleInfo(endpoint=inner.endpoint.name, base_url=inner.endpoint.display_url, model=inner.model,
                            sampling={k: v for k, v in inner.defaults.items() if v is not None})
        return RoleInfo(model=type(inner).__name__)

    def record(self, manifest: Manifest, *, resume: Trace | None = None) -> AbstractAsyncContextManager[RunContext]:
        """Record one run of a graph in this runtime's trace store (or only number it);
        with `resume`, continue that interrupted run's log."""
        if resume is None:
            for role in manifest.roles:
                manifest.roles[role] = self.describe_role(role)
        if resume is None and self.replay is None:  # a fresh run: its calls are seeded (a replay keeps the trace's say)
            manifest.seed_calls = True
            manifest.role_seeds = self.role_seeds(manifest.roles)
        return record_run(self.traces, manifest, parent=self.trace_parent, resume=resume)

    def role_seeds(self, roles: Iterable[str] = ()) -> dict[str, int | None]:
        """The seed configured for each of `roles` and of the roles this runtime names (`[roles.X] seed`,
        or a given HTTP model's `seed=`), each as `model(role)` would pick it (its own, else the default
        role's); empty when no role has one. A call of a role with a seed is sent it, not a derived one."""
        names = {*roles, *self._given, *self.config.roles, "default"}
        seeds = {name: self._configured_seed(name) for name in sorted(names)}
        return seeds if any(s is not None for s in seeds.values()) else {}

    def _configured_seed(self, role: str) -> int | None:
        for name in (role, "default"):
            if name in self._given:
                given = self._given[name]
                return given.defaults.get("seed") if isinstance(given, OpenAICompatModel) else None
            if name in self.config.roles:
                return self.config.roles[name].seed
        return None

    def require_roles(self, roles: list[str]) -> None:
        """Fail early, naming every missing role, before a graph starts."""
        for role in roles:
            self.model(role)

    def _build_model(self, rc: RoleConfig) -> ChatModel:
        endpoint = self._endpoint(rc.endpoint)
        model_name = rc.model or (self.config.embedded.alias if rc.endpoint == EMBEDDED else None)
        if model_name is None:
            raise ConfigError(f"the role on endpoint '{rc.endpoint}' needs `model = \"...\"`")
        return OpenAICompatModel(endpoint=endpoint, model=model_name, temperature=rc.temperature,
                                 top_p=rc.top_p, max_tokens=rc.max_tokens, seed=rc.seed)

    def _endpoint(self, name: str) -> Endpoint:
        if name not in self._endpoints:
            ec: EndpointConfig = self.config.all_endpoints()[name]
            api_key = None
            if ec.api_key_env:
                api_key = self._env.get(ec.api_key_env)
                if not api_key:
                    raise ConfigError(
                        f"endpoint '{name}' reads its API key from ${ec.api_key_env}, which is not set"
                    )
                self.redactor.add(api_key)
            base_url: Any = ec.base_url
            dialect: Any = ec.dialect
            lora_ids = None
            if ec.kind == "embedded":
                base_url = self._start_embedded
                if dialect == "auto":  # known without asking the server
                    dialect = "llama_server" if self.config.embedded.engine == "llama-server" else "llama_cpp"
                lora_ids = self.embedded_server.lora_ids
            self._endpoints[name] = Endpoint(
                base_url, name=name, api_key=api_key, dialect=dialect,
                constrain_schemas=ec.constrain_schemas, timeout_s=ec.timeout_s,
                retry=RetryPolicy(attempts=ec.retries), lora_ids=lora_ids,
            )
        return self._endpoints[name]

    # -- the embedded server -------------------------------------------------------------

    @property
    def embedded_server(self) -> EmbeddedServer:
        if self._embedded is None:
            s = self.config.embedded
            self._embedded = EmbeddedServer(EmbeddedConfig(
                model_path=s.model_path, alias=s.alias, port=s.port, n_threads=s.n_threads,
                n_ctx=s.n_ctx, parallel=s.parallel, engine=s.engine, server=s.server, lora=dict(s.lora),
                startup_timeout_s=s.startup_timeout_s))
        return self._embedded

    async def _start_embedded(self) -> str:
        return await asyncio.to_thread(self.embedded_server.ensure_started)

    # -- lifecycle -----------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close this loop's HTTP clients and check test doubles' scripts were used up. Every
        client is closed even when one fails (or the call is cancelled); the first error is raised."""
        first: BaseException | None = None
        closers: list[Any] = [*self._endpoints.values(), *self._given.values(), *self._made.values()]
        for closer in closers:
            try:
                await closer.aclose()
            except BaseException as exc:  # noqa: BLE001 - the others must still be closed
                first = first or exc
        if first is not None:
            raise first

    def close(self) -> None:
        """Write memories' indexes and stop servers this runtime started."""
        for memory in self._memories.values():
            flush = getattr(memory.inner, "flush", None)
            if flush is not None:
                flush()
        for resource in self._resources.values():
            close = getattr(resource, "close", None)
            if close is not None:
                close()
        self._resources.clear()
        if self._embedded is not None:
            self._embedded.stop()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close()
        if exc_type is None:
            self.verify()

    def verify(self) -> None:
        """Check that test doubles used up their scripts (ScriptedModel.verify)."""
        for model in self._given.values():
            verify = getattr(model, "verify", None)
            if verify is not None:
                verify()

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
        self.close()

    @contextlib.contextmanager
    def activate(self) -> Iterator[Runtime]:
        """Make this the current runtime (`Runtime.current()`) while the block runs; call it inside
        the event loop the run uses. Every graph run does this for its nodes."""
        token = _CURRENT.set((self, asyncio.get_running_loop()))
        try:
            yield self
        finally:
            _CURRENT.reset(token)

    @staticmethod
    def current() -> Runtime | None:
        """The runtime of the graph run in progress (None outside a run): the one escape hatch for
        code that LangGraph calls without the runtime (a LangChain chat model, a tool). A node
        takes the runtime as its second parameter instead."""
        current = _CURRENT.get()
        return current[0] if current is not None else None

    @staticmethod
    def current_loop() -> asyncio.AbstractEventLoop | None:
        """The event loop the run in progress uses (None outside a run): where synchronous code on
        LangGraph's worker threads sends its coroutines."""
        current = _CURRENT.get()
        return current[1] if current is not None else None

    def run_sync(self, coro: Coroutine[Any, Any, T] | Awaitable[T]) -> T:
        """Run `coro` in a fresh event loop and close the clients bound to it."""

        async def main() -> T:
            try:
                return await coro
            finally:
                for endpoint in self._endpoints.values():
                    await endpoint.aclose()

        return asyncio.run(main())
