"""Each LangGraph internal that rolegraph relies on (all of them in rolegraph/_langgraph.py) still
holds in the installed LangGraph. When an upgrade moves one, its test here fails naming it, and
rolegraph/_langgraph.py is the one file to mend. (A private import that no longer exists fails
this file's collection instead, with an ImportError that names it.)"""

from __future__ import annotations

import operator
import tomllib
from collections.abc import AsyncIterator
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy, Send

import rolegraph as rg
from rolegraph import _langgraph as lg

LANGGRAPH = version("langgraph")
CHECKED = ("1.2.20", "1.2.24")
"""The LangGraph versions every test here passed on: the lowest pyproject.toml allows (CI runs these
tests on it, scripts/check-lowest.sh) and the locked one (requirements-lock.txt, every other CI run).
The supported range, `>=1.2.20,<2`, is in docs/how-to/install.md."""
ROOT = Path(__file__).resolve().parents[2]


def moved(what: str) -> str:
    return (f"LangGraph {LANGGRAPH} changed {what} (checked on LangGraph {' and '.join(CHECKED)}): "
            "mend rolegraph/_langgraph.py")


def test_the_versions_checked_are_the_lowest_allowed_and_the_locked_one() -> None:
    requirements = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"langgraph>={CHECKED[0]},<2" in requirements, \
        f"pyproject.toml's langgraph range moved: check these tests on its lowest version, then update CHECKED ({requirements})"
    assert f"\nlanggraph=={CHECKED[-1]}\n" in (ROOT / "requirements-lock.txt").read_text(), \
        "requirements-lock.txt locks another LangGraph: run these tests on it, then update CHECKED"
    assert LANGGRAPH in CHECKED, (f"LangGraph {LANGGRAPH} is installed, and these tests were checked on {', '.join(CHECKED)}: "
                                  "when they pass on it, name it in CHECKED")


class State(TypedDict, total=False):
    topic: int
    seen: Annotated[list[dict[str, Any]], operator.add]


def remember(state: State, config: RunnableConfig) -> dict[str, Any]:
    """A node that keeps the metadata LangGraph gave it."""
    return {"seen": [dict(config["metadata"])]}


async def run(graph: Any) -> list[dict[str, Any]]:
    final = await graph.compile().ainvoke({})
    return list(final["seen"])


# -- private imports -----------------------------------------------------------------------------

async def test_langgraphs_async_checks_tell_what_it_runs_on_the_loop() -> None:
    async def coroutine() -> None: ...

    async def generator() -> AsyncIterator[int]:
        yield 1

    class AsyncCall:
        async def __call__(self) -> None: ...

    def plain() -> None: ...

    assert lg.is_async_callable(coroutine) and lg.is_async_callable(AsyncCall()), \
        moved("langgraph._internal._runnable.is_async_callable (it no longer sees a coroutine function)")
    assert not lg.is_async_callable(plain), moved("is_async_callable (it takes a plain function for async)")
    assert lg.is_async_generator(generator) and not lg.is_async_generator(coroutine), \
        moved("langgraph._internal._runnable.is_async_generator")


async def test_a_runnable_callable_passes_config_as_its_sync_functions_signature_asks() -> None:
    """What a route run inline relies on: LangGraph reads the signature of `func` and calls `afunc`."""
    got: list[Any] = []

    def route(state: int, config: RunnableConfig) -> str:
        raise AssertionError("the async function runs, not this one")

    async def inline(state: int, **kwargs: Any) -> str:
        got.append(kwargs.get("config"))
        return "ok"

    runnable = lg.RunnableCallable(route, inline, name="route", trace=False)
    assert runnable.name == "route", moved("RunnableCallable's name argument")
    answer = await runnable.ainvoke(1, {"metadata": {"mark": 7}})
    assert answer == "ok", moved("RunnableCallable.ainvoke (it no longer calls afunc)")
    assert got and isinstance(got[0], dict) and got[0]["metadata"]["mark"] == 7, \
        moved("RunnableCallable (it no longer passes `config` to a function whose signature asks for it)")


# -- the metadata in a node's config -------------------------------------------------------------

async def test_a_nodes_metadata_carries_its_step_and_checkpoint_namespace() -> None:
    graph = StateGraph(State)
    graph.add_node("first", remember)
    graph.add_node("second", remember)
    graph.add_edge(START, "first")
    graph.add_edge("first", "second")
    first, second = await run(graph)
    for key in (lg.STEP, lg.CHECKPOINT_NS, lg.PATH):
        assert key in first, moved(f"the node metadata key {key!r} (keys now: {sorted(first)})")
    assert (first[lg.STEP], second[lg.STEP]) == (1, 2), moved(f"the step numbers in {lg.STEP!r}")
    assert lg.task_position({"metadata": second}) == (["second"], 2, None), \
        moved(f"the namespace format in {lg.CHECKPOINT_NS!r} ({second[lg.CHECKPOINT_NS]!r})")


