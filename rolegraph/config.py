"""Runtime configuration: which endpoint and model name serve each role, from rolegraph.toml
with ROLEGRAPH__SECTION__NAME__FIELD environment overrides. API keys come only from the
environment (an endpoint names the variable in `api_key_env`)."""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from rolegraph.errors import ConfigError

CONFIG_FILE = "rolegraph.toml"
ENV_PREFIX = "ROLEGRAPH__"
EMBEDDED = "embedded"
LEGACY_MEMORY_DIR = "memory"
"""The memory folder of earlier releases (the working directory's `memory/`), still read where it exists."""
ALWAYS_USED_ROLES = frozenset({"default", "summarizer"})
"""Roles any run may use whatever its graph: the fallback for every role, and a summary memory's."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EndpointConfig(_Strict):
    """An OpenAI-compatible server."""

    kind: Literal["openai", "embedded"] = "openai"
    base_url: str | None = None
    api_key_env: str | None = None
    """The environment variable holding the API key (keys never go in the file)."""
    dialect: Literal["auto", "llama_server", "llama_cpp", "vllm", "openai"] = "auto"
    constrain_schemas: bool | None = None
    """Turn bounded ints into enums and bound strings; default: only for llama.cpp's servers."""
    timeout_s: float = 180.0
    retries: int = Field(default=5, ge=1)

    @model_validator(mode="after")
    def _needs_url(self) -> EndpointConfig:
        if self.kind == "openai" and not self.base_url:
            raise ValueError("an endpoint of kind 'openai' needs base_url")
        return self


class RoleConfig(_Strict):
    """The model that plays one role, with its sampling defaults."""

    endpoint: str = EMBEDDED
    model: str | None = None
    """The model name sent to the server (a LoRA adapter name on vLLM); default: the endpoint's."""
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None


class EmbeddedSettings(_Strict):
    model_path: str | None = None
    alias: str = "smollm2-135m"
    port: int = 0
    n_threads: int = 2
    n_ctx: int = 4096
    """Context per slot."""
    parallel: int | None = Field(default=None, ge=1, le=64)
    """Slots decoding at once (llama-server's --parallel); default: two per core, 2 to 8."""
    engine: Literal["llama-server", "llama-cpp-python"] = "llama-server"
    server: str | None = None
    """The llama-server program; default: $ROLEGRAPH_LLAMA_SERVER, else the one `rolegraph setup embedded`
    (or `make setup`) installed in this environment, else PATH's."""
    lora: dict[str, str] = Field(default_factory=dict)
    """LoRA adapters in GGUF (name -> file; `rolegraph adapters train` writes them): a role whose
    `model` is an adapter's name is served with that adapter, the others with the base model."""
    startup_timeout_s: float = 120.0


class TracesSettings(_Strict):
    dir: str = "runs"
    """Where runs are recorded (relative to the working directory)."""
    enabled: bool = True
    snapshot_every: int = Field(default=25, ge=1)
    """A node step's input state is written whole every this many steps of its graph (later for a state
    that keeps growing, so that its whole copies weigh at most half its changes); the steps between
    record what changed, with a digest of the whole state. 1: every step's state whole."""


class MemorySettings(_Strict):
    dir: str | None = None
    """Where memories persist (memory.sqlite plus vector indexes), relative to the working directory;
    default: `memory/` in the traces folder (`runs/memory/`), see `RuntimeConfig.memory_dir`."""
    embed_model: str | None = None
    """A local sentence-transformers model directory; default: all-MiniLM-L6-v2 from its package."""


