"""Against the real embedded model server over HTTP (SmolLM2-135M on llama.cpp's llama-server)."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from rolegraph import Agent, Runtime
from rolegraph.envs.mcq import load_mcqs
from rolegraph.graphs import refinebot
from rolegraph.models import ChatRequest, Message, OpenAICompatModel, ToolSpec
from tests.conftest import SAMPLE_MCQS


class Cell(BaseModel):
    """A deliberately mixed schema: bounded int, enum, bool, bounded list, free string."""

    name: str
    count: int = Field(ge=0, le=3)
    kind: Literal["neuron", "glia", "other"]
    dividing: bool
    markers: list[str] = Field(min_length=1, max_length=3)


async def test_fifty_structured_calls_all_validate(embedded_runtime: Runtime) -> None:
    agent = Agent(name="describer", prompt="agents/describe_cell", output=Cell, max_attempts=1, max_tokens=160)
    seeds = range(50)
    results = []
    for seed in seeds:  # one at a time: the server serves one request at a time anyway
        results.append(await agent.invoke(embedded_runtime, seed=seed, temperature_hint=seed))
    assert all(isinstance(r.output, Cell) for r in results)
    assert all(len(r.attempts) == 1 for r in results)  # valid on the first try, every time
    assert len({r.output.model_dump_json() for r in results}) > 1  # seeds give different answers


async def test_tool_call_round_trips(embedded_runtime: Runtime) -> None:
    model = embedded_runtime.model("default")
    tool = ToolSpec(name="get_weather", description="Current weather for a city",
                    parameters={"type": "object", "properties": {"city": {"type": "string", "maxLength": 40}},
                                "required": ["city"]})
    first = ChatRequest(messages=(Message(role="user", content="What is the weather in Paris?"),),
                        tools=(tool,), tool_choice="get_weather", max_tokens=60)
    response = await model.chat(first)
    assert len(response.tool_calls) == 1
    call = response.tool_calls[0]
    assert call.name == "get_weather" and isinstance(call.parsed_arguments()["city"], str)
    follow = ChatRequest(messages=(*first.messages, response.as_message(),
                                   Message(role="tool", tool_call_id=call.id, content=json.dumps({"temp_c": 21}))),
                         max_tokens=40)
    answer = await model.chat(follow)
    assert answer.text.strip() and answer.usage.completion_tokens > 0


async def test_four_concurrent_requests_complete(embedded_runtime: Runtime) -> None:
    model = embedded_runtime.model("default")
    requests = [ChatRequest(messages=(Message(role="user", content=f"Name {n} colours."),), max_tokens=48, seed=n)
                for n in range(1, 5)]
    responses = await asyncio.gather(*(model.chat(r) for r in requests))
    assert all(r.text and r.usage.completion_tokens > 0 and r.latency_s > 0 for r in responses)


async def test_eight_concurrent_requests_are_decoded_in_parallel_slots(embedded_url: str) -> None:
    """Streamed, so the client sees when each request's tokens were produced: on a server that
    decodes one request at a time, no two of these windows overlap."""
    import openai

    client = openai.AsyncOpenAI(base_url=embedded_url, api_key="not-needed", max_retries=0)

    async def one(n: int) -> tuple[float, float, int]:
        stream = await client.chat.completions.create(
            model="smollm2-135m", messages=[{"role": "user", "content": f"Count from {n} to {n + 40}."}],
            max_tokens=40, temperature=0, stream=True)
        first = last = 0.0
        chunks = 0
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                last = asyncio.get_running_loop().time()
                first = first or last
                chunks += 1
        return first, last, chunks

    windows = await asyncio.gather(*(one(n) for n in range(8)))
    await client.close()
    assert all(chunks >= 5 for _, _, chunks in windows)  # every one completed with text
    overlapping = sum(1 for (a0, a1, _), (b0, b1, _) in itertools.combinations(windows, 2) if a0 < b1 and b0 < a1)
    assert overlapping >= 1


async def test_logprobs_come_back(embedded_runtime: Runtime) -> None:
    model = embedded_runtime.model("default")
    r = await model.chat(ChatRequest(messages=(Message(role="user", content="Hi"),), max_tokens=4, top_logprobs=2))
    assert r.logprobs and all(len(t.top) >= 1 for t in r.logprobs)


async def test_refinebot_end_to_end_on_three_sample_mcqs(embedded_runtime: Runtime) -> None:
    mcqs = list(itertools.islice(load_mcqs(SAMPLE_MCQS), 3))
    results = [r async for r in refinebot.run_many(mcqs, runtime=embedded_runtime, seeds=[0])]
    assert sorted(r.key for r in results) == sorted(m.key for m in mcqs)
    for r in results:
        assert r.exit_code in refinebot.ExitCode
        assert r.state is not None and r.state.evaluations  # the evaluator really answered
        if r.exit_code is refinebot.ExitCode.SUCCESS_REWRITE:
            assert r.final != r.original


def test_runtime_load_starts_and_stops_the_embedded_server(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    rt = Runtime.load(env={})
    model = rt.model("anyone")
    assert isinstance(model.inner, OpenAICompatModel)  # type: ignore[attr-defined]
    with rt:
        r = rt.run_sync(model.chat(ChatRequest(messages=(Message(role="user", content="Hello"),), max_tokens=8)))
        assert r.text and rt.embedded_server.running
    assert not rt.embedded_server.running


def test_cli_run_writes_results_and_the_exit_code_table(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "rolegraph", "run", "refinebot", "--input", str(SAMPLE_MCQS), "--limit", "2",
         "--seeds", "0", "--out", str(out)], capture_output=True, text=True, check=False, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and all(row["exit_code"] in refinebot.ExitCode.__members__ for row in rows)
    assert "SUCCESS_NO_CHANGE" in result.stdout and "FAIL_REWRITE" in result.stdout
