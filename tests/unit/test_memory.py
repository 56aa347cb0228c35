"""Memory: budgets checked with the embedded model's real tokenizer, summaries that refresh on
overflow, vector recall with real embeddings, persistence across runs, replayed reads."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import rolegraph as rg
from rolegraph import END, START, Agent, Runtime, ScriptError
from rolegraph.graphs import replay_run
from rolegraph.memory import ByteEstimate, LlamaTokens, MemoryFeed, MemoryItem, MemoryStore
from rolegraph.models import FunctionModel, ScriptedModel
from rolegraph.models.servers import find_default_gguf
from rolegraph.prompts import PromptLibrary
from rolegraph.traces import MemoryRead, TraceStore

WORDS = [
    "mitochondria", "nucleus", "actin", "tubulin", "player", "red", "card", "hint", "Austria", "Galicia",
    "support", "move", "blue", "two",
]


def random_items(n: int, seed: int = 0) -> list[MemoryItem]:
    rng = random.Random(seed)
    return [MemoryItem(role=rng.choice(["p1", "p2", ""]),
                       content=" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40))) + rng.choice(["", " é✓"]))
            for _ in range(n)]


@pytest.fixture(scope="module")
def real_tokens() -> LlamaTokens:
    return LlamaTokens(find_default_gguf())


def exact(text: str, tokens: LlamaTokens) -> int:
    return len(tokens._tok.tokenize(text.encode(), add_bos=False, special=False))


@pytest.mark.parametrize("budget", [1, 20, 75, 200, 1000])
async def test_window_never_exceeds_the_budget_in_real_tokens(budget: int, real_tokens: LlamaTokens) -> None:
    rt = Runtime.from_models({})
    mem = rt.memory("moves", kind="buffer", k=500)
    mem.inner.counter = real_tokens
    for item in random_items(120):
        await mem.add(item)
    window = await mem.window(budget)
    used = sum(exact(i.render(), real_tokens) + 4 for i in window)  # + the chat template's per-message tokens
    assert used <= budget
    if len(window) < 120:  # maximal: one more (older) item would not fit
        older = mem.items()[-len(window) - 1]
        assert used + exact(older.render(), real_tokens) + 4 > budget
    assert window == mem.items()[len(mem.items()) - len(window):]  # the most recent, in order


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_byte_estimate_never_undercounts(text: str) -> None:
    tokens = LlamaTokens(find_default_gguf())
    assert ByteEstimate().count(text) >= exact(text, tokens) + 4


async def test_summary_refreshes_when_the_window_overflows(tmp_path: Path) -> None:
    summarizer = ScriptedModel(["Austria promised support in Galicia; Russia moved to Warsaw."])
    rt = Runtime.from_models({"summarizer": summarizer}, memory_store=MemoryStore(tmp_path / "m.sqlite"))
    mem = rt.memory("negotiation", kind="summary", scope="germany")
    for i in range(12):
        await mem.add(MemoryItem(role="austria" if i % 2 else "russia", content=f"message {i} " + "word " * 20))
    assert (await mem.window(10_000)) == mem.items()  # fits: no summary yet
    assert summarizer.requests == []
    window = await mem.window(300)
    assert len(summarizer.requests) == 1 and mem.inner.refreshes == 1
    asked = summarizer.requests[0].messages[-1].content or ""
    assert "message 0" in asked and "message 11" not in asked  # older items fold, recent stay verbatim
    assert window[0].role == "summary" and window[0].content.startswith("Austria promised")
    assert window[-1].content.startswith("message 11")
    assert sum(ByteEstimate().count(i.render()) for i in window) <= 300
    await mem.window(300)  # within budget again: no second call (the script would raise)
    with pytest.raises(ScriptError):
        await summarizer.chat(summarizer.requests[0])
    # the summary persists with the store
    again = Runtime.from_models({}, memory_store=MemoryStore(tmp_path / "m.sqlite"))
    assert again.memory("negotiation", kind="summary", scope="germany").summary.startswith("Austria promised")


async def test_notes_are_typed_and_recalled_by_subject(tmp_path: Path) -> None:
    rt = Runtime.from_models({}, memory_store=MemoryStore(tmp_path / "m.sqlite"))
    notes = rt.memory("hanabi", kind="notes", scope="player1")
    await notes.note("player 2", "has two red cards", episode="g1", turn=3)
    await notes.note("deck", "three blue fives are gone", episode="g1", turn=5)
    assert [n.content for n in notes.about("player 2")] == ["player 2: has two red cards"]
    assert (await notes.recall("what does player 2 hold?"))[0].metadata["turn"] == 3
    # a different scope is a different memory
    assert rt.memory("hanabi", kind="notes", scope="player2").items() == []


async def test_vector_recall_with_real_embeddings_and_persistence(tmp_path: Path) -> None:
    pytest.importorskip("llama_index.embeddings.huggingface", reason="vector memory needs the [memory] extra")
    store = MemoryStore(tmp_path / "mem" / "memory.sqlite")
    rt = Runtime.from_models({}, memory_store=store)
    mem = rt.memory("sounds", kind="vector")
    texts = ["car engine starting", "a dog barking at night", "rain falling on a tin roof",
             "an automobile motor starts up", "people talking in a cafe", "thunder rumbling far away"]
    for t in texts:
        await mem.add(MemoryItem(content=t))
    exact_hit = await mem.recall("rain falling on a tin roof", k=3)
    assert exact_hit[0].content == "rain falling on a tin roof"
    near = [i.content for i in await mem.recall("a car engine starts", k=6)]
    assert near.index("car engine starting") < near.index("people talking in a cafe")
    assert near.index("an automobile motor starts up") < near.index("a dog barking at night")
    rt.close()  # writes the index beside the store
    assert (tmp_path / "mem" / "vectors" / "sounds" / "_" / "docstore.json").exists()
    await mem.add(MemoryItem(content="a kettle whistling"))  # then "crash": no flush for this one
    store.close()
    reopened = Runtime.from_models({}, memory_store=MemoryStore(tmp_path / "mem" / "memory.sqlite"))
    again = reopened.memory("sounds", kind="vector")
    assert len(again.items()) == 7 and (await again.recall("dog", k=1))[0].content == "a dog barking at night"
    assert (await again.recall("whistling kettle", k=1))[0].content == "a kettle whistling"  # re-embedded


async def test_buffer_persists_across_runtimes(tmp_path: Path) -> None:
    first = Runtime.from_models({}, memory_store=MemoryStore(tmp_path / "m.sqlite"))
    buf = first.memory("history", k=3)
    for i in range(5):
        await buf.add(f"move {i}", role="p1")
    second = Runtime.from_models({}, memory_store=MemoryStore(tmp_path / "m.sqlite"))
    assert [i.content for i in second.memory("history", k=3).items()] == ["move 2", "move 3", "move 4"]


class S(BaseModel):
    turn: int = 0
    said: list[str] = []


player = Agent(name="player", prompt="t/player", output=str,
               memory=(MemoryFeed(var="history", memory="moves", budget_tokens=200),))


async def play(state: S, runtime: Runtime) -> dict[str, Any]:
    text = await player.run(runtime, turn=state.turn)
    await runtime.memory("moves").add(text, role="me")
    return {"turn": state.turn + 1, "said": [*state.said, text]}


class _Out(rg.RunResult):
    said: list[str]


class _Nothing(BaseModel):
    pass


@rg.graph(input=_Nothing, state=S, result=_Out, agents=[player])
def memgame(g: rg.StateGraph) -> None:
    g.add_node(play)
    g.add_edge(START, "play")
    g.add_conditional_edges("play", lambda s: END if s.turn >= 3 else "play", ["play", END])


async def test_replay_reproduces_memory_reads(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts" / "t"
    prompts.mkdir(parents=True)
    (prompts / "player.j2").write_text("Turn {{ turn }}. History:\n{{ history }}\nYour move?")
    lib = PromptLibrary(tmp_path / "prompts")
    counter = iter(range(100))
    rt = Runtime.from_models({"player": FunctionModel(lambda r: f"move {next(counter)}")}, prompts=lib,
                             traces=tmp_path / "runs", memory_store=MemoryStore(tmp_path / "mem.sqlite"))
    await rt.memory("moves").add("opening from an earlier game", role="me")
    out = await memgame.run({}, runtime=rt)
    store = TraceStore(tmp_path / "runs")
    trace = store.load(out.run_id or "")
    reads = trace.of_kind(MemoryRead)
    assert len(reads) == 3 and reads[0].items[0]["content"] == "opening from an earlier game"
    assert [len(r.items) for r in reads] == [1, 2, 3]
    # replay in a world whose memory is different (empty): the reads come from the trace, so every
    # request matches the recorded one and the run is identical
    replayed = await replay_run(trace, store=store, library=lib)
    assert replayed.said == out.said == ["move 0", "move 1", "move 2"]
    assert all(r.replayed for r in store.load(replayed.run_id or "").of_kind(MemoryRead))


async def test_a_fork_answers_memory_reads_before_its_live_step_from_the_trace(tmp_path: Path) -> None:
    """The recorded run read items an earlier run left in a persisted memory; the fork's runtime has
    none of them, so its replayed steps must take their reads from the trace, not recompute them."""
    import rolegraph as rg
    from rolegraph.graphs import replay_run
    from rolegraph.models import ChatRequest, FunctionModel, Message
    from rolegraph.traces import ModelCall, TraceStore

    class In(BaseModel):
        topic: str

    class St(BaseModel):
        topic: str
        said: list[str] = []

    def speak(i: int) -> Any:
        async def node(state: St, runtime: rg.Runtime) -> dict[str, Any]:
            log = runtime.memory("log", scope="shared")
            seen = " | ".join(item.content for item in await log.window(200))
            reply = await runtime.model("default").chat(ChatRequest(messages=(
                Message(role="user", content=f"{state.topic} {i}; so far: {seen}"),)))
            await log.add(reply.text)
            return {"said": [*state.said, reply.text]}

        node.__name__ = f"speak{i}"
        return node

    @rg.graph(input=In, state=St, name="memory_fork_probe")
    def probe(g: rg.StateGraph) -> None:
        for i in range(3):
            g.add_node(speak(i))
        g.add_edge(rg.START, "speak0")
        g.add_edge("speak0", "speak1")
        g.add_edge("speak1", "speak2")
        g.add_edge("speak2", rg.END)

    store = TraceStore(tmp_path / "runs")
    answer = FunctionModel(lambda r: f"noted {len(r.messages[-1].content or '')}")
    async with rg.Runtime.from_models({"default": answer}, traces=store,
                                      memory_store=MemoryStore(tmp_path / "memory.sqlite")) as rt:
        await probe.run(In(topic="a"), runtime=rt)
        second = await probe.run(In(topic="b"), runtime=rt)  # reads what the first run left
    trace = store.load(second.run_id or "")
    live = FunctionModel(lambda r: "live")
    async with rg.Runtime.from_models({"default": live}) as live_rt:
        forked = await replay_run(trace, store=store, live=live_rt, live_from=2)
    calls = store.load(forked.run_id or "").of_kind(ModelCall)
    assert [c.replayed for c in calls] == [True, True, False] and len(live.requests) == 1
    assert forked.state["said"][-1] == "live"