async def test_a_subgraphs_node_has_the_enclosing_node_in_its_namespace() -> None:
    inner = StateGraph(State)
    inner.add_node("leaf", remember)
    inner.add_edge(START, "leaf")
    outer = StateGraph(State)
    outer.add_node("sub", inner.compile())
    outer.add_edge(START, "sub")
    (leaf,) = await run(outer)
    ns = leaf[lg.CHECKPOINT_NS]
    assert lg.task_position({"metadata": leaf}).namespace == ["sub", "leaf"], \
        moved(f"a subgraph's namespace in {lg.CHECKPOINT_NS!r}: {ns!r} is not 'sub{lg.NS_END}id{lg.NS_SEP}leaf{lg.NS_END}id'")


async def test_a_send_fan_out_marks_each_task_with_its_push_index() -> None:
    graph = StateGraph(State)
    graph.add_node("fan", remember)
    graph.add_conditional_edges(START, lambda _: [Send("fan", {"topic": i}) for i in range(2)], ["fan"])
    seen = await run(graph)
    paths = sorted((m[lg.PATH] for m in seen), key=str)
    assert all(p[0] == lg.PUSH for p in paths), moved(f"the marker of a Send's task in {lg.PATH!r}: {paths}")
    assert sorted(lg.task_position({"metadata": m}).send for m in seen) == [0, 1], \
        moved(f"the Send index in {lg.PATH!r}: {paths}")


def test_a_config_without_langgraphs_metadata_has_no_position() -> None:
    assert lg.task_position(None) == ([], "?", None)
    assert lg.task_position({"metadata": {lg.PATH: ("__pregel_pull", "n")}}).send is None


# -- a StateGraph's parts ----------------------------------------------------------------------

def join(state: State) -> dict[str, Any]:
    return {}


def test_a_compiled_graph_keeps_the_builder_parts_an_app_is_copied_from() -> None:
    graph = StateGraph(State)
    graph.add_node("a", remember, retry_policy=RetryPolicy(max_attempts=2), metadata={"k": 1})
    graph.add_node("b", remember)
    graph.add_node("c", join, defer=True)
    graph.add_edge(START, "a")
    graph.add_conditional_edges("a", lambda _: "b", ["b", END])
    graph.add_edge(["a", "b"], "c")
    compiled = graph.compile()
    builder = lg.builder_of(compiled)
    assert builder is graph, moved("CompiledStateGraph.builder (the StateGraph it was compiled from)")
    assert lg.builder_of(object()) is None
    assert lg.state_schema(builder) is State, moved("StateGraph.state_schema")
    spec = lg.node_specs(builder)["a"]
    for field in ("runnable", "metadata", "input_schema", "retry_policy", "cache_policy", "ends", "defer"):
        assert hasattr(spec, field), moved(f"StateNodeSpec.{field} (fields now: {sorted(vars(spec))})")
    assert (START, "a") in builder.edges, moved("StateGraph.edges (a set of (start, end))")
    assert (("a", "b"), "c") in builder.waiting_edges, moved("StateGraph.waiting_edges (a set of (starts, end))")
    assert list(builder.branches["a"]), moved("StateGraph.branches (source -> {name: BranchSpec})")


async def test_an_update_key_that_is_no_channel_is_dropped_and_the_channels_are_the_state_keys() -> None:
    graph = StateGraph(State)
    graph.add_node("a", lambda state: {"topic": 1, "topik": 2})  # LangGraph drops `topik` without a word
    graph.add_edge(START, "a")
    assert "topik" not in await graph.compile().ainvoke({}), moved("how an update's unknown key is treated")
    assert lg.state_keys(graph) == {"topic", "seen"}, moved("StateGraph.channels / .managed (the state's keys)")
    assert lg.state_keys(StateGraph(int)) is None, moved(f"the one channel of a single-value state ({lg.ROOT_CHANNEL})")


async def test_a_copied_graph_has_the_same_nodes_edges_joins_and_branches() -> None:
    source = StateGraph(State)
    source.add_node("a", remember, retry_policy=RetryPolicy(max_attempts=2), metadata={"k": 1})
    source.add_node("b", remember)
    source.add_node("c", remember)
    source.add_edge(START, "a")
    source.add_conditional_edges("a", lambda _: "b", ["b", END])
    source.add_edge(["a", "b"], "c")
    copy = StateGraph(State)
    lg.copy_graph(source, copy)
    assert copy.edges == source.edges and copy.waiting_edges == source.waiting_edges, moved("StateGraph edges")
    assert dict(copy.branches) == dict(source.branches), moved("StateGraph.branches")
    assert copy.nodes["a"].retry_policy == source.nodes["a"].retry_policy and copy.nodes["a"].metadata == {"k": 1}, \
        moved("StateGraph.add_node's options (retry_policy, metadata, ...)")
    assert [m["langgraph_node"] for m in await run(copy)] == ["a", "b", "c"], moved("how a copied graph runs")


