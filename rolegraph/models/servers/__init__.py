"""Model servers rolegraph can start: the embedded CPU server (and, later, a vLLM launcher)."""

from rolegraph.models.servers.embedded import EmbeddedConfig, EmbeddedServer, find_default_gguf

__all__ = ["EmbeddedConfig", "EmbeddedServer", "find_default_gguf"]
