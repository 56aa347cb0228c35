"""rolegraph: multi-agent LLM graphs you can run from Python, trace, replay and evaluate.

    from rolegraph import Runtime
    from rolegraph.graphs import refinebot

    rt = Runtime.load()                     # rolegraph.toml if present, else the embedded CPU model
    result = refinebot.run(mcq, runtime=rt)
"""

from importlib.metadata import PackageNotFoundError, version

from rolegraph.agents import Agent, AgentResult, OutputInvalid
from rolegraph.config import RuntimeConfig, load_config
from rolegraph.errors import (
    AgentOutputError,
    ConfigError,
    InputError,
    ModelError,
    ModelHTTPError,
    ModelUnreachable,
    RolegraphError,
    ScriptError,
    ServerStartError,
    UnknownRoleError,
    UserError,
)
from rolegraph.runtime import Runtime

try:
    __version__ = version("rolegraph")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "Agent",
    "AgentOutputError",
    "AgentResult",
    "ConfigError",
    "InputError",
    "ModelError",
    "ModelHTTPError",
    "ModelUnreachable",
    "OutputInvalid",
    "RolegraphError",
    "Runtime",
    "RuntimeConfig",
    "ScriptError",
    "ServerStartError",
    "UnknownRoleError",
    "UserError",
    "__version__",
    "load_config",
]
