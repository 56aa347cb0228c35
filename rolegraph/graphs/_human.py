"""Human input: the questions a run stops at (LangGraph's `interrupt(value)`), who answers them (a
person resuming the run, the trace in a replay, a fork's changed answer, an evaluation's scripted
answers), and each answer recorded in the run's own trace so a replay can give it again."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from rolegraph._langgraph import INTERRUPT
from rolegraph.errors import HumanInputNeeded, InputError, UserError
from rolegraph.traces import HumanInput, PendingInterrupt, Replay, RunContext, Trace, asked, human_input

if TYPE_CHECKING:
    from rolegraph.graphs._api import RunPlan
    from rolegraph.graphs._result import RunResult

MAX_ROUNDS = 100
"""The most times an evaluation case is resumed with scripted answers (a graph asking forever stops)."""


class Questions:
    """The questions one run's stream stopped at, and whether the run goes on: in a replay (or the
    replayed part of a fork) each is answered from the trace, in a fork's live part by its given
    answer; one that nothing answers leaves the run `interrupted`, waiting for a person."""

    def __init__(self, run: RunContext, replay: Replay | None) -> None:
        self.run, self.replay = run, replay
        self._seen: dict[str, Any] = {}
        self._live_stops = 0

    def saw(self, update: Any) -> None:
        """Note the interrupts in one top-level "updates" chunk of the stream."""
        if isinstance(update, dict) and INTERRUPT in update:
            for interrupt in update[INTERRUPT] or ():
                self._seen.setdefault(interrupt.id, interrupt)

    def checkpointed(self, compiled: Any) -> Any:
        """`compiled`, with a checkpointer of its own when a run kept in memory may be answered and go
        on (a replay of a run that asked questions): LangGraph continues a run only from a checkpoint."""
        if self.replay is None or not any(isinstance(e, HumanInput) for e in self.replay.trace.events):
            return compiled
        return compiled.copy(update={"checkpointer": InMemorySaver()})

    def resumed(self) -> Command[Any] | None:
        """How a resumed run starts: with the answers its resume was given to the questions it waits on
        (each recorded), or None (a killed run continues from its checkpoint as it was)."""
        given = self.replay.human if self.replay is not None else {}
        questions = [self.run.asked[key] for key in given if key in self.run.asked]
        if not questions:
            return None
        for q in questions:
            human_input(self.run, q, given[q.id])
        return Command(resume={q.id: given[q.id] for q in questions})

    def next_start(self) -> Command[Any] | None:
        """After the stream ended: the answers to the questions it stopped at, recorded, as the input
        that goes on (a replay's); None when it did not stop at a question, or when one is not
        answered (the run then ends `interrupted`, with those questions in `run.pending`)."""
        questions = [asked(self.run, i) for i in self._seen.values()]
        self._seen = {}
        if not questions:
            return None
        live = self.replay is not None and any(not self.replay.answers(q.step) for q in questions)
        found = [self.replay.human_answer(q, first_stop=self._live_stops == 0) if self.replay is not None
                 else (False, None) for q in questions]
        self._live_stops += live
        if not all(ok for ok, _ in found):
            self.run.pending = questions
            return None
        for q, (_, answer) in zip(questions, found, strict=True):
            human_input(self.run, q, answer, replayed=self.replay is not None and self.replay.answers(q.step)
                        and not self.replay.fill_gaps)
        return Command(resume={q.id: answer for q, (_, answer) in zip(questions, found, strict=True)})


def paused_result(plan: RunPlan[Any], final: Any, run_id: str, pending: list[PendingInterrupt]) -> Any:
    """The result of a run that stopped at questions: what the graph makes of its state so far (its
    `finish` hook, or the state's fields), or, when the state cannot make a result yet (a field the rest
    of the run fills), the result type's defaults; `status="interrupted"` and the questions."""
    try:
        result: RunResult = plan.finish(final, None, run_id)
    except Exception:  # noqa: BLE001 - a paused run's partial state need not make a whole result
        result = plan.graph.result_type.model_construct(run_id=run_id)
    result.status = "interrupted"
    result.interrupts = list(pending)
    return result


def answers_by_id(trace: Trace, answer: Any) -> dict[str, Any]:
    """The answer a resume was given, as interrupt id -> answer for the questions `trace`'s run waits
    on: the answer itself when it waits on one (a dict too, unless keyed by that question's interrupt
    id); for several, `{key: answer}` by interrupt id, node execution key (as `trace show` prints it)
    or node name, one for every question; or LangGraph's `Command(resume=...)` holding either. A
    UserError says what is missing."""
    questions = trace.interrupts
    if isinstance(answer, Command):
        if answer.update is not None or answer.goto:
            raise UserError("a resume takes Command(resume=...) only: its answer; update and goto are not applied")
        answer = answer.resume
    if not questions:
        raise UserError(f"run {trace.run_id} waits on no question ({trace.status}); resume it without an answer")
    listing = "; ".join(_described(q) for q in questions)
    keyed = (all(str(k) == questions[0].id for k in answer) if len(questions) == 1
             else all(_matching(str(k), questions) for k in answer)) if isinstance(answer, Mapping) else False
    if isinstance(answer, Mapping) and answer and keyed:
        by_id: dict[str, Any] = {}
        for key, value in answer.items():
            for q in _matching(str(key), questions):
                by_id[q.id] = value
        missing = [q for q in questions if q.id not in by_id]
        if missing:
            raise UserError(f"run {trace.run_id}: no answer for {len(missing)} of its {len(questions)} questions: "
                            + "; ".join(_described(q) for q in missing) + ". Answer each by its id: "
                            + '{"ID": answer, ...}')
        return by_id
    if len(questions) == 1:
        return {questions[0].id: answer}
    raise UserError(f"run {trace.run_id} waits on {len(questions)} questions: {listing}. Give one answer per "
                    'question, by its id (or its node): {"ID": answer, ...}')


def _matching(key: str, questions: list[PendingInterrupt]) -> list[PendingInterrupt]:
    return [q for q in questions if key in (q.id, q.node_key, q.node)]


def _described(q: PendingInterrupt) -> str:
    where = f"step {q.step}, {q.node_key}" if q.step >= 0 else "no traced node"
    return f"{q.id} ({where}): {json.dumps(q.value, default=str)[:200]}"


def answer_text(text: str) -> Any:
    """An answer given on a command line or in a form: JSON when it reads as JSON (`true`, `3`,
    `{"ok": true}`, `"yes"`), else the text itself (`yes`)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def answer_file(path: Path) -> Any:
    """`--answer-file F`: the answer as the file's JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"--answer-file {path}: cannot read it ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not JSON ({exc})", path=str(path)) from None


def fork_answers(trace: Trace, live_from: int | None, answer: Any) -> dict[str, Any]:
    """A fork's changed answer as `Replay.human`: the answer to the first questions its live part asks;
    or, keyed by node execution keys (`{"review@3[1]": answer}`, as `trace show` prints them), the
    answers to those executions' questions there. The recorded run must have asked a question at or
    after the fork point."""
    from rolegraph.traces import ANY_QUESTION

    if answer is None:
        return {}
    if live_from is None:
        raise UserError("--answer changes a human answer in the live part of a fork: give --live-from STEP too")
    later = [e.interrupt for e in trace.of_kind(HumanInput) if e.interrupt.step >= live_from]
    later += [q for q in trace.interrupts if q.step >= live_from]
    if not later:
        raise UserError(f"run {trace.run_id} asked no question at or after step {live_from}; the questions it "
                        "asked: " + (", ".join(f"step {e.interrupt.step} ({e.interrupt.node_key})"
                                               for e in trace.of_kind(HumanInput)) or "none"))
    if isinstance(answer, Mapping) and answer and all(any(str(k) == q.node_key for q in later) for k in answer):
        return {str(k): v for k, v in answer.items()}
    return {ANY_QUESTION: answer}


# -- scripted answers for evaluations ----------------------------------------------------------------

_RULE_KEYS = frozenset({"case", "node", "question", "answer"})


@dataclass(frozen=True)
class AnswerBook:
    """Scripted answers to the questions an evaluated graph asks (`rolegraph eval ... --answers FILE`).

    The file is JSONL, one rule a line: `{"answer": A}` with any of `"case"` (a case id), `"node"` (the
    node that asks) and `"question"` (the value it gave `interrupt()`, equal as JSON). A question takes
    the answer of the first rule whose keys all match it, so specific rules go first:

        {"case": "refund-7", "answer": "no"}
        {"question": "Approve the plan?", "answer": "yes"}
        {"node": "review", "answer": {"ok": true}}
    """

    rules: tuple[dict[str, Any], ...]
    source: str = ""

    @classmethod
    def load(cls, path: str | Path) -> AnswerBook:
        """Read a rules file; a line that is no rule is an InputError naming the file, line and field."""
        from rolegraph._inputs import jsonl_objects

        rules: list[dict[str, Any]] = []
        for line_no, row in jsonl_objects(Path(path)):
            unknown = sorted(set(row) - _RULE_KEYS)
            if unknown:
                raise InputError(f"unknown key {unknown[0]!r}; a rule has {', '.join(sorted(_RULE_KEYS))}",
                                 path=str(path), line=line_no, field=unknown[0])
            if "answer" not in row:
                raise InputError("a rule needs an answer", path=str(path), line=line_no, field="answer")
            rules.append(row)
        if not rules:
            raise InputError("no answers in the file", path=str(path))
        return cls(tuple(rules), str(path))

    def answer(self, case_id: str, question: PendingInterrupt) -> tuple[bool, Any]:
        """`(True, answer)` from the first rule matching `question` asked in case `case_id`; else `(False, None)`."""
        for rule in self.rules:
            if "case" in rule and str(rule["case"]) != case_id:
                continue
            if "node" in rule and rule["node"] not in (question.node, question.node_key):
                continue
            if "question" in rule and _json(rule["question"]) != _json(question.value):
                continue
            return True, rule["answer"]
        return False, None

    def answers(self, case_id: str, questions: Iterable[PendingInterrupt], run_id: str | None) -> dict[str, Any]:
        """Interrupt id -> answer for every question; HumanInputNeeded naming those no rule answers."""
        found: dict[str, Any] = {}
        missing: list[PendingInterrupt] = []
        for q in questions:
            ok, value = self.answer(case_id, q)
            if ok:
                found[q.id] = value
            else:
                missing.append(q)
        if missing:
            raise HumanInputNeeded(f"case {case_id}: run {run_id} stopped at a question no rule of {self.source} "
                                   "answers: " + "; ".join(_described(q) for q in missing), run_id=run_id)
        return found


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def unanswered(case_id: str, result: RunResult) -> HumanInputNeeded:
    """The failure of an evaluation case whose run stopped at questions and was given no answers."""
    return HumanInputNeeded(f"case {case_id}: run {result.run_id} stopped for human input ("
                            + "; ".join(_described(q) for q in result.interrupts)
                            + "); give scripted answers with --answers FILE", run_id=result.run_id)
