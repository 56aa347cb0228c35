"""Runtime configuration: which endpoint and model name serve each role, from rolegraph.toml
with ROLEGRAPH__SECTION__NAME__FIELD environment overrides. API keys come only from the
environment (an endpoint names the variable in `api_key_env`)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rolegraph.errors import ConfigError

CONFIG_FILE = "rolegraph.toml"
ENV_PREFIX = "ROLEGRAPH__"
EMBEDDED = "embedded"


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
    """The llama-server program; default: the one `make setup` built."""
    lora: dict[str, str] = Field(default_factory=dict)
    """LoRA adapters in GGUF (name -> file; `rolegraph adapters train` writes them): a role whose
    `model` is an adapter's name is served with that adapter, the others with the base model."""
    startup_timeout_s: float = 120.0


class TracesSettings(_Strict):
    dir: str = "runs"
    """Where runs are recorded (relative to the working directory)."""
    enabled: bool = True


class MemorySettings(_Strict):
    dir: str = "memory"
    """Where memories persist (memory.sqlite plus vector indexes), relative to the working directory."""
    embed_model: str | None = None
    """A local sentence-transformers model directory; default: all-MiniLM-L6-v2 from its package."""


class RuntimeConfig(_Strict):
    """Everything `Runtime.load()` reads. The defaults run every role on the embedded model."""

    endpoints: dict[str, EndpointConfig] = Field(default_factory=dict)
    roles: dict[str, RoleConfig] = Field(default_factory=lambda: {"default": RoleConfig()})
    embedded: EmbeddedSettings = Field(default_factory=EmbeddedSettings)
    traces: TracesSettings = Field(default_factory=TracesSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)

    @model_validator(mode="after")
    def _check_refs(self) -> RuntimeConfig:
        endpoints = self.all_endpoints()
        for role, rc in self.roles.items():
            if rc.endpoint not in endpoints:
                raise ValueError(
                    f"role '{role}' uses endpoint '{rc.endpoint}', which is not defined; "
                    f"known endpoints: {', '.join(sorted(endpoints))}"
                )
        return self

    def all_endpoints(self) -> dict[str, EndpointConfig]:
        return {EMBEDDED: EndpointConfig(kind="embedded"), **self.endpoints}


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
    _apply_env(data, env)
    try:
        return RuntimeConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_problem(e["loc"], e["msg"]) for e in exc.errors())
        raise ConfigError(f"{source}: {problems}") from None


def _problem(loc: tuple[Any, ...], msg: str) -> str:
    msg = msg.removeprefix("Value error, ")
    return f"{'.'.join(str(x) for x in loc)}: {msg}" if loc else msg


def _reject_keys(data: Any, source: str, where: str = "") -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            if key in ("api_key", "apikey", "key", "token"):
                raise ConfigError(
                    f"{source}: {where}{key}: API keys are read only from the environment; "
                    f"set api_key_env = \"NAME_OF_VARIABLE\" instead"
                )
            _reject_keys(value, source, f"{where}{key}.")


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    """ROLEGRAPH__ROLES__PLANNER__MODEL=x sets data['roles']['planner']['model'] = 'x'."""
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


def _env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw
