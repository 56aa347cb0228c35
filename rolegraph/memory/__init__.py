"""Memory: what an agent remembers within a run and across runs — buffers, rolling summaries,
episodic notes and a vector memory — persisted to disk and recorded in traces."""

from __future__ import annotations

from typing import Any

from rolegraph.errors import UserError
from rolegraph.memory._base import ByteEstimate, LlamaTokens, Memory, MemoryItem, MemoryStore, TokenCounter, fit
from rolegraph.memory._kinds import BufferMemory, NotesMemory, SummaryMemory
from rolegraph.memory._recorded import MemoryFeed, RecordedMemory
from rolegraph.memory._vector import embedding_model

KINDS = ("buffer", "notes", "summary", "vector")


def make_memory(kind: str, name: str, scope: str = "", **options: Any) -> Memory:
    """A new memory of `kind`; a summary memory needs `summarizer=`."""
    if kind == "buffer":
        return BufferMemory(name, scope, **options)
    if kind == "notes":
        return NotesMemory(name, scope, **options)
    if kind == "summary":
        return SummaryMemory(name, scope, **options)
    if kind == "vector":
        from rolegraph.memory._vector import VectorMemory

        return VectorMemory(name, scope, **options)
    raise UserError(f"unknown memory kind '{kind}'; known: {', '.join(KINDS)}")


__all__ = [
    "KINDS",
    "BufferMemory",
    "ByteEstimate",
    "LlamaTokens",
    "Memory",
    "MemoryFeed",
    "MemoryItem",
    "MemoryStore",
    "NotesMemory",
    "RecordedMemory",
    "SummaryMemory",
    "TokenCounter",
    "embedding_model",
    "fit",
    "make_memory",
]
