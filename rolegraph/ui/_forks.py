"""Forks started from a page: each runs in a thread of its own through `replay_run`, the code path
of `rolegraph replay --live-from`, and reports how far it got so the page can show it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from rolegraph.errors import UserError
from rolegraph.graphs import replay_run
from rolegraph.runtime import Runtime
from rolegraph.traces import ModelCall, NodeStarted, Redactor, Trace, TraceStore, steps, write_once

PROMPTS = ".prompts"
"""Under the runs folder: prompts written in the page for forks."""


@dataclass
class ForkJob:
    id: str
    parent: str
    step: int
    changes: dict[str, str]
    """What the fork changes, as the trace records it: 'model:ROLE' / 'prompt:ROLE' -> the change."""
    started: float = field(default_factory=time.time)
    state: str = "starting"
    """'starting' (the live models are being readied), 'running', 'done' or 'error'."""
    message: str = ""
    run_id: str | None = None
    parent_steps: int = 0
    steps_done: int = 0
    replayed_calls: int = 0
    live_calls: int = 0


class ForkJobs:
    """The forks this UI started. `live()` makes the runtime a fork's live part calls (one per
    fork, closed when it ends, as `rolegraph replay` does)."""

    def __init__(self, runs: Path, live: Callable[[], Runtime], redactor: Redactor) -> None:
        self.runs, self.live, self.redactor = runs, live, redactor
        self._jobs: dict[str, ForkJob] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def get(self, job_id: str) -> ForkJob | None:
        return self._jobs.get(job_id)

    def start(self, trace: Trace, *, step: int, role: str, model: str | None, prompt: str | None,
              answer: Any = None) -> ForkJob:
        """Check the request against the trace, then start the fork in the background. A bad step or
        role is a UserError before anything starts."""
        n_steps = len(steps(trace))
        if not 0 <= step < n_steps:
            raise UserError(f"step {step} is not in run {trace.run_id} (steps 0..{n_steps - 1})")
        if (model or prompt) and not role:
            raise UserError(f"a changed model or prompt names the role it changes; roles of run {trace.run_id}: "
                            f"{', '.join(trace.roles) or 'none'}")
        if (role or model or prompt) and role not in trace.roles:
            raise UserError(f"run {trace.run_id} has no role '{role}'; roles: {', '.join(trace.roles)}")
        if prompt:
            try:
                jinja2.Environment(autoescape=False).parse(prompt)
            except jinja2.TemplateSyntaxError as exc:
                raise UserError(f"the prompt template for '{role}', line {exc.lineno}: {exc.message}") from None
        prompt_file = self.save_prompt(prompt) if prompt else None
        changes = {**({f"model:{role}": model} if model else {}),
                   **({f"prompt:{role}": str(prompt_file)} if prompt_file else {}),
                   **({"answer:*": self.redactor(json.dumps(answer))} if answer is not None else {})}
        job = ForkJob(id=os.urandom(6).hex(), parent=trace.run_id, step=step, changes=changes, parent_steps=n_steps)
        with self._lock:
            self._jobs[job.id] = job
        thread = threading.Thread(target=self._work, args=(job, trace, role, model, prompt_file, answer), name=f"fork-{job.id}",
                                  daemon=True)
        self._threads.append(thread)
        thread.start()
        return job

    def _work(self, job: ForkJob, trace: Trace, role: str, model: str | None, prompt_file: Path | None,
              answer: Any = None) -> None:
        try:
            prompts = {role: str(prompt_file)} if prompt_file else {}
            live = self.live()
            job.state = "running"

            async def go() -> Any:
                try:
                    return await replay_run(trace, store=_Watched(self.runs, job, redactor=self.redactor), live=live,
                                            live_from=job.step, models={role: model} if model else {}, prompts=prompts,
                                            answer=answer)
                finally:
                    await live.aclose()

            try:
                result = asyncio.run(go())
            finally:
                live.close()
            job.run_id = getattr(result, "run_id", None) or job.run_id
            self.update(job)
            job.state = "done"
        except Exception as exc:  # noqa: BLE001 - a failed fork is shown on its page, the server goes on
            job.message = self.redactor(f"{type(exc).__name__}: {exc}")
            job.state = "error"

    def save_prompt(self, text: str) -> Path:
        """A prompt written in the page, kept as `<runs>/.prompts/<sha256>.j2`: the fork's trace names
        that file as its change, so `rolegraph replay --live-from N --prompt ROLE=FILE` can redo it."""
        text = self.redactor(text)
        folder = self.runs / PROMPTS
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{hashlib.sha256(text.encode()).hexdigest()[:16]}.j2"
        write_once(path, text)
        return path

    def update(self, job: ForkJob) -> ForkJob:
        """Read the fork's own trace (once it has one) for how far it got."""
        if job.run_id and (self.runs / job.run_id / "events.jsonl").is_file():
            new = Trace.load(self.runs / job.run_id)
            job.steps_done = sum(1 for e in new.events if isinstance(e, NodeStarted))
            calls = new.of_kind(ModelCall)
            job.replayed_calls = sum(1 for c in calls if c.replayed)
            job.live_calls = len(calls) - job.replayed_calls
        return job

    def join(self, timeout: float | None = None) -> None:
        for thread in self._threads:
            thread.join(timeout)


class _Watched(TraceStore):
    """The fork's trace store: tells its job the new run's id as soon as the run starts."""

    def __init__(self, root: Path, job: ForkJob, *, redactor: Redactor) -> None:
        super().__init__(root, redactor=redactor)
        self.job = job

    def writer(self, run_id: str) -> Any:
        self.job.run_id = run_id
        return super().writer(run_id)
