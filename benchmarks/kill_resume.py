"""Kill and resume: an MCQ evaluation (N questions x R repeats) against a local OpenAI-compatible
stub, killed with SIGKILL at K random moments and resumed after each (`rolegraph eval mcq --resume
DIR`), then run to the end. Checks that exactly N x R results exist (none lost, none duplicated) and
measures the work redone: model requests the server answered beyond those of the same evaluation
run once without kills, and trace directories left incomplete or not referenced by a result.

    .venv/bin/python benchmarks/kill_resume.py [--cases 300] [--repeats 2] [--kills 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rolegraph.evals import EvalStore
from rolegraph.models.servers.loadtest import LoadTestServer
from rolegraph.traces import TraceStore

CONFIG = """
[endpoints.stub]
base_url = "{url}"
dialect = "openai"

[roles.default]
endpoint = "stub"
model = "stub"

[traces]
dir = "{traces}"
"""


def questions(path: Path, n: int) -> Path:
    with path.open("w") as fh:
        for i in range(n):
            fh.write(json.dumps({"key_question": f"q{i:04d}", "question": f"Which stain marks structure {i}?",
                                 "choices": ["DAPI", "Phalloidin", "MitoTracker", "Calcein"],
                                 "correct_index": i % 4}) + "\n")
    return path


async def evaluation(work: Path, data: Path, url: str, *, repeats: int, kill: tuple[str, float] | None) -> int | None:
    """One `rolegraph eval mcq --resume` process. `kill`: ("time", seconds) kills it that long after
    its start (start-up, the first calls), ("results", n) once it has written n new results."""
    config = work / "rolegraph.toml"
    config.write_text(CONFIG.format(url=url, traces=work / "runs"))
    before = count(work)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rolegraph", "eval", "mcq", "--data", str(data), "--repeats", str(repeats),
        "--concurrency", "8", "--resume", str(work / "suite"), "--config", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, cwd=work)
    if kill is None:
        return await proc.wait()
    started = time.perf_counter()
    while proc.returncode is None:
        elapsed = time.perf_counter() - started
        if (kill[0] == "time" and elapsed >= kill[1]) or (kill[0] == "results" and count(work) - before >= kill[1]):
            os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()
            return None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(proc.wait()), 0.02)
    return proc.returncode


def count(work: Path) -> int:
    db = work / "suite" / "mcq-question" / "results.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return int(con.execute("SELECT COUNT(*) FROM results").fetchone()[0])
    except sqlite3.OperationalError:  # the table is not made yet
        return 0


def tally(work: Path) -> dict[str, int]:
    db = work / "suite" / "mcq-question" / "results.sqlite"
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT case_id, repeat FROM results").fetchall()
    referenced = {r.run_id for r in EvalStore(db).records()}
    infos = TraceStore(work / "runs").list(limit=10**9)
    return {"results": len(rows), "distinct": len(set(rows)), "traces": len(infos),
            "incomplete": sum(i.status in ("incomplete", "running") for i in infos),
            "unreferenced": sum(i.status not in ("incomplete", "running") and i.run_id not in referenced
                                for i in infos)}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="rolegraph-kill-"))
    data = questions(root / "mcqs.jsonl", args.cases)
    rows = []
    async with LoadTestServer(delay_s=0.05, reply="Thinking it over. The answer is (b)") as server:
        clean = root / "clean"
        clean.mkdir()
        started = time.perf_counter()
        await evaluation(clean, data, server.base_url, repeats=args.repeats, kill=None)
        clean_s, baseline = time.perf_counter() - started, server.requests
        rows.append(("no kills", baseline, 0, tally(clean), clean_s))

        killed = root / "killed"
        killed.mkdir()
        server.requests = 0
        started = time.perf_counter()
        finished_early = 0
        for _ in range(args.kills):
            # a quarter in start-up and the first calls, the rest while results are being written
            moment = ("time", rng.uniform(0.2, 3.0)) if rng.random() < 0.25 else ("results", rng.randint(1, 30))
            rc = await evaluation(killed, data, server.base_url, repeats=args.repeats, kill=moment)
            finished_early += rc is not None
        await evaluation(killed, data, server.base_url, repeats=args.repeats, kill=None)
        rows.append((f"{args.kills} SIGKILLs, resumed", server.requests, finished_early, tally(killed),
                     time.perf_counter() - started))

    table = Table(title=f"kill and resume: {args.cases} MCQs x {args.repeats} repeats, 50 ms stub, concurrency 8")
    for col in ("run", "results", "distinct pairs", "model requests", "redone", "trace dirs", "incomplete",
                "unreferenced", "wall s"):
        table.add_column(col, justify="right")
    for name, requests, _, t, wall in rows:
        table.add_row(name, str(t["results"]), str(t["distinct"]), str(requests),
                      f"{requests - baseline} ({(requests - baseline) / baseline:.1%})", str(t["traces"]),
                      str(t["incomplete"]), str(t["unreferenced"]), f"{wall:.1f}")
    Console(width=150).print(table)
    if rows[1][2]:
        print(f"note: {rows[1][2]} of the killed processes had finished before their kill")
    expected = args.cases * args.repeats
    ok = all(r[3]["results"] == r[3]["distinct"] == expected for r in rows)
    print("exactly one result per pair in both:", ok)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    asyncio.run(main())
