"""Peer measurement for eval_throughput.py: the same 1-call-per-case workload run through Inspect AI.

Runs in its own virtualenv (it imports nothing from rolegraph), against the LoadTestServer stub that
eval_throughput.py starts, and prints one JSON line with the wall and CPU seconds of the eval call:

    python3.11 -m venv /tmp/inspect-venv && /tmp/inspect-venv/bin/pip install inspect_ai==0.3.285 openai
    /tmp/inspect-venv/bin/python benchmarks/inspect_peer.py --url http://127.0.0.1:PORT/v1 --cases 1000 --concurrency 64

Each sample is one user message, a `generate()` solver (one chat completion, max_tokens 8) and an
`includes()` scorer, through Inspect's OpenAI provider on the Chat Completions API. Concurrency is
pinned: max_connections = max_samples = C (a static limit, which also turns off Inspect's adaptive
connection control), one task at a time, no retries at either Inspect's level or the openai SDK's.
The log goes to a temporary directory (Inspect's default .eval format with samples, plus its realtime
sample buffer, both on by default, so their cost is counted) and the display is off. An untimed
warm-up eval of --warmup samples runs first in the same process, as eval_throughput.py warms up too.
After timing, the log is checked: every sample present, none errored, each answer the stub's text,
the config as asked; any failure exits 1 (the JSON line is printed either way).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

PROMPT = "Answer briefly: which organelle makes ATP?"
STUB_REPLY = "The answer is (a)"  # LoadTestServer's default reply


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--cases", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--warmup", type=int, default=20, help="samples in an untimed eval run first (0: none)")
    p.add_argument("--expect", default=STUB_REPLY, help="the text the server answers every call with")
    a = p.parse_args()

    os.environ.setdefault("OPENAI_API_KEY", "x")

    import inspect_ai
    from inspect_ai import Task
    from inspect_ai import eval as inspect_eval
    from inspect_ai.dataset import MemoryDataset, Sample
    from inspect_ai.scorer import includes
    from inspect_ai.solver import generate

    n, c = a.cases, a.concurrency

    def task(samples: int) -> Task:
        dataset = MemoryDataset([Sample(id=i + 1, input=PROMPT, target=a.expect) for i in range(samples)])
        return Task(dataset=dataset, solver=generate(), scorer=includes(), name="throughput")

    def run(t: Task, log_dir: str) -> list:
        return inspect_eval(
            t,
            model="openai/stub",
            model_base_url=a.url,
            # Chat Completions, not the Responses API Inspect picks for a model name it does not know
            # ("stub" counts as a new frontier model); max_retries: the AsyncOpenAI client's own (SDK default 2)
            model_args={"responses_api": False, "max_retries": 0},
            display="none",
            log_dir=log_dir,
            max_samples=c,
            max_tasks=1,
            fail_on_error=False,  # let an errored sample show up in the check below, not abort the run
            retry_on_error=0,
            max_connections=c,
            max_retries=0,
            max_tokens=8,
        )

    if a.warmup:  # Inspect imports its provider, log recorder etc. lazily on the first eval(): keep that out
        with tempfile.TemporaryDirectory(prefix="inspect-peer-warmup-") as log_dir:
            warm = run(task(a.warmup), log_dir)
            assert warm[0].status == "success", warm[0].error

    timed = task(n)
    with tempfile.TemporaryDirectory(prefix="inspect-peer-") as log_dir:
        cpu0, t0 = time.process_time(), time.perf_counter()
        logs = run(timed, log_dir)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0

        # --- checks (not timed; inside the with: the returned log reads its samples back from the file) ---
        problems: list[str] = []
        if len(logs) != 1:
            problems.append(f"{len(logs)} logs")
        log = logs[0]
        samples = log.samples or []
        if log.status != "success":
            problems.append(f"status {log.status}: {log.error}")
        if len(samples) != n:
            problems.append(f"{len(samples)} samples of {n}")
        errored = [s.id for s in samples if s.error is not None]
        wrong = [s.id for s in samples if s.error is None and s.output.completion != a.expect]
        unscored = [s.id for s in samples if not s.scores or next(iter(s.scores.values())).value != "C"]
        if errored:
            first = next(s for s in samples if s.error is not None).error
            problems.append(f"{len(errored)} errored (first {errored[:5]}: {first.message[:400]})")
        if wrong:
            problems.append(f"{len(wrong)} with another answer (first {wrong[:5]})")
        if unscored:
            problems.append(f"{len(unscored)} not scored correct (first {unscored[:5]})")
        gen = log.eval.model_generate_config
        if gen.max_connections != c or gen.max_retries != 0 or gen.max_tokens != 8 or log.eval.config.max_samples != c:
            problems.append(f"config not as asked: {gen}, max_samples {log.eval.config.max_samples}")

    print(json.dumps({"cases": n, "concurrency": c, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                      "inspect": inspect_ai.__version__}), flush=True)
    if problems:
        print("inspect_peer: " + "; ".join(problems), file=sys.stderr)
        return 1
    print(f"inspect_peer: {len(samples)} samples answered {a.expect!r}, 0 errors", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
