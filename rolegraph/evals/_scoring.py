"""One scorer shape for `rolegraph eval`, `eval compare`, `blame` and `fork-compare`: a function
`fn(output, target)` that may also ask for `case`, `input` and `result` by name, adapted here to the
Scorer protocol, so the same function works in all four."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from rolegraph.errors import UserError
from rolegraph.evals._core import Case, Score, Scorer

EXTRAS = ("case", "input", "result")
"""What a scorer may ask for by name, beside `output` and `target`."""
_BY_NAME = ("output", "target", *EXTRAS)
_ANY_NAME = ("output", "target")
"""What a scorer's first and second positional parameters get, whatever they are called."""


class FunctionScorer:
    """A plain function as a scorer (the Scorer protocol), called the same way everywhere:

    - its first two positional parameters get the output and the case's target, whatever they are
      called (`fn(output, target)`, `fn(answer, expected)`, `fn(output)`);
    - a parameter named `output`, `target`, `case`, `input` or `result` gets that value by name;
      `result` is the graph's result object (blame and fork-compare have it; an evaluation scores
      `output`, the same result as a dict), `**kwargs` gets every extra there is;
    - it returns a bool, a number, a `Score` or `{"value": ...}`, and may be async.
    """

    def __init__(self, fn: Callable[..., Any], name: str | None = None) -> None:
        self.fn = fn
        self.name: str = name or str(getattr(fn, "__name__", "score"))
        self._slots: list[tuple[str, str, bool]] = []
        """(parameter, the value it gets, passed by keyword) for each parameter filled."""
        self._var_keyword = False
        self._bind(fn)

    def _bind(self, fn: Callable[..., Any]) -> None:
        try:
            params = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):  # a builtin without a signature: fn(output, target)
            self._slots = [("output", "output", False), ("target", "target", False)]
            return
        named = {p.name for p in params if p.name in _BY_NAME and p.kind is not p.VAR_POSITIONAL}
        free = [v for v in _ANY_NAME if v not in named]
        for p in params:
            # by keyword wherever the parameter allows it: a defaulted parameter between two filled
            # ones is then left alone
            keyword = p.kind is not p.POSITIONAL_ONLY
            if p.kind is p.VAR_KEYWORD:
                self._var_keyword = True
            elif p.kind is p.VAR_POSITIONAL:
                continue
            elif p.name in _BY_NAME:
                self._slots.append((p.name, p.name, keyword))
            elif p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and free:
                self._slots.append((p.name, free.pop(0), keyword))
            elif p.default is p.empty:
                raise UserError(
                    f"scorer {self.name}: parameter '{p.name}' is not one rolegraph passes; a scorer is "
                    "fn(output, target) and may ask by name for " + ", ".join(EXTRAS))

    @property
    def wants_result(self) -> bool:
        """Whether it asks for the graph's result object by name (evaluations score `output`)."""
        return any(value == "result" for _, value, _ in self._slots)

    async def __call__(self, case: Case, output: Any, *, result: Any = None) -> Score:
        given = {"output": output, "target": case.target, "case": case, "input": case.input, "result": result}
        args = [given[value] for _, value, keyword in self._slots if not keyword]
        kwargs = {param: given[value] for param, value, keyword in self._slots if keyword}
        if self._var_keyword:
            kwargs.update({k: given[k] for k in EXTRAS if k not in kwargs and (k != "result" or result is not None)})
        value = self.fn(*args, **kwargs)
        if inspect.isawaitable(value):
            value = await value
        return as_score(value, self.name)


def as_score(value: Any, name: str) -> Score:
    """What a scorer returned as a Score: a Score, `{"value": ...}`, a bool or a number."""
    if isinstance(value, Score):
        return value
    if isinstance(value, dict):
        return Score.model_validate(value)
    if isinstance(value, (bool, int, float)):
        return Score(value=float(value))
    raise UserError(f"scorer {name} returned {type(value).__name__}; return a number, a bool or a Score")


def as_scorer(obj: Any, ref: str = "") -> Scorer:
    """A Scorer (an object with a `name`, called as `(case, output)`) as it is, a function wrapped
    as a FunctionScorer."""
    if isinstance(obj, FunctionScorer):
        return obj
    if hasattr(obj, "name") and callable(obj) and not inspect.isfunction(obj) and not inspect.ismethod(obj):
        return obj  # type: ignore[no-any-return]
    if not callable(obj):
        raise UserError(f"scorer {ref or obj!r} is not callable")
    return FunctionScorer(obj)


def load_scorer(ref: str) -> Scorer:
    """`module:fn` or `FILE.py:fn`: a Scorer (with a `name`) as it is, a function wrapped."""
    from rolegraph.evals._any import load_function

    return as_scorer(load_function(ref), ref)


async def score_result(scorer: Scorer, case: Case, output: Any, result: Any) -> float:
    """One graph result's score in [0, 1] (blame and fork-compare): a FunctionScorer also gets the
    result object if it asks for it. A scorer that fails or returns more than 1 is a UserError
    naming it."""
    try:
        score = await (scorer(case, output, result=result) if isinstance(scorer, FunctionScorer)
                       else scorer(case, output))
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"scorer {scorer.name} failed on run {getattr(result, 'run_id', None) or '?'}: "
                        f"{type(exc).__name__}: {exc} (it was given output=the result as a dict, "
                        f"target={case.target!r})") from exc
    if not 0.0 <= score.value <= 1.0:
        raise UserError(f"scorer {scorer.name} returned {score.value}; it must return a bool or a score in [0, 1]")
    return score.value