def test_a_nodes_runnable_exposes_the_function_langgraph_calls() -> None:
    async def step(state: State) -> dict[str, Any]:
        return {}

    graph = StateGraph(State)
    graph.add_node("step", step)
    assert lg.node_functions(graph)["step"] is step, moved("the node runnable's `afunc` (the function it calls)")
    traced = rg.StateGraph(State)
    traced.add_node("step", step)
    inner = getattr(lg.node_functions(traced)["step"], "rolegraph_inner", None)
    assert inner is step, moved("the node runnable's `afunc`: a replay no longer finds the traced node's function")


# -- control flow raised through a node ------------------------------------------------------------

async def test_a_command_to_the_parent_graph_reaches_the_enclosing_node_as_a_handoff() -> None:
    """What recording a supervisor's or swarm's handoff relies on: `Command(graph=PARENT)` returned by
    a node inside a subgraph is raised through the node that runs the subgraph, carrying the command."""
    from langgraph.types import Command

    seen: list[Any] = []

    def hand_on(state: State) -> Command[Any]:
        return Command(graph=Command.PARENT, goto="after", update={"topic": 7})

    inner = StateGraph(State)
    inner.add_node("hand_on", hand_on)
    inner.add_edge(START, "hand_on")
    compiled = inner.compile()

    async def agent(state: State, config: RunnableConfig) -> Any:
        try:
            return await compiled.ainvoke(state, config)
        except BaseException as exc:
            seen.append(lg.handoff_of(exc))
            raise

    outer = StateGraph(State)
    outer.add_node("agent", agent, destinations=("after",))
    outer.add_node("after", remember)
    outer.add_edge(START, "agent")
    final = await outer.compile().ainvoke({})
    assert seen and seen[0] is not None, moved("how Command(graph=PARENT) leaves a subgraph (no ParentCommand seen)")
    assert (seen[0].goto, seen[0].update) == (["after"], {"topic": 7}), \
        moved(f"the Command a ParentCommand carries (args[0]): {seen[0]}")
    assert final["topic"] == 7 and final["seen"], moved("how the parent graph applies a ParentCommand")
    assert lg.handoff_of(ValueError("x")) is None


# -- human input: how `interrupt()` surfaces ------------------------------------------------------------

async def test_an_interrupt_passes_through_its_node_and_comes_out_in_updates_under_its_key() -> None:
    """What recording human input relies on: `interrupt(value)` raises through the node (carrying its
    Interrupts, each with an id and the value), and the run's stream gives them in an "updates" chunk
    under `INTERRUPT`, with a copy beside the state in the last "values" chunk."""
    from langgraph.types import interrupt

    seen: list[Any] = []

    async def ask(state: State) -> dict[str, Any]:
        try:
            return {"topic": interrupt({"q": "which?"})}
        except BaseException as exc:
            seen.append(lg.raised_interrupts(exc))
            raise

    graph = StateGraph(State)
    graph.add_node("ask", ask)
    graph.add_edge(START, "ask")
    updates, values = [], []
    async for mode, chunk in graph.compile().astream({"topic": 1}, stream_mode=["updates", "values"]):
        (updates if mode == "updates" else values).append(chunk)
    assert seen and seen[0] and seen[0][0].value == {"q": "which?"} and isinstance(seen[0][0].id, str), \
        moved(f"the Interrupts a GraphInterrupt carries (args[0]): {seen}")
    stopped = [u[lg.INTERRUPT] for u in updates if lg.INTERRUPT in u]
    assert stopped and stopped[0][0].id == seen[0][0].id, \
        moved(f"the key under which the stream gives interrupts ({lg.INTERRUPT!r}); updates: {updates}")
    assert lg.INTERRUPT in values[-1] and lg.final_values(values[-1]) == {"topic": 1, "seen": []}, \
        moved(f"the last values chunk of an interrupted run: {values[-1]}")
    assert lg.raised_interrupts(ValueError("x")) is None and lg.final_values(values[0]) == values[0]


# -- the functional API ----------------------------------------------------------------------------

def _double(x: int) -> int:
    return 2 * x


