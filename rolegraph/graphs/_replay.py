"""Replay, fork and resume: run a recorded graph again with its model and tool calls answered
from the trace (all of them, those before a step, or those a killed run finished). A run that did
not finish is replayed as far as it was recorded; one whose log and checkpoint disagree is not
resumed."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import aiosqlite

from rolegraph.errors import ReplayMismatch, RolegraphError, UserError, one_line
from rolegraph.graphs._api import Graph
from rolegraph.graphs._find import find_graph
from rolegraph.graphs._human import answers_by_id, fork_answers
from rolegraph.graphs._run import CHECKPOINTS, RedactingSerde, RunStream, run_graph, state_types
from rolegraph.graphs._saver import open_saver
from rolegraph.prompts import PromptLibrary, load_template_file
from rolegraph.runtime import Runtime
from rolegraph.traces import (
    NodeFinished,
    NodeStarted,
    Point,
    Redactor,
    Replay,
    Trace,
    TraceStore,
    comparable,
    role_prompts,
)


async def resume_run(trace: Trace, *, store: TraceStore, live: Runtime, graph: Graph[Any] | None = None,
                     answer: Any = None) -> Any:
    """Continue an interrupted run from its last checkpoint. Nodes that finished are not run
    again; in the node that was cut off, calls the trace recorded are answered from it. Any role
    the live runtime plays (its default included) may answer the rest. A resume that fails
    leaves the run resumable. A run whose log is behind its checkpoint (the log lost events) is
    refused, saying why, before anything is touched.

    A run paused at questions (`interrupt()`, status "interrupted") goes on from `answer`: the bare
    answer when it waits on one question, `{interrupt id (or node): answer}` for several, or LangGraph's
    `Command(resume=...)`. Each answer is recorded in the run's trace (a HumanInput event)."""
    if trace.complete and trace.status != "interrupted":
        raise UserError(f"run {trace.run_id} already finished ({trace.status}); nothing to resume")
    if trace.status == "interrupted" and answer is None:
        raise UserError(f"run {trace.run_id} waits for human input: "
                        + "; ".join(f"{q.id} (step {q.step}, {q.node_key}): {json.dumps(q.value, default=str)[:200]}"
                                    for q in trace.interrupts)
                        + f". Answer it: rolegraph resume {trace.run_id} --answer JSON (or graph.resume(run, answer, "
                        "runtime=rt))")
    human = answers_by_id(trace, answer) if answer is not None else {}
    if not (trace.dir / CHECKPOINTS).exists():
        raise UserError(f"run {trace.run_id} has no checkpoints to resume from")
    manifest = trace.started.manifest
    graph = graph or find_graph(manifest)
    disagreement = await _log_against_checkpoint(trace, graph)
    if disagreement is not None:
        raise UserError(f"run {trace.run_id} cannot be resumed: {disagreement}")

    runtime = Runtime.from_models({}, prompts=live.prompts, traces=store, replay=Replay(trace, fill_gaps=True, human=human),
                                  live=live)
    runtime.require_roles(trace.roles)  # a role nobody can play fails here, before the run is touched
    try:
        return await run_graph(graph, manifest, runtime, resume=trace)
    finally:
        await runtime.aclose()


