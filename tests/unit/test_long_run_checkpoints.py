"""A long run's checkpoints: killed late in a 200-turn run, it resumes to exactly the answers an
uninterrupted run gives, asking the model only for the turns that did not finish, whether its
checkpoint file is in this format or one an older rolegraph wrote (LangGraph's SQLite saver); and
the file stays a small multiple of what the run produced."""

from __future__ import annotations

import operator
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

import rolegraph as rg
from rolegraph import Runtime
from rolegraph.graphs import resume_run
from rolegraph.models import ChatRequest, FunctionModel
from rolegraph.prompts import PromptLibrary
from rolegraph.traces import ModelCall, TraceStore

ROOT = Path(__file__).resolve().parents[2]
TURNS = 200


class Talk(BaseModel):
    turns: int


class Said(BaseModel):
    turns: int = 0
    answers: Annotated[list[str], operator.add] = Field(default_factory=list)


class Talked(rg.RunResult):
    answers: list[str]


speaker = rg.Agent(name="speaker", prompt="long/speak", output=str)


SPOKEN: list[int] = []
"""The turns `speak` ran in this process."""


async def speak(state: Said, runtime: rg.Runtime) -> dict[str, Any]:
    SPOKEN.append(len(state.answers))
    return {"answers": [await speaker.run(runtime, turn=len(state.answers))]}


@rg.graph(input=Talk, state=Said, result=Talked, name="long_talk", agents=[speaker],
          recursion_limit=lambda input, options: input.turns + 10)
def long_talk(g: rg.StateGraph) -> None:
    g.add_node(speak)
    g.add_edge(rg.START, "speak")
    g.add_conditional_edges("speak", lambda s: rg.END if len(s.answers) >= s.turns else "speak", ["speak", rg.END])


def prompts(folder: Path) -> PromptLibrary:
    (folder / "long").mkdir(parents=True, exist_ok=True)
    (folder / "long" / "speak.j2").write_text("{% block user %}Turn {{ turn }}.{% endblock %}")
    return PromptLibrary(folder)


def answer(request: ChatRequest) -> str:
    turn = int(re.findall(r"Turn (\d+)", request.messages[-1].content or "")[-1])
    return f"answer {turn:04d} " + "x" * 489


KILLED = """
import asyncio, sys
from rolegraph import Runtime
from rolegraph.models import FunctionModel
from rolegraph.prompts import PromptLibrary
from tests.unit.test_long_run_checkpoints import Talk, answer, long_talk

if sys.argv[4] == "old":  # as an older rolegraph wrote it: LangGraph's SQLite saver
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
    import rolegraph.graphs._run as run

    async def old(conn, serde):
        return AsyncSqliteSaver(conn, serde=serde)
    run.open_saver = old

calls = 0
async def slow(request):
    global calls
    calls += 1
    print("call", flush=True)
    if calls == int(sys.argv[3]):
        await asyncio.sleep(60)  # killed here, mid-node
    return answer(request)

rt = Runtime.from_models({"default": FunctionModel(slow)}, traces=sys.argv[1], prompts=PromptLibrary(sys.argv[2]))
asyncio.run(long_talk.run(Talk(turns=int(sys.argv[5])), runtime=rt))
"""


@pytest.mark.parametrize("written_by", ["this format", "old"])
async def test_a_long_run_killed_late_resumes_to_exactly_the_uninterrupted_answers(tmp_path: Path,
                                                                                   written_by: str) -> None:
    runs, library = tmp_path / "runs", prompts(tmp_path / "prompts")
    # the killed process builds the same library from the same folder
    killed_at = 150
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(runs), str(tmp_path / "prompts"), str(killed_at),
                             written_by, str(TURNS)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for _ in range(killed_at):
        assert proc.stdout.readline() == "call\n"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = TraceStore(runs)
    (info,) = store.list()
    killed = store.load(info.run_id)
    assert info.status == "incomplete"
    done = [c for c in killed.of_kind(ModelCall) if c.response is not None]
    assert len(done) == killed_at - 1

    live = FunctionModel(answer)
    SPOKEN.clear()
    result = await resume_run(killed, store=store, live=Runtime.from_models({"default": live}, prompts=library),
                              graph=long_talk)
    assert result.answers == [answer_for(turn) for turn in range(TURNS)]
    assert len(live.requests) == TURNS - len(done)  # the cut-off turn and those after it, nothing twice
    assert list(range(len(done), TURNS)) == SPOKEN  # went on from the checkpoint: no finished turn ran again
    checkpoints = killed.dir / "checkpoints.sqlite"
    if written_by == "this format":  # a small multiple of the 100 KB produced (LangGraph's saver: ~10 MB)
        assert checkpoints.stat().st_size < 1_000_000


def answer_for(turn: int) -> str:
    return f"answer {turn:04d} " + "x" * 489
