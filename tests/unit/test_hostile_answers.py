"""Whatever a model answers (lone surrogates, JSON nested 2,000 deep, integers over Python's
4,300-digit limit, NaN) an agent with a pydantic output ends with a valid output or
AgentOutputError, never another exception, and the run's trace still loads."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import rolegraph as rg
from rolegraph import Agent, AgentOutputError, Runtime
from rolegraph.envs.being0 import COMPOSITES, PRIMITIVES, ActionError, parse_action
from rolegraph.envs.being0._skills import LIMITS
from rolegraph.models import ChatRequest, ChatResponse, FunctionModel, Message, decode_json
from rolegraph.prompts import PromptLibrary
from rolegraph.traces import ModelCall, Trace, TraceStore


class Out(BaseModel):
    answer: Any = None
    note: str = ""
    n: int = 0


hostile = Agent(name="hostile", prompt="hostile/ask", output=Out, max_attempts=2)


class Question(BaseModel):
    q: str
    asks: int = 1


class State(BaseModel):
    q: str
    asks: int = 1
    accepted: int = 0
    refused: int = 0


async def ask(state: State, runtime: rg.Runtime) -> dict[str, Any]:
    accepted = refused = 0
    for i in range(state.asks):  # several answers per run: one trace holds them all
        try:
            await hostile.run(runtime, q=f"{state.q} {i}")
            accepted += 1
        except AgentOutputError:
            refused += 1
    return {"accepted": accepted, "refused": refused}


@rg.graph(input=Question, state=State, name="hostile_answers", recorded_failures=(AgentOutputError,), agents=[hostile])
def hostile_graph(g: rg.StateGraph) -> None:
    g.add_node(ask)
    g.add_edge(rg.START, "ask")
    g.add_edge("ask", rg.END)


def answering(answers: list[str]) -> FunctionModel:
    """Answers ask number i (both attempts) with answers[i]."""
    return FunctionModel(lambda request: answers[int((request.messages[0].content or "").split()[-1])])


SURROGATE = st.integers(0xD800, 0xDFFF).map(chr)
CHARS = st.one_of(st.characters(), SURROGATE, st.sampled_from('[]{}",:0123456789eE.-\\'))
DEEP = st.integers(900, 2500).map(lambda n: "[" * n + "]" * n)
DEEP_OBJ = st.integers(900, 2500).map(lambda n: '{"a":' * n + "1" + "}" * n)
HUGE_INT = st.integers(4301, 6000).map(lambda n: "9" * n)
CONSTANT = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e400", "1E+99999"])
JSON_ESCAPED = st.text(CHARS, max_size=30).map(json.dumps)  # "\ud83d" escapes
VALUE = st.one_of(DEEP, DEEP_OBJ, HUGE_INT, CONSTANT, JSON_ESCAPED, st.text(CHARS, max_size=40))
ANSWER = st.one_of(
    st.text(CHARS, max_size=200),
    VALUE,
    st.builds(lambda v: f'{{"answer": {v}}}', VALUE),
    st.builds(lambda v: f'{{"note": {v}, "n": 1}}', VALUE),
    st.builds(lambda v: f'{{"n": {v}}}', VALUE),
    st.builds(lambda v: f"```json\n{{\"answer\": {v}}}\n```", VALUE),
)


@pytest.fixture
def library(tmp_path: Path) -> PromptLibrary:
    (tmp_path / "prompts" / "hostile").mkdir(parents=True)
    (tmp_path / "prompts" / "hostile" / "ask.j2").write_text("Answer {{ q }}")
    return PromptLibrary(tmp_path / "prompts")


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answers=st.lists(ANSWER, min_size=1, max_size=7), question=st.text(CHARS, max_size=10))
def test_any_answer_ends_valid_or_agent_output_error_and_trace_loads(
        tmp_path: Path, library: PromptLibrary, answers: list[str], question: str) -> None:
    store = TraceStore(tmp_path / "runs")
    rt = Runtime.from_models({"default": answering(answers)}, prompts=library, traces=store)
    result = rt.run_sync(hostile_graph.run(Question(q=question, asks=len(answers)), runtime=rt))
    assert result.error is None
    assert result.state["accepted"] + result.state["refused"] == len(answers)
    trace = Trace.load(tmp_path / "runs" / (result.run_id or ""))
    assert trace.complete and not trace.dropped_tail
    calls = trace.of_kind(ModelCall)
    assert len(calls) >= len(answers) and all(c.response is not None for c in calls)  # answers recorded


@pytest.mark.parametrize("text", [
    "[" * 2000 + "]" * 2000,
    '{"answer": ' + "[" * 1000 + "]" * 1000 + "}",
    '{"n": ' + "9" * 5000 + "}",
    '{"answer": NaN}',
    '{"answer": 1e999}',
])
def test_hostile_json_is_a_decode_error_with_a_reason(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as info:
        decode_json(text)
    assert str(info.value) and "position" not in str(info.value)


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    assert decode_json(json.dumps({"a": "[" * 5000})) == {"a": "[" * 5000}


def test_lone_surrogates_become_replacement_characters_at_the_model_boundary() -> None:
    assert decode_json('{"a": "x\\ud83d y"}') == {"a": "x\ufffd y"}
    assert decode_json('"\\ud83d\\ude00"') == "\U0001f600"  # a pair is one character
    assert ChatResponse(text="hi \ud83d").text == "hi \ufffd"
    assert Message(role="user", content="\udc00").content == "\ufffd"
    ChatRequest(messages=(Message(role="user", content="\ud83d"),)).fingerprint  # noqa: B018 - hashable


def test_trace_writer_records_a_lone_surrogate_it_is_given(tmp_path: Path, library: PromptLibrary) -> None:
    store = TraceStore(tmp_path / "runs")
    rt = Runtime.from_models({"default": FunctionModel(lambda request: '{"note": "ok"}')}, prompts=library,
                             traces=store)
    result = rt.run_sync(hostile_graph.run(Question(q="x\ud83d"), runtime=rt))
    assert result.error is None and result.state["accepted"] == 1
    trace = store.load(result.run_id or "")
    assert trace.complete and trace.started.manifest.input["q"] == "x\ufffd"


# --- the Being-0 action parser: ActionError or a valid action, nothing evaluated ------------------

NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), HUGE_INT, CONSTANT,
                   st.integers().map(str), st.sampled_from(["1e999", "-1e999", "1_000", "0x10", "1j", "1+2j"]))
ARG = st.one_of(NUMBER, JSON_ESCAPED, st.text(CHARS, max_size=20), DEEP,
                st.integers(100, 300).map(lambda n: "(" * n + "1" + ")" * n),
                st.sampled_from(["{[]: 1}", "[1, 2]", "__import__('os')", "True", "None", "x", "'\x00'"]))
SKILL = st.sampled_from([*PRIMITIVES, *COMPOSITES, "exec", "print"])
ACTION = st.one_of(
    st.text(CHARS, max_size=300),
    st.builds(lambda n, k, v: f"{n}({k}={v})", SKILL, st.sampled_from(["distance", "angle", "target_name", "x"]), ARG),
    st.builds(lambda n, v: f"`{n}({v})`", SKILL, ARG),
    st.integers(1001, 20000).map(lambda n: "go_straight(distance=" + "1" * n + ")"),
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(text=ACTION, library=st.sampled_from([PRIMITIVES, COMPOSITES]))
def test_parse_action_raises_only_action_error_or_returns_a_valid_action(
        text: str, library: dict[str, dict[str, type]]) -> None:
    try:
        action = parse_action(text, library)
    except ActionError as exc:
        assert str(exc)
        return
    params = library[action.name]
    assert set(action.args) == set(params)
    for key, value in action.args.items():
        assert isinstance(value, params[key])
        if isinstance(value, float):
            assert math.isfinite(value) and abs(value) <= LIMITS.get(key, 1e6)


@pytest.mark.parametrize("text", ["go_straight(distance=1e999)", "turn_left(angle=-1e999)",
                                  "go_straight(distance=1e308)", f"go_straight(distance={'9' * 400})",
                                  'search_for(target_name="\ud83d")', "go_straight(distance=" + "1" * 5000 + ")"])
def test_parse_action_refuses_what_it_cannot_act_on(text: str) -> None:
    with pytest.raises(ActionError):
        parse_action(text, {**PRIMITIVES, **COMPOSITES})


# --- a RefineBot batch goes on past a question whose model call fails for good -------------------

async def test_refinebot_batch_records_a_case_that_fails_for_good_and_completes_the_others() -> None:
    from rolegraph.envs.mcq import MCQ
    from rolegraph.errors import ModelHTTPError
    from rolegraph.graphs import refinebot

    def evaluator(request: ChatRequest) -> str:
        text = " ".join(m.content or "" for m in request.messages)
        if "poison" in text:
            raise ModelHTTPError("http://model/v1", 400, "maximum context length exceeded")
        if "deep" in text:
            return "[" * 2000 + "]" * 2000
        return "It must be where DNA lives. The answer is (a)"

    mcqs = [MCQ(key=k, question=f"Which organelle makes ATP ({k})?", choices=["Nucleus", "Mitochondrion", "Golgi"],
                correct_index=1) for k in ("q1", "poison", "q3", "deep")]
    rt = Runtime.from_models({"default": FunctionModel(evaluator)})
    results = {r.key: r async for r in refinebot.run_many(mcqs, runtime=rt, seeds=[0], concurrency=2)}
    assert set(results) == {"q1", "poison", "q3", "deep"}
    assert results["poison"].exit_code is refinebot.ExitCode.ERROR
    assert "HTTP 400" in (results["poison"].error or "")
    assert all(results[k].exit_code is refinebot.ExitCode.SUCCESS_NO_CHANGE for k in ("q1", "q3", "deep"))
    await rt.aclose()


def test_an_evaluation_in_which_every_case_errored_says_so_and_exits_non_zero(tmp_path: Path) -> None:
    """`rolegraph eval spin.tictactoe` against a model server that is up but refuses every request
    (HTTP 400): the summary and report are written, then the command names the failure, rc 1."""
    import subprocess
    import sys
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Refuse(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = b'{"error": {"message": "maximum context length exceeded"}}'
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            body = b'{"data": [{"id": "m", "owned_by": "openai"}]}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = HTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        (tmp_path / "rolegraph.toml").write_text(
            f'[endpoints.stub]\nbase_url = "http://127.0.0.1:{server.server_port}/v1"\ndialect = "openai"\nretries = 1\n'
            '[roles.default]\nendpoint = "stub"\nmodel = "m"\n')
        done = subprocess.run([sys.executable, "-m", "rolegraph", "eval", "spin.tictactoe", "--games", "2",
                               "--opponent", "random", "--out", str(tmp_path / "evals")], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300, check=False)
    finally:
        server.shutdown()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "every one of the 2 results errored" in done.stderr
    assert list((tmp_path / "evals").glob("*/summary.json"))  # the summary is still written


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.text(max_size=400),
    st.builds(lambda r, a: json.dumps({"reason": r, "action": a}), st.text(max_size=80), st.text(max_size=12)),
    st.builds(lambda d: "[" * d + "]" * d, st.integers(min_value=100, max_value=3000)),
    st.sampled_from(['{"reason": "\\ud83d", "action": "a1"}', '{"reason": 1e999, "action": "b2"}',
                     '{"reason": "x", "action": ' + "9" * 5000 + "}", '{"action": NaN}', '{"reason": []}']),
))
def test_the_spin_move_parser_returns_a_legal_move_or_asks_again(text: str) -> None:
    """Any answer to a SPIN-Bench player is a legal move, or OutputInvalid (the "Illegal move,
    try again" feedback), for every game's move notation."""
    from rolegraph.agents import OutputInvalid
    from rolegraph.envs.spin import make_env
    from rolegraph.graphs.spin import player_agent

    for game in ("tictactoe", "connect4"):
        env = make_env(game)
        parse = player_agent(env, "free", 10, "player").output
        try:
            move = parse(text)  # type: ignore[operator]
        except OutputInvalid:
            continue
        assert move.action in env.legal_moves()