async def replay_run(trace: Trace, *, store: TraceStore | None = None, live: Runtime | None = None,
                     live_from: int | None = None, models: dict[str, str] | None = None,
                     prompts: dict[str, str] | None = None, graph: Graph[Any] | None = None,
                     library: PromptLibrary | None = None, live_from_call: int = 0, answer: Any = None) -> Any:
    """Run the recorded graph again, answering model calls from `trace`.

    With `live_from`, node steps from that one on call `live` (a Runtime) instead; `models`
    (role -> model name) and `prompts` (role -> template file) change roles in that live part.
    `graph` defaults to the one the manifest names (found again in this process); `library` is
    the prompt library the run used (default: the package's, below the graph's own).
    `live_from_call` forks inside step `live_from`: its model calls before that index are still
    answered from the trace (the step's tools run live).
    `answer` changes a person's answer in the fork's live part: the first questions (`interrupt()`)
    it asks take it (or `{node execution key: answer}`, that execution's); other questions there pause
    the fork (`resume_run` continues it). Questions before the fork point are answered from the trace.
    Returns the graph's result; the new run is recorded in `store` with its parent.

    A run that did not finish, replayed whole (no `live_from`), is replayed as far as it was
    recorded: each recorded step is checked against the recording, nothing is written to `store`,
    and a `PartialReplay` says where the run stopped.
    """
    models, prompts = models or {}, prompts or {}
    if (models or prompts) and live_from is None:
        raise UserError("--model and --prompt change the live part of a fork: give --live-from STEP too")
    if live_from is not None and live is None:
        raise UserError("a fork needs a live runtime")
    manifest = trace.started.manifest
    graph = graph or find_graph(manifest)
    if not trace.complete and live_from is None:
        return await _replay_recorded(trace, graph, (library or PromptLibrary()).below(*graph.prompt_dirs),
                                      store.redactor if store is not None else None)

    human = fork_answers(trace, live_from, answer)
    for role in models:
        if role not in trace.roles:
            raise UserError(f"--model {role}=...: the run has no role '{role}'; roles: {', '.join(trace.roles)}")
    overrides = {}
    if prompts:
        used = role_prompts(trace)
        for role, path in prompts.items():
            if role not in used:
                raise UserError(f"role '{role}' made no recorded call with a prompt; roles: {', '.join(sorted(used))}")
            overrides[used[role]] = load_template_file(used[role], path)
    replay = Replay(trace, live_from=Point(live_from, live_from_call) if live_from is not None else None,
                    models=dict(models), prompts=overrides, prompt_files={r: str(p) for r, p in prompts.items()},
                    human=human)
    runtime = Runtime.from_models({}, prompts=(library or PromptLibrary()).below(*graph.prompt_dirs), traces=store,
                                  replay=replay, live=live, counter_source=live)
    try:
        return await run_graph(graph, manifest, runtime, checkpoint=live_from is not None)
    finally:
        await runtime.aclose()


def replay_stream(trace: Trace, *, stream_mode: str | Sequence[str] = "updates", subgraphs: bool = False,
                  store: TraceStore | None = None, graph: Graph[Any] | None = None,
                  library: PromptLibrary | None = None) -> RunStream:
    """A finished run replayed offline (as `replay_run` replays it, every call answered from `trace`),
    streamed: iterate the returned `RunStream` for LangGraph's chunks of `stream_mode`, in the shapes
    `Graph.astream` gives. A recorded answer comes back as one `messages` chunk (a trace keeps an
    answer's text, not its pieces); the other modes give the live run's chunks. The replay is recorded
    in `store` with its parent, as `replay_run` records it (nothing is recorded without a store)."""
    if not trace.complete:
        raise UserError(f"run {trace.run_id} did not finish: `rolegraph replay {trace.run_id}` replays what it recorded")
    manifest = trace.started.manifest
    graph = graph or find_graph(manifest)
    runtime = Runtime.from_models({}, prompts=(library or PromptLibrary()).below(*graph.prompt_dirs), traces=store,
                                  replay=Replay(trace))
    return RunStream(graph, manifest, runtime, stream_mode=stream_mode, subgraphs=subgraphs, checkpoint=False)


@dataclass
class PartialReplay:
    """What `replay_run` returns for a run that did not finish: its recorded steps replayed (each
    node's update against the recorded one) and where the run stopped."""

    run_id: str
    steps: int
    """Node steps the run recorded as finished (all of them were replayed)."""
    last_step: int | None
    """The last of them (None: no step finished)."""
    cut: str | None = None
    """The node execution that had started when the run stopped, as `node (step N)`, if any."""
    differing: list[int] = field(default_factory=list)
    """Steps whose update now differs from the recorded one."""

    @property
    def identical(self) -> bool:
        return not self.differing

    @property
    def message(self) -> str:
        if self.last_step is None:
            text = f"run {self.run_id} stopped before its first step finished (incomplete); nothing to replay"
        else:
            text = (f"run {self.run_id} stopped after step {self.last_step} (incomplete); "
                    f"replayed its {self.steps} recorded steps")
            text += ", identical" if self.identical else (
                f": step{'s' if len(self.differing) > 1 else ''} {', '.join(map(str, self.differing))} "
                "differ from the recording")
        return text + (f"; {self.cut} had started and was cut off" if self.cut else "")


