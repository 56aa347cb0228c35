"""Resume: a run killed mid-way continues from its last checkpoint without repeating model
calls that completed, and ends where an uninterrupted run ends."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rolegraph import RolegraphError, Runtime
from rolegraph.graphs import refinebot, resume_run
from rolegraph.models import ChatRequest, FunctionModel
from rolegraph.traces import ModelCall, RunResumed, TraceStore
from tests.unit.test_refinebot import MCQ_A

ROOT = Path(__file__).resolve().parents[2]
OPTIONS = refinebot.RefineBotOptions(max_iters=3)
TOTAL_CALLS = 9  # (evaluate, reflect, rewrite, check) x 2, then a last evaluate


def answer(request: ChatRequest) -> object:
    schema = str(request.response_schema or "")
    if "question_stem" in schema:  # keeps the right answer at (b): the evaluator never fails
        return {"question_stem": "Which compartment in the image makes ATP?", "explanation": "x",
                "choices": ["Nucleus", "Mitochondrion", "Golgi", "Lysosome"], "correct_index": 1}
    if "is_equivalent" in schema:
        return {"is_equivalent": True, "explanation": "same"}
    last = request.messages[-1].content or ""
    return "I used the word ATP." if last.startswith("That is correct") else "The answer is (b)"


async def slow_answer(request: ChatRequest) -> object:
    print("call", flush=True)
    await asyncio.sleep(0.15)
    return answer(request)


SCRIPT = """
import asyncio, sys
from rolegraph import Runtime
from rolegraph.graphs import refinebot
from rolegraph.models import FunctionModel
from tests.unit.test_refinebot import MCQ_A
from tests.unit.test_resume import OPTIONS, slow_answer
rt = Runtime.from_models({"default": FunctionModel(slow_answer)}, traces=sys.argv[1])
asyncio.run(refinebot.run(MCQ_A, runtime=rt, options=OPTIONS))
"""


def kill_after(calls: int, runs: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(runs)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for _ in range(calls):
        assert proc.stdout.readline() == "call\n"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.parametrize("killed_at_call", [2, 5])
async def test_resume_continues_without_repeating_completed_calls(tmp_path: Path, killed_at_call: int,
                                                                   caplog: pytest.LogCaptureFixture,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from langgraph.checkpoint.serde import jsonplus

    # LangGraph logs each unregistered type once per process; start from none logged. Registered
    # explicitly, any other type is blocked: the resume below working shows the state types are known.
    monkeypatch.setattr(jsonplus, "_warned_unregistered_types", set())
    monkeypatch.setattr(jsonplus, "_warned_blocked_types", set())
    caplog.set_level("WARNING")
    runs = tmp_path / "runs"
    kill_after(killed_at_call, runs)
    store = TraceStore(runs)
    (info,) = store.list()
    assert info.status == "incomplete"
    killed = store.load(info.run_id)
    done = [c for c in killed.of_kind(ModelCall) if c.response is not None]
    assert len(done) >= killed_at_call - 1

    live = FunctionModel(answer)
    result = await resume_run(killed, store=store, live=Runtime.from_models({"default": live}))
    assert len(live.requests) == TOTAL_CALLS - len(done)  # nothing that completed was asked again
    serde_logs = [r.getMessage() for r in caplog.records if "deserializ" in r.getMessage().lower()]
    assert serde_logs == []  # neither "unregistered type" nor "blocked"

    uninterrupted = await refinebot.run(MCQ_A, runtime=Runtime.from_models({"default": FunctionModel(answer)}),
                                         options=OPTIONS)
    assert result.exit_code is uninterrupted.exit_code is refinebot.ExitCode.FAIL_ITERATIONS
    assert result.iterations == uninterrupted.iterations == 2
    assert result.run_id == info.run_id  # the same run, continued
    resumed = store.load(info.run_id)
    assert resumed.complete and resumed.of_kind(RunResumed)
    assert store.list()[0].status == "ok"
    with pytest.raises(RolegraphError, match="already finished"):
        await resume_run(resumed, store=store, live=Runtime.from_models({"default": live}))


async def test_checkpoints_are_in_wal_mode_and_merged_when_the_run_ends(tmp_path: Path) -> None:
    """WAL with synchronous=NORMAL: a commit survives the process being killed (see test above);
    a run that ends leaves one file, its log merged back."""
    import sqlite3

    from rolegraph.graphs._run import CHECKPOINTS

    rt = Runtime.from_models({"default": FunctionModel(answer)}, traces=TraceStore(tmp_path / "runs"))
    result = await refinebot.run(MCQ_A, runtime=rt, options=OPTIONS)
    db = Path(result.trace_dir or "") / CHECKPOINTS
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert not db.with_name(CHECKPOINTS + "-wal").exists() or db.with_name(CHECKPOINTS + "-wal").stat().st_size == 0
