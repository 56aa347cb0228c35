"""A graph as an evaluation solver: each case runs the graph, tagged with its evaluation pair, and
a resumed evaluation adopts the run a killed one left for a pair instead of running it again."""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from pydantic import BaseModel

from rolegraph.graphs._api import RunResult, _call_hook

if TYPE_CHECKING:
    from rolegraph.graphs._api import Graph
    from rolegraph.runtime import Runtime

R = TypeVar("R", bound=RunResult)
log = logging.getLogger("rolegraph.graphs")
EVAL_PAIR: contextvars.ContextVar[str | None] = contextvars.ContextVar("rolegraph_eval_pair", default=None)
"""The evaluation pair (`eval_id/case_id/repeat`) a solver is answering, set by the eval runner: a
graph solver tags its run with it, and on resume adopts the run a killed evaluation left for it."""


class GraphSolver(Generic[R]):
    """Runs a graph on one evaluation case (the evals Solver protocol)."""

    def __init__(self, graph: Graph[R], options: BaseModel | None, input: Callable[..., Any] | None,
                 output: Callable[[R], Any] | None, seed: Callable[..., int] | None = None) -> None:
        self.graph, self.options, self._input, self._output, self._seed = graph, options, input, output, seed

    async def __call__(self, case: Any, runtime: Runtime, *, repeat: int, seed: int) -> R:
        value = case.input if self._input is None else _call_hook(self._input, case, repeat=repeat, seed=seed)
        run_seed = seed if self._seed is None else _call_hook(self._seed, case, repeat=repeat, seed=seed)
        pair = EVAL_PAIR.get()
        if pair is None or runtime.traces is None:
            return await self.graph.run(value, runtime=runtime, seed=run_seed, options=self.options)
        tags = {"pair": pair, "request": self._fingerprint(value, run_seed)}
        adopted = await self._adopt(runtime, tags)
        if adopted is not None:
            return adopted
        return await self.graph.run(value, runtime=runtime, seed=run_seed, options=self.options, tags=tags)

    def _fingerprint(self, value: Any, seed: int) -> str:
        """What this pair asks of the graph (before any prepare hook), as a short hash."""
        opts = self.graph.options(self.options)
        data = {"graph": self.graph.name, "input": self.graph.input(value).model_dump(mode="json"), "seed": seed,
                "options": opts.model_dump(mode="json") if opts is not None else {}}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:24]

    async def _adopt(self, runtime: Runtime, tags: dict[str, str]) -> R | None:
        """A run that an earlier, killed evaluation made for this pair: a finished one is replayed
        offline (no model or tool call) to rebuild its result, an interrupted one resumed from its
        checkpoint. None when there is none to adopt (or adopting fails): the pair runs afresh."""
        from rolegraph.graphs._replay import replay_run, resume_run

        assert runtime.traces is not None
        for info in runtime.traces.runs_for_pair(tags["pair"]):
            if info.status not in ("ok", "incomplete"):
                continue  # an errored run is retried, not adopted
            try:
                trace = runtime.traces.load(info.run_id)
                if trace.started.manifest.tags != tags:
                    continue
                if trace.complete:
                    result = await replay_run(trace, graph=self.graph, library=runtime.prompts)
                    result.trace_id, result.trace_dir = trace.run_id, str(trace.dir)
                    totals = trace.finished.totals if trace.finished else None
                    if totals is not None:
                        result.prompt_tokens, result.completion_tokens = totals.prompt_tokens, totals.completion_tokens
                    return cast(R, result)
                return cast(R, await resume_run(trace, store=runtime.traces, live=runtime, graph=self.graph))
            except Exception as exc:  # noqa: BLE001 - adopting is an optimisation; a fresh run is always right
                log.warning("pair %s: could not adopt run %s (%s: %s); running it again", tags["pair"], info.run_id,
                            type(exc).__name__, exc)
        return None

    def output(self, result: R) -> Any:
        if self._output is not None:
            return self._output(result)
        error = set() if result.error is not None else {"error"}
        return result.model_dump(mode="json", exclude=set(self.graph.output_exclude) | {"trace_dir"} | error)
