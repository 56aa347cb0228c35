"""A graph as an evaluation solver: each case runs the graph, tagged with its evaluation pair, and
a resumed evaluation adopts the run a killed try of the same evaluation left for a pair instead of
running it again, only when everything that decides that run is the same."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import types
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from pydantic import BaseModel

from rolegraph.errors import HumanInputNeeded
from rolegraph.graphs._api import RunResult
from rolegraph.graphs._hooks import call_hook
from rolegraph.graphs._human import MAX_ROUNDS, AnswerBook, unanswered
from rolegraph.models import OpenAICompatModel

if TYPE_CHECKING:
    from rolegraph.graphs._api import Graph
    from rolegraph.runtime import Runtime

R = TypeVar("R", bound=RunResult)
log = logging.getLogger("rolegraph.graphs")


class GraphSolver(Generic[R]):
    """Runs a graph on one evaluation case (the evals Solver protocol)."""

    def __init__(self, graph: Graph[R], options: BaseModel | None, input: Callable[..., Any] | None,
                 output: Callable[[R], Any] | None, seed: Callable[..., int] | None = None,
                 answers: AnswerBook | None = None) -> None:
        self.graph, self.options, self._input, self._output, self._seed = graph, options, input, output, seed
        self.answers = answers
        """Scripted answers to the questions (`interrupt()`) the graph asks; None: a case that asks fails."""
        self.adopted: set[str] = set()
        """Run ids of the results this solver rebuilt from an earlier try's runs (the runner counts them)."""

    async def __call__(self, case: Any, runtime: Runtime, *, repeat: int, seed: int, pair: str | None = None) -> R:
        """One case's run (see `_run`), its questions answered from `answers` (the run resumed with
        them, in its own trace, until it ends). A run left waiting for human input fails the case with
        HumanInputNeeded naming its questions: an interrupted run is never scored as done."""
        result = await self._run(case, runtime, repeat=repeat, seed=seed, pair=pair)
        for _ in range(MAX_ROUNDS):
            if result.status != "interrupted":
                return result
            if self.answers is None:
                raise unanswered(str(getattr(case, "id", "?")), result)
            given = self.answers.answers(str(getattr(case, "id", "?")), result.interrupts, result.run_id)
            result = await self.graph.resume(result, given, runtime=runtime)
        raise HumanInputNeeded(f"run {result.run_id} was resumed {MAX_ROUNDS} times and still asks; "
                               "its graph may ask forever", run_id=result.run_id)

    async def _run(self, case: Any, runtime: Runtime, *, repeat: int, seed: int, pair: str | None = None) -> R:
        """One case's run. With the evaluation `pair` (given by the eval runner), the run is tagged
        with it and with its fingerprint, and a run an earlier, killed try of the same evaluation left
        for the pair under the same fingerprint is adopted instead of run again."""
        value = case.input if self._input is None else call_hook(self._input, case, repeat=repeat, seed=seed)
        run_seed = seed if self._seed is None else call_hook(self._seed, case, repeat=repeat, seed=seed)
        if pair is None or runtime.traces is None:
            return await self.graph.run(value, runtime=runtime, seed=run_seed, options=self.options)
        tags = {"pair": pair, "request": self.fingerprint(value, runtime=runtime, seed=run_seed)}
        adopted = await self._adopt(runtime, tags)
        if adopted is not None:
            if adopted.run_id is not None:
                self.adopted.add(adopted.run_id)
            return adopted
        return await self.graph.run(value, runtime=runtime, seed=run_seed, options=self.options, tags=tags)

    def fingerprint(self, value: Any, *, runtime: Runtime, seed: int) -> str:
        """Everything that decides this pair's run, as a short hash: the graph and its code, every
        role's endpoint, model and sampling (an in-process model's type, name and code), the prompt
        templates' hashes, the options, the input (before any prepare hook) and the seed. A recorded
        run is adopted only under the same fingerprint."""
        graph = self.graph
        opts = graph.options(self.options)
        data_in = graph.input(value)
        prompts = runtime.with_prompt_dirs(graph.prompt_dirs).prompts
        data = {"graph": graph.name, "ref": graph.ref,
                "code": {"graph": _file_hash(graph.file), "rolegraph": _package_hash()},
                "input": data_in.model_dump(mode="json"), "seed": seed,
                "options": opts.model_dump(mode="json") if opts is not None else {},
                "roles": {role: _role_identity(runtime, role) for role in graph.roles(data_in, opts)},
                "prompts": {name: prompts.get(name).sha256 for name in graph.templates(data_in, opts)}}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:32]

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
                    log.info("pair %s: adopted finished run %s from this evaluation's earlier try (replayed offline)",
                             tags["pair"], info.run_id)
                    result = await replay_run(trace, graph=self.graph, library=runtime.prompts)
                    result.run_id, result.trace_dir = trace.run_id, str(trace.dir)
                    totals = trace.finished.totals if trace.finished else None
                    if totals is not None:
                        result.prompt_tokens, result.completion_tokens = totals.prompt_tokens, totals.completion_tokens
                    return cast(R, result)
                log.info("pair %s: adopted interrupted run %s from this evaluation's earlier try (resumed)",
                         tags["pair"], info.run_id)
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


def _role_identity(runtime: Runtime, role: str) -> dict[str, Any]:
    """What decides a role's answers: a served model's endpoint, model name and sampling settings;
    an in-process model's (a FunctionModel's, a ScriptedModel's) type, name and function code."""
    info: dict[str, Any] = runtime.describe_role(role).model_dump(mode="json")
    inner = runtime.unrecorded_model(role)
    if not isinstance(inner, OpenAICompatModel):
        info["name"] = str(getattr(inner, "name", ""))
        fn = getattr(inner, "fn", None)
        if callable(fn):
            info["code"] = _code_identity(fn)
    return info


def _code_identity(fn: Callable[..., Any]) -> str:
    """A function's name and a hash of its bytecode and constants (nested functions included)."""
    code = getattr(fn, "__code__", None)
    name = f"{getattr(fn, '__module__', '')}:{getattr(fn, '__qualname__', type(fn).__qualname__)}"
    if code is None:
        return name
    digest = hashlib.sha256()

    def feed(c: types.CodeType) -> None:
        digest.update(c.co_code)
        digest.update(repr(c.co_names).encode())
        for const in c.co_consts:
            if isinstance(const, types.CodeType):
                feed(const)
            else:
                digest.update(repr(const).encode())

    feed(code)
    return f"{name}:{digest.hexdigest()[:16]}"


def _file_hash(path: str | None) -> str:
    if path is None:
        return ""
    try:
        stat = Path(path).stat()
    except OSError:
        return ""
    return _hash_file(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _hash_file(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def _package_hash() -> str:
    """rolegraph's own code (every module of the package, read once per process)."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for file in sorted(root.rglob("*.py")):
        digest.update(str(file.relative_to(root)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]
