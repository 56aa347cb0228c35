"""Each LangGraph internal that rolegraph relies on (all of them in rolegraph/_langgraph.py) still
holds in the installed LangGraph. When an upgrade moves one, its test here fails naming it, and
rolegraph/_langgraph.py is the one file to mend. (A private import that no longer exists fails
this file's collection instead, with an ImportError that names it.)"""

from __future__ import annotations

import operator
from collections.abc import AsyncIterator
from importlib.metadata import version
from typing import Annotated, Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy, Send

import rolegraph as rg
from rolegraph import _langgraph as lg

LANGGRAPH = version("langgraph")


def moved(what: str) -> str:
    return f"LangGraph {LANGGRAPH} changed {what}: mend rolegraph/_langgraph.py"


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