class RuntimeConfig(_Strict):
    """Everything `Runtime.load()` reads. The defaults run every role on the embedded model."""

    endpoints: dict[str, EndpointConfig] = Field(default_factory=dict)
    roles: dict[str, RoleConfig] = Field(default_factory=lambda: {"default": RoleConfig()})
    embedded: EmbeddedSettings = Field(default_factory=EmbeddedSettings)
    traces: TracesSettings = Field(default_factory=TracesSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)

    _source: str | None = PrivateAttr(default=None)
    _from_env: dict[tuple[str, ...], str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check_refs(self) -> RuntimeConfig:
        endpoints = self.all_endpoints()
        for role, rc in self.roles.items():
            if rc.endpoint not in endpoints:
                raise ValueError(
                    f"role '{role}' uses endpoint '{rc.endpoint}', which is not defined; "
                    f"known endpoints: {', '.join(sorted(endpoints))} (table [roles.{role}], key endpoint)"
                )
            if rc.model is None and rc.endpoint != EMBEDDED:  # only the embedded endpoint has a model of its own
                raise ValueError(
                    f"table [roles.{role}] has no key model: role '{role}' is served by endpoint '{rc.endpoint}', "
                    f"which needs the model name to ask for; set model = \"...\" there"
                )
        return self

    @property
    def source(self) -> str | None:
        """The file this configuration was read from (None: defaults, or made in code)."""
        return self._source

    def where(self, *path: str) -> str:
        """Where the value at `path` (`"roles", "writer"`) was set: the file, or the environment
        variable that overrode it."""
        for n in range(len(path), 0, -1):
            if path[:n] in self._from_env:
                return f"${self._from_env[path[:n]]}"
        return self._source or "the configuration"

    def unused_roles(self, used: Iterable[str]) -> list[str]:
        """The configured roles that none of `used` (a run's graph roles) is, nor the roles every run
        may use (`default`, and the `summarizer` a summary memory asks)."""
        return sorted(set(self.roles) - set(used) - ALWAYS_USED_ROLES)

    def check_roles_used(self, used: Iterable[str], *, by: str) -> None:
        """Raise ConfigError naming the file, the role and the roles there are, for a role configured in
        a file that nothing in this run uses (a misspelt `[roles.wrtier]`, whose settings would never
        apply). `by` says who uses `used` ("graph 'g'"). A configuration made in code passes."""
        if self._source is None and not self._from_env:
            return
        used = sorted(set(used))
        for role in self.unused_roles(used):
            close = difflib.get_close_matches(role, used, n=1, cutoff=0.6)
            hint = f" (did you mean [roles.{close[0]}]?)" if close else ""
            raise ConfigError(
                f"{self.where('roles', role)}: table [roles.{role}] configures a role that no graph, agent or default "
                f"uses{hint}; the roles {by} uses: {', '.join(used) or '(none)'}, and default. Rename or remove the "
                "table, or pass --allow-unused-roles")

    def all_endpoints(self) -> dict[str, EndpointConfig]:
        return {EMBEDDED: EndpointConfig(kind="embedded"), **self.endpoints}

    def memory_dir(self) -> Path:
        """Where memories persist: [memory] dir when set; else `./memory/` while an earlier release's
        memory.sqlite is there (its histories stay in use); else `memory/` in the traces folder, so
        that everything a run writes lands under one folder (`runs/`)."""
        if self.memory.dir is not None:
            return Path(self.memory.dir)
        if (Path(LEGACY_MEMORY_DIR) / "memory.sqlite").is_file():
            return Path(LEGACY_MEMORY_DIR)
        return Path(self.traces.dir) / "memory"


def load_config(path: str | Path | None = None, *, env: Mapping[str, str] | None = None) -> RuntimeConfig:
    """Read `path` (or $ROLEGRAPH_CONFIG, or ./rolegraph.toml if present), then apply env overrides."""
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    source = "defaults"
    if path is None:
        path = env.get("ROLEGRAPH_CONFIG") or (CONFIG_FILE if Path(CONFIG_FILE).is_file() else None)
    if path is not None:
        p = Path(path)
        source = str(p)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            data = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML: {exc}") from exc
    _reject_keys(data, source)
    from_env = _apply_env(data, env)
    try:
        config = RuntimeConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_problem(e["loc"], e["msg"], e["type"], from_env) for e in exc.errors())
        raise ConfigError(f"{source}: {problems}") from None
    config._source = source if path is not None else None
    config._from_env = from_env
    return config


_TABLES: dict[str, type[BaseModel]] = {"endpoints": EndpointConfig, "roles": RoleConfig, "embedded": EmbeddedSettings,
                                       "traces": TracesSettings, "memory": MemorySettings}
"""Each top-level table's model; `endpoints` and `roles` hold one table per name."""


def _problem(loc: tuple[Any, ...], msg: str, kind: str = "", from_env: Mapping[tuple[str, ...], str] | None = None) -> str:
    """One validation error as the table and key it is in: `table [roles.writer] has no key 'modle'
    (did you mean 'model'?)`, `[roles.writer] temperature: Input should be a valid number`."""
    msg = msg.removeprefix("Value error, ")
    if not loc:
        return msg
    parts = [str(x) for x in loc]
    dotted = ".".join(parts)
    named = 2 if parts[0] in ("endpoints", "roles") else 1
    table, key = parts[:named], parts[named:]
    env = next((v for n in range(len(parts), 0, -1) if (v := (from_env or {}).get(tuple(parts[:n])))), None)
    by = f" (set by ${env})" if env else ""
    if kind == "extra_forbidden":
        model = _TABLES.get(parts[0]) if key else RuntimeConfig
        fields = sorted(model.model_fields) if model is not None else []
        name = key[0] if key else table[-1]
        close = difflib.get_close_matches(name, fields, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        where = f"table [{'.'.join(table)}] has no key '{name}'" if key else f"there is no table [{name}]"
        return f"{where}{hint}{by}; known: {', '.join(fields)} ({dotted}: {msg})"
    if not key:
        return f"table [{'.'.join(table)}]{by}: {msg}"
    return f"table [{'.'.join(table)}], key {'.'.join(key)}{by}: {msg}"


def _reject_keys(data: Any, source: str, where: str = "") -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            if key in ("api_key", "apikey", "key", "token"):
                raise ConfigError(
                    f"{source}: {where}{key}: API keys are read only from the environment; "
                    f"set api_key_env = \"NAME_OF_VARIABLE\" instead"
                )
            _reject_keys(value, source, f"{where}{key}.")


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[tuple[str, ...], str]:
    """ROLEGRAPH__ROLES__PLANNER__MODEL=x sets data['roles']['planner']['model'] = 'x'. Returns the
    paths set, each with the variable that set it (so an error names the variable, not the file)."""
    set_by: dict[tuple[str, ...], str] = {}
    for name, raw in sorted(env.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX):].split("__") if p]
        if not parts:
            continue
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {name} does not name a config field")
        node[parts[-1]] = _env_value(raw)
        set_by[tuple(parts)] = name
    return set_by


def _env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw
