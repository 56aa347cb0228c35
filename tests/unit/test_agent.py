"""Agents: retry with feedback, failure carrying every attempt, prompts rendered strictly."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from rolegraph import Agent, AgentOutputError, OutputInvalid, Runtime, ScriptError
from rolegraph.models import ChatRequest, ChatResponse, FunctionModel, ScriptedModel
from rolegraph.prompts import PromptError, PromptLibrary


class Verdict(BaseModel):
    label: str
    score: int = Field(ge=0, le=3)


def write_prompt(tmp_path: Path, name: str, text: str) -> PromptLibrary:
    path = tmp_path / f"{name}.j2"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return PromptLibrary(tmp_path)


@pytest.fixture
def prompts(tmp_path: Path) -> PromptLibrary:
    return write_prompt(tmp_path, "t/judge",
                        "{% block system %}You judge.{% endblock %}{% block user %}Judge: {{ item }}{% endblock %}")


async def test_an_answer_cut_off_at_the_token_limit_is_asked_for_again_shorter(prompts: PromptLibrary) -> None:
    cut = ChatResponse(text='{"label": "a very long lab', finish_reason="length")
    whole = ChatResponse(text='{"label": "ok", "score": 1}', finish_reason="stop")
    model = ScriptedModel([cut, cut.model_copy(update={"finish_reason": "stop"}), whole])
    rt = Runtime.from_models({"judge": model}, prompts=prompts)
    agent = Agent(name="judge", prompt="t/judge", output=Verdict, max_tokens=48)
    result = await agent.invoke(rt, item="a cat")
    assert result.output == Verdict(label="ok", score=1)
    first, second = (a.error or "" for a in result.attempts[:2])
    assert "not valid JSON" in first and "cut off at the length limit of 48 tokens" in first
    assert "not valid JSON" in second and "cut off" not in second  # the same text, but the model stopped by itself
    assert "cut off at the length limit of 48 tokens: give a shorter one" in (model.requests[1].messages[-1].content or "")
    await rt.aclose()


async def test_invalid_json_twice_then_valid(prompts: PromptLibrary) -> None:
    model = ScriptedModel(["{not json", {"label": "ok", "score": 9}, {"label": "ok", "score": 2}])
    rt = Runtime.from_models({"judge": model}, prompts=prompts)
    agent = Agent(name="judge", prompt="t/judge", output=Verdict)
    result = await agent.invoke(rt, item="a cat")
    assert result.output == Verdict(label="ok", score=2)
    assert [a.error is None for a in result.attempts] == [False, False, True]
    # the second request carries the bad answer and the error back to the model
    second = model.requests[1].messages
    assert [m.role for m in second] == ["system", "user", "assistant", "user"]
    assert second[2].content == "{not json"
    assert "not valid JSON" in (second[3].content or "")
    third = model.requests[2].messages[-1].content or ""
    assert "score" in third and "less than or equal to 3" in third
    # the schema travels with every request
    assert model.requests[0].response_schema == Verdict.model_json_schema()
    await rt.aclose()


async def test_always_invalid_raises_with_three_attempts(prompts: PromptLibrary) -> None:
    rt = Runtime.from_models({"judge": FunctionModel(lambda req: "nope")}, prompts=prompts)
    agent = Agent(name="judge", prompt="t/judge", output=Verdict)
    with pytest.raises(AgentOutputError) as info:
        await agent.run(rt, item="x")
    assert len(info.value.attempts) == 3
    assert all(a.text == "nope" and a.error for a in info.value.attempts)
    assert "judge" in str(info.value)


async def test_parser_function_asks_again(prompts: PromptLibrary) -> None:
    def yes_no(text: str) -> bool:
        if text.strip().lower() not in ("yes", "no"):
            raise OutputInvalid("answer yes or no")
        return text.strip().lower() == "yes"

    model = ScriptedModel(["maybe", "Yes"])
    rt = Runtime.from_models({"default": model}, prompts=prompts)
    assert await Agent(name="judge", prompt="t/judge", output=yes_no).run(rt, item="x") is True
    assert "answer yes or no" in (model.requests[1].messages[-1].content or "")


async def test_missing_template_variable_fails_loudly(prompts: PromptLibrary) -> None:
    rt = Runtime.from_models({"judge": ScriptedModel([])}, prompts=prompts)
    with pytest.raises(PromptError, match="'item' is undefined"):
        await Agent(name="judge", prompt="t/judge", output=str).run(rt)


def test_render_records_name_and_hash(tmp_path: Path) -> None:
    lib = write_prompt(tmp_path, "g/r", "Hello {{ who }}")
    rendered = lib.render("g/r", who="you")
    assert rendered.messages[0].content == "Hello you" and rendered.messages[0].role == "user"
    assert rendered.name == "g/r" and len(rendered.sha256) == 64
    other = write_prompt(tmp_path / "b", "g/r", "Hello {{ who }}!").render("g/r", who="you")
    assert other.sha256 != rendered.sha256


def test_unknown_template_names_the_directories(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match=r"no prompt template 'nope/x\.j2'"):
        PromptLibrary(tmp_path).get("nope/x")


def test_shipped_prompts_render() -> None:
    lib = PromptLibrary()
    msgs = lib.render("refinebot/evaluate", question="Q?", options="(a) x\n(b) y").messages
    assert msgs[-1].content and "Q?" in msgs[-1].content and "(b) y" in msgs[-1].content


async def test_scripted_model_is_strict() -> None:
    model = ScriptedModel(["one"])
    req = ChatRequest(messages=())
    assert (await model.chat(req)).text == "one"
    with pytest.raises(ScriptError, match="unexpected call #2"):
        await model.chat(req)
    leftover = ScriptedModel(["a", "b"])
    await leftover.chat(req)
    with pytest.raises(ScriptError, match="1 scripted step"):
        await leftover.aclose()
