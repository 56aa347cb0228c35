"""`rolegraph ui` at scale: time to first byte of the run list over 100,000 runs (first page, deep
page, each filter, a sort on an unindexed column, a text search), and the weight of a trace page
(a RefineBot run, instant model) as served, against the self-contained page `trace view` writes;
and an evaluation's report page at 2,000 results: its first load (rendered), then 20 clients asking
for it at once, each request timed from sending it to the last byte (p50, p90, p99).

The server is `rolegraph ui` itself, in its own process, over real HTTP; each request is timed from
sending it to the first byte of the answer. Medians and ranges over alternating rounds.

    .venv/bin/python benchmarks/ui.py [--runs 100000] [--rounds 7] [--eval-results 2000 --clients 20 --each 10]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.table import Table
from tracing import MCQ_A, instant  # the same RefineBot case and instant model

from rolegraph import Runtime
from rolegraph.evals import EvalRecord, EvalStore, Score
from rolegraph.graphs import refinebot
from rolegraph.models import FunctionModel
from rolegraph.traces import Trace, TraceStore, write_view

GRAPHS = ("refinebot", "mcq", "spin", "videomind", "being0")


async def real_run(store: TraceStore) -> str:
    async with Runtime.from_models({"default": FunctionModel(instant)}, traces=store) as rt:
        result = await refinebot.run(MCQ_A, runtime=rt, options=refinebot.RefineBotOptions(max_iters=10))
    return result.run_id or ""


def synthetic(root: Path, n: int) -> None:
    """`n` rows in the store's index, as many graphs, statuses and inputs as a busy project has."""
    rows = []
    for i in range(n):
        status = "error" if i % 10 == 3 else "ok"
        summary = json.dumps({"question": f"case {i}: which structure in image {i % 977} is labelled?",
                              "choices": ["A", "B", "C", "D"]})
        rows.append((f"20260101-000000-synthetic-{i:06x}", GRAPHS[i % 5], 1.7e9 + i, 1.7e9 + i + (i % 17), status,
                     None, 1, 10 + i % 40, (i * 7919) % 90_000, summary, None))
    with sqlite3.connect(root / "index.sqlite") as con:
        con.executemany("INSERT INTO runs (run_id, graph, started, finished, status, parent, pid, model_calls, tokens, "
                        "summary, pair) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)


def evaluation(folder: Path, n: int) -> None:
    """An evaluation of `n` results (a tenth of them errors), as `rolegraph eval` leaves it."""
    store = EvalStore(folder / "results.sqlite")
    store.set_meta(benchmark="mcq", created=1.7e9, total=n, config={"model": "synthetic"})
    writer = store.writer()
    for i in range(n):
        ok = i % 10 != 3
        writer.put(EvalRecord(case_id=f"case-{i:05d}", repeat=0, status="ok" if ok else "error",
                              error=None if ok else "ModelError: the server answered 503", category=f"organelle-{i % 7}",
                              scores={"accuracy": Score(value=float(i % 3 != 0))} if ok else {},
                              output={"answer": "(b)", "rationale": f"case {i}: the labelled structure is a ribosome"},
                              target="(b)", run_id=f"20260101-000000-synthetic-{i:06x}", latency_s=0.4 + i % 13 / 10,
                              prompt_tokens=300 + i % 50, completion_tokens=40 + i % 20, finished_at=1.7e9 + i))
    writer.close()


def load(port: int, path: str, clients: int, each: int) -> list[float]:
    """Seconds per request, from sending it to the last byte, for `clients` clients that ask for
    `path` `each` times one after the other, all at once (one kept-alive connection each)."""
    def client(_: int) -> list[float]:
        con = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        took = []
        for _ in range(each):
            t = time.perf_counter()
            con.request("GET", path)
            reply = con.getresponse()
            reply.read()
            took.append(time.perf_counter() - t)
            if reply.status != 200:
                raise SystemExit(f"{path}: HTTP {reply.status}")
        con.close()
        return took

    with ThreadPoolExecutor(clients) as pool:
        return [t for times in pool.map(client, range(clients)) for t in times]


def ttfb(port: int, path: str) -> tuple[float, int]:
    """Seconds from sending the request to the first byte of the answer, and the body's size."""
    con = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    con.connect()
    t = time.perf_counter()
    con.request("GET", path)
    reply = con.getresponse()  # returns once the status line has arrived
    first = time.perf_counter() - t
    body = reply.read()
    con.close()
    if reply.status != 200:
        raise SystemExit(f"{path}: HTTP {reply.status}")
    return first, len(body)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--eval-results", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--each", type=int, default=10, help="requests per client for the report page")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = TraceStore(root / "runs")
        run_id = asyncio.run(real_run(store))
        t = time.perf_counter()
        synthetic(store.root, args.runs - 1)
        print(f"index of {args.runs:,} runs written in {time.perf_counter() - t:.1f} s "
              f"({(store.root / 'index.sqlite').stat().st_size / 2**20:.1f} MiB)")
        evaluation(root / "evals" / "report", args.eval_results)
        server = subprocess.Popen([sys.executable, "-m", "rolegraph", "ui", "--port", "0", "--runs", str(store.root),
                                   "--evals", str(root / "evals")], stdout=subprocess.PIPE, text=True, cwd=root,
                                  env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
        try:
            line = server.stdout.readline() if server.stdout else ""
            found = re.search(r":(\d+)/", line)
            if not found:
                raise SystemExit(f"the ui did not start: {line!r}")
            port = int(found.group(1))
            first_load = load(port, "/evals/report", 1, 1)[0]  # rendered: nobody has asked for it yet
            report_size = ttfb(port, "/evals/report")[1]
            probes = {
                "runs list, first page (50)": "/runs",
                "page 1,000 of 2,000": "/runs?page=1000",
                "filter: graph": "/runs?graph=spin",
                "filter: status error": "/runs?status=error",
                "filter: incomplete": "/runs?status=incomplete",
                "sort: tokens, ascending": "/runs?sort=tokens&order=asc",
                "sort: duration, last page": "/runs?sort=duration&page=2000",
                "text search (LIKE over inputs)": "/runs?q=image%20976",
                "graph + status + text": "/runs?graph=mcq&status=ok&q=case%209",
                "200 per page": "/runs?per=200",
                "trace page (RefineBot, 10 iterations)": f"/runs/{run_id}",
            }
            for path in probes.values():  # warm the server's caches once, as a user's first clicks do
                ttfb(port, path)
            times: dict[str, list[float]] = {k: [] for k in probes}
            sizes: dict[str, int] = {}
            for r in range(args.rounds):
                order = list(probes.items())
                order = order[r % len(order):] + order[: r % len(order)]  # rotate: no probe always goes first
                for name, path in order:
                    first, size = ttfb(port, path)
                    times[name].append(first)
                    sizes[name] = size
            assets = {name: ttfb(port, f"/assets/{name}")[1] for name in ("view.css", "mermaid.min.js")}
            report = load(port, "/evals/report", args.clients, args.each)
        finally:
            server.terminate()
            server.wait(10)
        standalone = write_view(Trace.load(store.root / run_id), root / "standalone.html").stat().st_size
        n_calls = sum(1 for ln in (store.root / run_id / "events.jsonl").open() if '"kind":"model_call"' in ln)

    console = Console()
    table = Table(title=f"rolegraph ui over {args.runs:,} runs: time to first byte, median (range) of "
                        f"{args.rounds} alternating rounds", title_justify="left")
    for col in ("request", "ms to first byte", "range", "page KB"):
        table.add_column(col, justify="left" if col == "request" else "right")
    for name, values in times.items():
        table.add_row(name, f"{1000 * statistics.median(values):.1f}", f"{1000 * min(values):.1f}-{1000 * max(values):.1f}",
                      f"{sizes[name] / 1024:.1f}")
    console.print(table)
    weight = Table(title=f"trace page weight (RefineBot, {n_calls} model calls)", title_justify="left")
    weight.add_column("what")
    weight.add_column("KB", justify="right")
    html = sizes["trace page (RefineBot, 10 iterations)"]
    weight.add_row("served HTML", f"{html / 1024:.1f}")
    weight.add_row("+ stylesheet (cached after the first page)", f"{assets['view.css'] / 1024:.1f}")
    weight.add_row("+ mermaid script (cached after the first page)", f"{assets['mermaid.min.js'] / 1024:.1f}")
    weight.add_row("first visit in all", f"{(html + sum(assets.values())) / 1024:.1f}")
    weight.add_row("self-contained page (`rolegraph trace view`)", f"{standalone / 1024:.1f}")
    console.print(weight)
    cuts = statistics.quantiles(report, n=100, method="inclusive")
    busy = Table(title=f"evaluation report page, {args.eval_results:,} results ({report_size / 1024:.0f} KB): "
                       f"{args.clients} clients at once, {len(report)} requests, ms to the last byte",
                 title_justify="left")
    for col in ("first load (rendered)", "p50", "p90", "p99", "max"):
        busy.add_column(col, justify="right")
    busy.add_row(*(f"{1000 * v:.1f}" for v in (first_load, cuts[49], cuts[89], cuts[98], max(report))))
    console.print(busy)


if __name__ == "__main__":
    main()
