"""Model servers rolegraph can start: the embedded CPU server (and, later, a vLLM launcher)."""

from rolegraph.models.servers.embedded import (
    EmbeddedConfig,
    EmbeddedServer,
    default_concurrency,
    default_parallel,
    find_default_gguf,
)

__all__ = ["EmbeddedConfig", "EmbeddedServer", "default_concurrency", "default_parallel", "find_default_gguf"]
