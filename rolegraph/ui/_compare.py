"""What the side-by-side pages show: two runs aligned step by step with their first divergence and
line diffs, and two evaluations of one benchmark paired case by case."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from rolegraph.evals import EvalStore
from rolegraph.evals.metrics import PairedComparison, paired_comparison
from rolegraph.traces import (
    Divergence,
    ModelCall,
    StepSummary,
    Trace,
    first_divergence,
    request_lines,
    same_request,
    state_differences,
    steps,
)

CONTEXT = 3
"""Equal lines kept around each change in a diff."""


@dataclass
class DiffLine:
    tag: str
    """'equal', 'replace', 'delete', 'insert' (difflib's opcodes) or 'skip' (equal lines left out)."""
    left: str
    right: str


def diff_lines(left: list[str], right: list[str], *, context: int = CONTEXT) -> list[DiffLine]:
    """Two texts as aligned rows, changed rows marked, long equal stretches cut to `context` lines."""
    out: list[DiffLine] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=left, b=right, autojunk=False).get_opcodes():
        a, b = left[i1:i2], right[j1:j2]
        if tag == "equal":
            if len(a) > 2 * context + 1:
                head, tail = a[:context], a[-context:]
                out += [DiffLine("equal", x, x) for x in head]
                out.append(DiffLine("skip", f"… {len(a) - 2 * context} equal lines …", ""))
                out += [DiffLine("equal", x, x) for x in tail]
            else:
                out += [DiffLine("equal", x, x) for x in a]
            continue
        for k in range(max(len(a), len(b))):
            out.append(DiffLine(tag, a[k] if k < len(a) else "", b[k] if k < len(b) else ""))
    return out


@dataclass
class CallPair:
    index: int
    role: str
    left: ModelCall | None
    right: ModelCall | None
    same_request: bool
    same_answer: bool
    request_diff: list[DiffLine] = field(default_factory=list)
    answer_diff: list[DiffLine] = field(default_factory=list)


@dataclass
class StepPair:
    step: int
    left: StepSummary | None
    right: StepSummary | None
    calls: list[CallPair]
    same: bool
    first_divergence: bool = False


@dataclass
class RunComparison:
    a: Trace
    b: Trace
    rows: list[StepPair]
    divergence: Divergence | None
    divergence_diff: list[DiffLine]
    states: list[tuple[str, str, str]]


def answer_text(call: ModelCall) -> str:
    if call.response is None:
        return f"(error) {call.error}"
    text = call.response.text
    if call.response.tool_calls:
        text += "".join(f"\n{tc.name}({tc.arguments})" for tc in call.response.tool_calls)
    return text


def compare_runs(a: Trace, b: Trace) -> RunComparison:
    """A's and B's steps in two aligned columns (by step number); a row is 'same' when the same
    node made the same requests and got the same answers."""
    sa, sb = steps(a), steps(b)
    divergence = first_divergence(a, b)
    rows: list[StepPair] = []
    for i in range(max(len(sa), len(sb))):
        x = sa[i] if i < len(sa) else None
        y = sb[i] if i < len(sb) else None
        calls: list[CallPair] = []
        cx, cy = (x.calls if x else []), (y.calls if y else [])
        for k in range(max(len(cx), len(cy))):
            p = cx[k] if k < len(cx) else None
            q = cy[k] if k < len(cy) else None
            same = p is not None and q is not None and same_request(p, q)
            same_answer = p is not None and q is not None and answer_text(p) == answer_text(q)
            either = p or q
            assert either is not None  # k is below the longer list's length
            pair = CallPair(k, either.role, p, q, same, same_answer)
            if not same:
                pair.request_diff = diff_lines(request_lines(p.request) if p else [], request_lines(q.request) if q else [])
            if not same_answer:
                pair.answer_diff = diff_lines(answer_text(p).splitlines() if p else [],
                                              answer_text(q).splitlines() if q else [])
            calls.append(pair)
        same = (x is not None and y is not None and x.node == y.node
                and all(c.same_request and c.same_answer for c in calls))
        side = x or y
        assert side is not None  # i is below the longer list's length
        rows.append(StepPair(side.step, x, y, calls, same))
    if divergence is not None:
        for row in rows:
            if row.step == divergence.step:
                row.first_divergence = True
                break
    div_diff = diff_lines(divergence.left, divergence.right) if divergence else []
    return RunComparison(a, b, rows, divergence, div_diff, state_differences(a, b))


@dataclass
class FlippedCase:
    case_id: str
    a: float
    b: float
    a_trace: str | None
    b_trace: str | None


@dataclass
class EvalComparison:
    a: EvalStore
    b: EvalStore
    scorer: str
    paired: PairedComparison
    flipped: list[FlippedCase]
    only_a: int
    only_b: int


def shared_scorers(a: EvalStore, b: EvalStore) -> list[str]:
    """The scorers both evaluations have scored results of (what a comparison compares by default)."""
    return sorted(set(a.headline()) & set(b.headline()))


def compare_evals(a: EvalStore, b: EvalStore, scorer: str) -> EvalComparison:
    """The paired comparison of B against A on the cases both scored (ValueError when none), and
    the cases whose score changed — for 0/1 scores, the ones that flipped."""
    sa, sb = a.case_scores(scorer), b.case_scores(scorer)
    paired = paired_comparison(sa, sb)
    ta, tb = _first_traces(a), _first_traces(b)
    flipped = [FlippedCase(c, sa[c], sb[c], ta.get(c), tb.get(c)) for c in sorted(sa.keys() & sb.keys())
               if sa[c] != sb[c]]
    return EvalComparison(a, b, scorer, paired, flipped, len(sa.keys() - sb.keys()), len(sb.keys() - sa.keys()))


def _first_traces(store: EvalStore) -> dict[str, str]:
    """Case -> the trace of its first ok repeat (the run a flipped case opens)."""
    out: dict[str, str] = {}
    for r in store.records():
        if r.status == "ok" and r.run_id and r.case_id not in out:
            out[r.case_id] = r.run_id
    return out


def preview(value: Any, width: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
