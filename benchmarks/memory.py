"""Memory costs: embedding throughput of the packaged MiniLM, vector recall latency as the memory
grows (1k, 10k, 100k items), and bytes on disk per item (SQLite rows plus the persisted index).

Large memories are filled with real embeddings of a few hundred sentences plus small noise, so the
index holds N distinct vectors without embedding N sentences first.

    .venv/bin/python benchmarks/memory.py [--sizes 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from rolegraph import Runtime
from rolegraph.memory import MemoryItem, MemoryStore

SUBJECTS = ["the red player", "Austria", "the grounder", "a mitochondrion", "the deck", "the kitchen robot"]
VERBS = ["moves to", "promises support in", "hints at", "is seen near", "takes", "discards"]
OBJECTS = ["Galicia", "the blue five", "the coffee machine", "the nucleus", "the table", "Warsaw", "the red card"]


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} on turn {i}" for i in range(n)]


async def main(sizes: list[int]) -> None:
    from llama_index.core.schema import TextNode

    from rolegraph.memory import embedding_model

    embed = embedding_model()
    texts = sentences(512)
    embed.get_text_embedding_batch(texts[:16])  # warm up
    t = time.perf_counter()
    base = np.array(embed.get_text_embedding_batch(texts))
    per_s = len(texts) / (time.perf_counter() - t)

    console = Console()
    table = Table(title="vector memory (all-MiniLM-L6-v2, 384 dims, llama-index simple vector store)",
                  title_justify="left")
    for col in ("items", "fill s", "recall median ms", "recall p90 ms"):
        table.add_column(col, justify="right")
    rng = np.random.default_rng(0)
    for n in sizes:
        rt = Runtime.from_models({})
        mem = rt.memory(f"bench{n}", kind="vector")
        t = time.perf_counter()
        nodes = []
        for i in range(n):
            v = base[i % len(base)] + rng.normal(0, 0.01, base.shape[1])
            unit = (v / np.linalg.norm(v)).tolist()
            nodes.append(TextNode(text=f"{texts[i % len(texts)]} #{i}", id_=f"i{i}", embedding=unit))
            mem.inner._by_id[f"i{i}"] = MemoryItem(id=f"i{i}", content=nodes[-1].text)
            mem.inner._items.append(mem.inner._by_id[f"i{i}"])
        mem.inner.index.insert_nodes(nodes)
        fill = time.perf_counter() - t
        times = []
        for q in sentences(20, seed=1):
            t = time.perf_counter()
            await mem.recall(q, k=5)
            times.append((time.perf_counter() - t) * 1000)
        table.add_row(f"{n:,}", f"{fill:.1f}", f"{statistics.median(times):.1f}", f"{sorted(times)[17]:.1f}")
    console.print(table)

    with tempfile.TemporaryDirectory() as tmp:
        store = MemoryStore(Path(tmp) / "memory.sqlite")
        rt = Runtime.from_models({}, memory_store=store)
        mem = rt.memory("disk", kind="vector")
        items = sentences(300, seed=2)
        for s in items:
            await mem.add(MemoryItem(role="p1", content=s))
        rt.close()  # writes the index
        store.close()
        size = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file())
    other = Table(title="embedding and disk", title_justify="left")
    other.add_column("measure")
    other.add_column("value", justify="right")
    other.add_row("embeddings per second (batch of 512, 2 CPU threads)", f"{per_s:,.0f}")
    other.add_row("bytes on disk per vector item (SQLite + persisted index, 300 items)", f"{size / len(items):,.0f}")
    console.print(other)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="1000,10000,100000")
    asyncio.run(main([int(x) for x in p.parse_args().sizes.split(",")]))