async def _replay_recorded(trace: Trace, graph: Graph[Any], library: PromptLibrary,
                           redactor: Redactor | None) -> PartialReplay:
    """Replay an unfinished run up to where it stopped, into a scratch store (the run's own store
    gets no new run): every step it recorded as finished must be reached with the same update;
    where the recording ends (a model call it never made) the replay stops."""
    recorded = {e.key: e for e in trace.of_kind(NodeFinished) if e.error is None and not e.interrupts}
    started = {e.key: e for e in trace.of_kind(NodeStarted)}
    cut = next((f"{e.node} (step {e.step})" for key, e in reversed(started.items()) if key not in recorded), None)
    last = max((e.step for e in recorded.values()), default=None)
    partial = PartialReplay(trace.run_id, len(recorded), last, cut)
    if not recorded:
        return partial
    with tempfile.TemporaryDirectory(prefix="rolegraph-replay-") as scratch:
        runtime = Runtime.from_models({}, prompts=library, traces=TraceStore(scratch, redactor=redactor),
                                      replay=Replay(trace))
        stopped: RolegraphError | None = None
        try:
            await run_graph(graph, trace.started.manifest, runtime, checkpoint=False)
        except RolegraphError as exc:  # a call the recording does not hold: where the run stopped
            stopped = exc
        finally:
            await runtime.aclose()
        logs = [d for d in Path(scratch).iterdir() if (d / "events.jsonl").is_file()]
        now = {e.key: e for e in Trace.load(logs[0]).of_kind(NodeFinished)
               if e.error is None and not e.interrupts} if logs else {}
    missing = sorted((e for key, e in recorded.items() if key not in now), key=lambda e: e.step)
    if missing:  # the replay left the recorded path before the recording ended: a real mismatch
        first = missing[0]
        why = f": {stopped}" if stopped is not None else ""
        raise ReplayMismatch(f"replay of run {trace.run_id} (incomplete, stopped after step {last}): recorded step "
                             f"{first.step} ({first.node}) was not reached{why}")
    partial.differing = sorted(e.step for key, e in recorded.items()
                               if comparable(e.delta) != comparable(now[key].delta))
    return partial


async def _log_against_checkpoint(trace: Trace, graph: Graph[Any]) -> str | None:
    """Why the run's log and its LangGraph checkpoint disagree, or None when they agree: the
    checkpoint must not be past the last node the log records as finished (nodes write their
    event before LangGraph commits their step, so an intact log is never behind). A log that lost
    its tail (or a line, or was copied back from an older version) would resume with steps missing."""
    try:
        async with aiosqlite.connect(str(trace.dir / CHECKPOINTS)) as conn:
            saver = await open_saver(conn, RedactingSerde(Redactor(), types=state_types(cast(Any, graph.state_type))))
            latest = await saver.aget_tuple(cast(Any, {"configurable": {"thread_id": trace.run_id}}))
    except Exception as exc:  # noqa: BLE001 - a damaged checkpoint file, whatever the library raises
        return f"its checkpoints ({trace.dir / CHECKPOINTS}) cannot be read: {type(exc).__name__}: {one_line(exc)}"
    step = (latest.metadata or {}).get("step") if latest is not None else None
    if not isinstance(step, int) or step <= 0:  # none, or only the input: nothing a log could lack
        return None
    finished = [(s, e.key) for e in trace.of_kind(NodeFinished)
                if e.error is None and not e.interrupts and (s := _root_step(e.key)) is not None]
    log_step, key = max(finished, default=(None, None))
    if log_step is not None and log_step >= step:
        return None
    why = f"the last node it records as finished is {key} (step {log_step})" if key else "it records no finished node"
    damage = ""
    if trace.damaged:
        damage = f"; {len(trace.damaged)} damaged line{'s' if len(trace.damaged) > 1 else ''} skipped, first {trace.damaged[0]}"
    elif trace.dropped_tail:
        damage = "; its last line was cut off"
    return (f"its log and its checkpoint disagree: the checkpoint ({CHECKPOINTS}) is at step {step} of the graph, "
            f"but in the log (events.jsonl) {why}{damage}. The log lost events that the checkpoint holds, so a "
            f"resumed run would miss them; replay what was recorded (`rolegraph replay {trace.run_id}`) or run it again")


_ROOT_KEY = re.compile(r"[^>/]*@(\d+)(?:\[[^\]]*\])?(?:#\d+)?")


def _root_step(key: str) -> int | None:
    """LangGraph's step in a node execution key (`name@step[send]#n`) of the graph's own nodes
    (None for a node inside a subgraph, whose steps are the subgraph's)."""
    found = _ROOT_KEY.fullmatch(key)
    return int(found.group(1)) if found else None
