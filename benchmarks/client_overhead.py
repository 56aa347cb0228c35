"""Client overhead against the embedded server: our OpenAICompatModel vs a raw `openai` client.

Both send the same tiny request (max_tokens=1, temperature 0) to the same embedded
llama-server, alternating, so server time cancels out; the table shows the medians, their ratio, and
generation throughput (tokens/s) for a longer answer.

    .venv/bin/python benchmarks/client_overhead.py [--calls 40]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import openai
from rich.console import Console
from rich.table import Table

from rolegraph.models import ChatRequest, Message, OpenAICompatModel
from rolegraph.models.servers import EmbeddedServer

PROMPT = "Reply with one word."


async def main(calls: int) -> None:
    server = EmbeddedServer()
    url = server.ensure_started()
    ours = OpenAICompatModel(url, server.config.alias, dialect="llama_server")
    raw = openai.AsyncOpenAI(base_url=url, api_key="x", http_client=openai.DefaultAioHttpClient(), max_retries=0)
    request = ChatRequest(messages=(Message(role="user", content=PROMPT),), max_tokens=1, temperature=0.0)
    try:
        for _ in range(3):  # warm both paths and the server's prompt cache
            await ours.chat(request)
            await raw.chat.completions.create(model=server.config.alias, messages=[{"role": "user", "content": PROMPT}],
                                              max_tokens=1, temperature=0.0)
        ours_s, raw_s = [], []
        for _ in range(calls):
            t = time.perf_counter()
            await ours.chat(request)
            ours_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            await raw.chat.completions.create(model=server.config.alias, messages=[{"role": "user", "content": PROMPT}],
                                              max_tokens=1, temperature=0.0)
            raw_s.append(time.perf_counter() - t)
        long = ChatRequest(messages=(Message(role="user", content="Write a paragraph about cell biology."),),
                           max_tokens=200, temperature=0.0)
        tokens, seconds = 0, 0.0
        for _ in range(3):
            r = await ours.chat(long)
            tokens += r.usage.completion_tokens
            seconds += r.latency_s
    finally:
        await ours.aclose()
        await raw.close()
        server.stop()

    med_ours, med_raw = statistics.median(ours_s), statistics.median(raw_s)
    table = Table(title=f"client overhead, {calls} calls each (embedded SmolLM2-135M, max_tokens=1)")
    for col in ("client", "median ms", "p90 ms"):
        table.add_column(col, justify="right" if col != "client" else "left")
    for name, xs in (("raw openai (aiohttp)", raw_s), ("rolegraph OpenAICompatModel", ours_s)):
        table.add_row(name, f"{statistics.median(xs) * 1000:.2f}", f"{sorted(xs)[int(0.9 * len(xs))] * 1000:.2f}")
    Console().print(table)
    print(f"ratio rolegraph/raw (median): {med_ours / med_raw:.3f}")
    print(f"extra per call: {(med_ours - med_raw) * 1000:+.2f} ms")
    print(f"generation: {tokens} tokens in {seconds:.2f} s = {tokens / seconds:.1f} tokens/s (one stream)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=40)
    asyncio.run(main(parser.parse_args().calls))
