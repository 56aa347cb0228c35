"""Runs resumed from their page with a person's answers: each goes on in a thread of its own through
`resume_run`, the code path of `rolegraph resume RUN --answer ...`, and the page shows how it ended."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolegraph.errors import UserError
from rolegraph.graphs import resume_run
from rolegraph.runtime import Runtime
from rolegraph.traces import Redactor, Trace, TraceStore


@dataclass
class ResumeJob:
    run_id: str
    state: str = "running"
    """'running', 'done' (the run ended again: ok, error or interrupted) or 'error' (the resume failed)."""
    message: str = ""


class ResumeJobs:
    """The resumes this UI started, one at most per run at a time. `live()` makes the runtime the rest
    of the run calls (one per resume, closed when it ends, as `rolegraph resume` does)."""

    def __init__(self, runs: Path, live: Callable[[], Runtime], redactor: Redactor) -> None:
        self.runs, self.live, self.redactor = runs, live, redactor
        self._jobs: dict[str, ResumeJob] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def get(self, run_id: str) -> ResumeJob | None:
        return self._jobs.get(run_id)

    def running(self, run_id: str) -> bool:
        job = self._jobs.get(run_id)
        return job is not None and job.state == "running"

    def start(self, trace: Trace, form: Mapping[str, list[str]]) -> ResumeJob:
        """Check the form's answers against the questions the run waits on (one `answer-<interrupt id>`
        field each), then resume the run in the background. A run that waits on nothing, or an answer
        left out, is a UserError before anything starts."""
        questions = trace.interrupts
        if trace.status != "interrupted" or not questions:
            raise UserError(f"run {trace.run_id} waits for no human input ({trace.status})")
        answers: dict[str, Any] = {}
        for q in questions:
            text = (form.get(f"answer-{q.id}") or [""])[0].replace("\r\n", "\n")
            if not text.strip():
                raise UserError(f"no answer for the question of step {q.step} ({q.node_key}); every question needs one")
            answers[q.id] = form_answer(text)
        with self._lock:
            if self.running(trace.run_id):
                raise UserError(f"run {trace.run_id} is already being resumed")
            job = self._jobs[trace.run_id] = ResumeJob(trace.run_id)
        thread = threading.Thread(target=self._work, args=(job, trace, answers), name=f"resume-{trace.run_id}",
                                  daemon=True)
        self._threads.append(thread)
        thread.start()
        return job

    def _work(self, job: ResumeJob, trace: Trace, answers: dict[str, Any]) -> None:
        try:
            live = self.live()

            async def go() -> Any:
                try:
                    return await resume_run(trace, store=TraceStore(self.runs, redactor=self.redactor), live=live,
                                            answer=answers)
                finally:
                    await live.aclose()

            try:
                asyncio.run(go())
            finally:
                live.close()
            job.state = "done"
        except Exception as exc:  # noqa: BLE001 - a failed resume is shown on the run's page, the server goes on
            job.message = self.redactor(f"{type(exc).__name__}: {exc}")
            job.state = "error"

    def join(self, timeout: float | None = None) -> None:
        for thread in self._threads:
            thread.join(timeout)


def form_answer(text: str) -> Any:
    """An answer typed in the form: JSON when it reads as JSON, else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