def test_an_entrypoint_workflow_is_one_node_running_the_function() -> None:
    from langgraph.func import entrypoint, task

    double = task(_double)

    def workflow(n: int) -> int:
        return int(double(n).result())

    async def async_workflow(n: int) -> int:
        return await double(n)

    for fn in (workflow, async_workflow):
        found = lg.entrypoint_of(entrypoint()(fn))
        assert found is not None, moved("an @entrypoint Pregel (one node, a __previous__ channel)")
        assert found.name == fn.__name__ and found.function is fn, \
            moved("the entrypoint node's runnable (`func` of a sync entrypoint, `afunc` of an async one)")
        assert hasattr(found.runnable, "ainvoke")
    plain = StateGraph(State)
    plain.add_node("remember", remember)
    plain.add_edge(START, "remember")
    assert lg.entrypoint_of(plain.compile()) is None and lg.entrypoint_of(object()) is None
    assert lg.task_function(double) is _double, moved("langgraph.func._TaskFunction.func")
    assert lg.task_function(_double) is None


async def test_routed_task_calls_run_as_the_tasks_langgraph_schedules() -> None:
    """What a recorded task step relies on: each call reaches the route with its arguments, and the
    function handed to `schedule` (same name) is what LangGraph runs as the task."""
    from langgraph.func import entrypoint, task

    double = task(_double)
    seen: list[Any] = []

    def route(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], schedule: Any) -> Any:
        async def instead(*a: Any, **k: Any) -> int:
            seen.append((func.__name__, a, lg.current_config()["metadata"].get("langgraph_node")))
            return 10 * _double(*a, **k)

        instead.__name__ = func.__name__
        assert schedule is not None
        return schedule(instead)

    @entrypoint()
    async def workflow(n: int) -> list[int]:
        return [await double(i) for i in range(n)]

    entry = lg.entrypoint_of(workflow)
    assert entry is not None

    class Node(TypedDict, total=False):
        n: int
        out: list[int]

    async def node(state: Node) -> dict[str, Any]:
        config = lg.route_task_calls(lg.current_config(), route)
        with lg.using_config(config):
            return {"out": await entry.runnable.ainvoke(state["n"], config)}

    graph = StateGraph(Node)
    graph.add_node("node", node)
    graph.add_edge(START, "node")
    final = await graph.compile().ainvoke({"n": 2})
    assert final["out"] == [0, 20], moved("the task-call hook in a node's config (CONFIG_KEY_CALL)")
    assert seen == [("_double", (0,), "_double"), ("_double", (1,), "_double")], \
        moved(f"how a scheduled task function is run: {seen}")


async def test_outside_a_run_a_task_call_reaches_the_route_unscheduled_with_the_runtime() -> None:
    from langgraph.func import entrypoint, task
    from langgraph.runtime import Runtime

    double = task(_double)
    got: list[Any] = []

    def route(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], schedule: Any) -> Any:
        got.append(schedule)
        future: Any = __import__("asyncio").get_running_loop().create_future()
        future.set_result(func(*args, **kwargs))
        return future

    @entrypoint()
    async def workflow(n: int, runtime: Runtime[Any]) -> tuple[int, Any]:
        return await double(n), runtime.context

    entry = lg.entrypoint_of(workflow)
    assert entry is not None
    config = lg.route_task_calls(lg.standalone_config("ctx"), route)
    with lg.using_config(config):
        assert await entry.runnable.ainvoke(3, config) == (6, "ctx"), \
            moved("the runtime a function asking for `runtime` gets (CONFIG_KEY_RUNTIME)")
    assert got == [None] and lg.current_config() is None


async def test_a_subgraph_run_by_itself_names_its_nodes_under_the_node_that_ran_it() -> None:
    inner = StateGraph(State)
    inner.add_node("leaf", remember)
    inner.add_edge(START, "leaf")
    final = await inner.compile().ainvoke({}, lg.as_subgraph_of({}, "sub"))
    (leaf,) = final["seen"]
    assert lg.task_position({"metadata": leaf}).namespace == ["sub", "leaf"], \
        moved(f"a nested run's namespace (CONFIG_KEY_CHECKPOINT_NS with CONFIG_KEY_TASK_ID): {leaf[lg.CHECKPOINT_NS]!r}")


async def test_a_messages_stream_listens_for_tokens_through_a_nodes_callbacks() -> None:
    heard: list[bool] = []

    def node(state: State, config: RunnableConfig) -> dict[str, Any]:
        heard.append(lg.listens_for_tokens(config.get("callbacks")))
        return {}

    graph = StateGraph(State)
    graph.add_node("n", node)
    graph.add_edge(START, "n")
    compiled = graph.compile()
    async for _ in compiled.astream({}, stream_mode="messages"):
        pass
    await compiled.ainvoke({})
    assert heard == [True, False], moved("how a `messages` stream listens (langchain_core's _StreamingCallbackHandler "
                                         "among a node's callbacks)")
