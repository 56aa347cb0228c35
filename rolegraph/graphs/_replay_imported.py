"""Replaying a trace recorded elsewhere (an imported run) against the user's current code: the app
runs as a new run of its own, every model and tool call answered from the imported spans in order
(`rolegraph.traces` `ImportedAnswers` states the rule), nothing sent anywhere; the new run then forks
like any run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rolegraph.errors import UserError
from rolegraph.graphs._api import Graph
from rolegraph.prompts import PromptLibrary
from rolegraph.runtime import Runtime
from rolegraph.traces import ForkOrigin, ImportedAnswers, ModelCall, Trace, TraceStore


@dataclass
class ImportedReplay:
    """What a replay of an imported run did."""

    result: Any
    """The app's result (its run is recorded in the store, with the imported run as its parent)."""
    answered: int
    """Model calls answered from the imported spans."""
    tools_answered: int
    """Tool calls answered from them (the tools did not run)."""
    live_calls: int
    """Model calls of the new run not answered from the trace (0; as its trace records them)."""
    unused: list[str]
    """What the trace recorded that the app did not ask for."""


async def replay_imported(trace: Trace, graph: Graph[Any], *, store: TraceStore | None,
                          input: Any = None, library: PromptLibrary | None = None) -> ImportedReplay:
    """Run `graph` (the user's app, a wrapped LangGraph app or a rolegraph graph) on the imported run's
    input (or `input`), its model and tool calls answered from the run's spans."""
    answers = ImportedAnswers(trace)
    value = input if input is not None else trace.started.manifest.input
    if value is None:
        raise UserError(f"imported run {trace.run_id} records no input (its root span has no input.value and no "
                        "model call has messages): give the app's input")
    runtime = Runtime.from_models({}, prompts=(library or PromptLibrary()).below(*graph.prompt_dirs), traces=store,
                                  trace_parent=ForkOrigin(run_id=trace.run_id), fallback=lambda role: answers)
    # every tool call is answered from the imported tool spans (the runtime's one tool source)
    runtime.tool_source = answers
    try:
        result = await graph.run(value, runtime=runtime, tags={"replay_of_imported": trace.run_id})
    finally:
        await runtime.aclose()
    run_id = getattr(result, "run_id", None)
    live = (sum(1 for c in store.load(run_id).of_kind(ModelCall) if not c.replayed)
            if store is not None and run_id else 0)
    return ImportedReplay(result, answers.answered, answers.tools_answered, live, answers.unused())
