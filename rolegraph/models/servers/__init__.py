"""Model servers rolegraph can start: the embedded CPU server (and, later, a vLLM launcher)."""

from rolegraph.models.servers._setup import EmbeddedSetup, cached_llama_server, setup_embedded
from rolegraph.models.servers.embedded import (
    EmbeddedConfig,
    EmbeddedServer,
    default_concurrency,
    default_parallel,
    find_default_gguf,
    find_llama_server,
)

__all__ = ["EmbeddedConfig", "EmbeddedServer", "EmbeddedSetup", "cached_llama_server", "default_concurrency",
           "default_parallel", "find_default_gguf", "find_llama_server", "setup_embedded"]
