"""SPIN-Bench's classical planning task with a real planner and validator (unified-planning with
Fast Downward): load domains and instances, read an LLM's plan, validate it (naming the first
action that fails and why), measure how much of it executes (N-step look-ahead), and compare it
with Fast Downward's optimum (by total action cost where the problem minimises it, by length
elsewhere), computed once per problem and cached on disk."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from rolegraph.errors import UserError

DEFAULT_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "spinbench-pddl"
"""The shared copy of the dataset, when this checkout sits beside it; pass a path otherwise."""
_ENV_LOCK = threading.Lock()
_STEP = re.compile(r"\(\s*([A-Za-z][\w-]*)((?:\s+[\w.-]+)*)\s*\)")
Measure = Literal["cost", "length"]
"""What a plan is judged by: its total action cost or its number of steps."""


class PDDLTask(BaseModel):
    """One planning problem."""

    domain: str
    instance: str
    domain_pddl: str
    problem_pddl: str

    @property
    def key(self) -> str:
        return hashlib.sha256((self.domain_pddl + "\0" + self.problem_pddl).encode()).hexdigest()[:24]


class PlanCheck(BaseModel):
    """The verdict on one plan."""

    valid: bool
    length: int
    executable: int
    """How many steps from the start execute (all of them for a valid plan)."""
    goal_reached: bool = False
    failing_step: int | None = None
    """1-based index of the first step that cannot be read or executed."""
    failing_action: str | None = None
    reason: str = ""
    cost: float | None = None
    """A valid plan's total action cost (the sum of its grounded actions' `increase (total-cost)`
    effects, from the validator), where the problem minimises it; None elsewhere."""

    @property
    def prefix_fraction(self) -> float:
        """N-step look-ahead: the share of the plan that executes from the start."""
        return self.executable / self.length if self.length else 0.0


def find_data(path: str | Path | None = None) -> Path:
    root = Path(path) if path else DEFAULT_DATA
    if not root.is_dir():
        raise UserError(f"no PDDL dataset at {root}: pass --data with a folder of <domain>/domain.pddl "
                        "and <domain>/instances/*.pddl (SPIN-Bench's classical planning dataset)")
    return root


def load_tasks(path: str | Path | None = None, *, domains: Sequence[str] | None = None,
               per_domain: int | None = None) -> Iterator[PDDLTask]:
    """Instances in name order per domain (domains in name order), optionally only some."""
    root = find_data(path)
    names = sorted(d.name for d in root.iterdir() if (d / "domain.pddl").is_file())
    if domains:
        unknown = sorted(set(domains) - set(names))
        if unknown:
            raise UserError(f"unknown PDDL domain(s) {', '.join(unknown)}; known: {', '.join(names)}")
        names = [n for n in names if n in domains]
    for name in names:
        domain_pddl = (root / name / "domain.pddl").read_text()
        files = sorted((root / name / "instances").glob("*.pddl"))
        for f in files[:per_domain] if per_domain else files:
            yield PDDLTask(domain=name, instance=f.stem, domain_pddl=domain_pddl, problem_pddl=f.read_text())


def parse_problem(task: PDDLTask) -> Any:
    """The task as a unified-planning Problem. Works around two dataset quirks: a name used twice
    (floortile's `up`) and problem names containing '.' (grid)."""
    from unified_planning.io import PDDLReader
    from unified_planning.shortcuts import get_environment

    problem_text = re.sub(r"(\(\s*problem\s+)([^\s)]+)",
                          lambda m: m.group(1) + m.group(2).replace(".", "_"), task.problem_pddl, count=1,
                          flags=re.IGNORECASE)
    with _ENV_LOCK:
        env = get_environment()
        env.credits_stream = None
        env.error_used_name = False
        try:
            with warnings.catch_warnings():  # "Name up already defined!": expected, see above
                warnings.simplefilter("ignore", UserWarning)
                return PDDLReader(env).parse_problem_string(task.domain_pddl, problem_text)
        except Exception as exc:  # the reader raises many types; all mean the same to the user
            raise UserError(f"{task.domain}/{task.instance}: unified-planning cannot parse it: {exc}") from exc


def plan_steps(text: str) -> list[tuple[str, list[str]]]:
    """The `(action arg ...)` steps in `text`, in order (a fenced block or plain lines)."""
    return [(m.group(1).lower(), m.group(2).split()) for m in _STEP.finditer(text)]


def _instance(problem: Any, name: str, args: list[str]) -> Any:
    from unified_planning.plans import ActionInstance

    actions = {a.name.lower(): a for a in problem.actions}
    if name not in actions:
        raise ValueError(f"unknown action '{name}' (the domain has: {', '.join(sorted(actions))})")
    action = actions[name]
    if len(args) != len(action.parameters):
        raise ValueError(f"'{name}' takes {len(action.parameters)} arguments, got {len(args)}")
    objects = {o.name.lower(): o for o in problem.all_objects}
    missing = [a for a in args if a.lower() not in objects]
    if missing:
        raise ValueError(f"unknown object(s) {', '.join(missing)}")
    return ActionInstance(action, [objects[a.lower()] for a in args])


def check_plan(task: PDDLTask, text: str, *, problem: Any = None) -> PlanCheck:
    """Validate the plan in `text` with unified-planning's sequential plan validator, and find
    how far it executes with its simulator. A valid plan's `cost` is set where the problem
    minimises action costs."""
    from unified_planning.engines import ValidationResultStatus
    from unified_planning.plans import SequentialPlan

    problem = problem if problem is not None else parse_problem(task)
    steps = plan_steps(text)
    if not steps:
        return PlanCheck(valid=False, length=0, executable=0, failing_step=1, reason="no (action ...) steps found")
    instances = []
    for i, (name, args) in enumerate(steps, start=1):
        try:
            instances.append(_instance(problem, name, args))
        except ValueError as exc:
            prefix = _executable(problem, instances)
            return PlanCheck(valid=False, length=len(steps), executable=min(prefix[0], i - 1), failing_step=i,
                             failing_action=f"({name} {' '.join(args)})".replace(" )", ")"), reason=str(exc))
    plan = SequentialPlan(instances)
    result, cost = _validate_cost(problem, plan)
    executable, goal, failing, why = _executable(problem, instances)
    valid = result.status == ValidationResultStatus.VALID
    if valid:
        return PlanCheck(valid=True, length=len(steps), executable=len(steps), goal_reached=True, cost=cost)
    if failing is None:
        why = why or "; ".join(m.message for m in result.log_messages or []) or "the goal is not reached"
    return PlanCheck(valid=False, length=len(steps), executable=executable, goal_reached=goal,
                     failing_step=None if failing is None else failing + 1,
                     failing_action=None if failing is None else _show(instances[failing]), reason=why)


def measure_of(problem: Any) -> Measure:
    """The measure: "cost" where the problem's `:metric` minimises `total-cost` (unified-planning
    reads it as MinimizeActionCosts), else "length". As in Fast Downward and the IPC, the metric decides, not
    the domain: a domain that declares costs for problems without a metric (barman) is measured by
    length, and other metrics (settlersnumeric's expressions) have no optimum from this planner."""
    return "cost" if any(m.is_minimize_action_costs() for m in problem.quality_metrics) else "length"


def _validate_cost(problem: Any, plan: Any) -> tuple[Any, float | None]:
    """The validator's result for `plan`, and the plan's total action cost when it is valid and
    the problem minimises costs: the validator's metric value, which adds up each step's cost
    expression grounded with the step's arguments in the state it is applied to."""
    from unified_planning.engines import ValidationResultStatus
    from unified_planning.shortcuts import PlanValidator

    with _ENV_LOCK, PlanValidator(problem_kind=problem.kind, plan_kind=plan.kind) as validator:
        result = validator.validate(problem, plan)
    if (result.status != ValidationResultStatus.VALID or measure_of(problem) != "cost"
            or not result.metric_evaluations):
        return result, None
    (value,) = result.metric_evaluations.values()  # the validator supports one metric only
    return result, float(value)


def _show(instance: Any) -> str:
    return f"({instance.action.name} {' '.join(str(p) for p in instance.actual_parameters)})"


def _executable(problem: Any, instances: list[Any]) -> tuple[int, bool, int | None, str]:
    """(steps that execute from the start, goal reached after them, index of the first failing
    step or None, why it fails)."""
    from unified_planning.exceptions import UPInvalidActionError
    from unified_planning.model.walkers import StateEvaluator
    from unified_planning.shortcuts import SequentialSimulator

    with _ENV_LOCK, SequentialSimulator(problem=problem) as sim:
        state = sim.get_initial_state()
        for i, inst in enumerate(instances):
            if not sim.is_applicable(state, inst):
                try:
                    unmet, _ = sim.get_unsatisfied_conditions(state, inst)
                except UPInvalidActionError:  # a precondition on facts no action changes is false: grounding drops it
                    ground = dict(zip(inst.action.parameters, inst.actual_parameters, strict=True))
                    conds = [a for c in inst.action.preconditions for a in (c.args if c.is_and() else [c])]
                    conds = [c.substitute(ground) for c in conds]
                    unmet = [c for c in conds if not StateEvaluator(problem).evaluate(c, state).bool_constant_value()]
                return i, False, i, "unsatisfied precondition(s): " + ", ".join(str(c) for c in unmet)
            state = sim.apply(state, inst)
        goal = bool(sim.is_goal(state))
        return len(instances), goal, None, "" if goal else "every step executes but the goal is not reached"


class Optimum(BaseModel):
    """Fast Downward's optimum for one problem, as cached (None: not found in time)."""

    format_version: Literal[2] = 2
    """1 (no field) held only `length`: the cheapest plan's length, even where costs apply."""
    measure: Measure
    length: int | None
    """The shortest plan's length. Where costs apply it comes from a second search with every
    action costing 1, so it may be shorter than the cheapest plan."""
    cost: float | None = None
    """The cheapest plan's total cost (measure "cost" only)."""
    cost_plan_length: int | None = None
    """How many steps that cheapest plan has (measure "cost" only)."""


class OptimalCache:
    """Fast Downward's optima (`Optimum`) by problem content hash, in a JSON file, so the planner
    runs once per problem. A problem it could not solve in time is remembered as such (None).
    Entries of format 1 held only a length: they are kept where the measure is length (the number
    is still right; the problem is parsed, not searched) and searched again where it is cost."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._data: dict[str, Any] = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def get(self, task: PDDLTask, *, timeout_s: float = 60.0) -> int | None:
        """The shortest plan's length (see `optimum` for the cost)."""
        return self.optimum(task, timeout_s=timeout_s).length

    def measure(self, task: PDDLTask) -> Measure:
        """The problem's measure, from the cache or by parsing it (no search)."""
        with self._lock:
            entry = self._data.get(task.key, {})
        return entry["measure"] if "measure" in entry else measure_of(parse_problem(task))

    def optimum(self, task: PDDLTask, *, timeout_s: float = 60.0) -> Optimum:
        with self._lock:
            entry = self._data.get(task.key)
        if entry is not None and entry.get("format_version") == 2:
            return Optimum.model_validate({k: v for k, v in entry.items() if k not in ("domain", "instance")})
        if entry is not None and measure_of(parse_problem(task)) == "length":
            found = Optimum(measure="length", length=entry.get("length"))
        else:
            found = optimal_plan(task, timeout_s=timeout_s)
        with self._lock:
            self._data[task.key] = {"domain": task.domain, "instance": task.instance, **found.model_dump()}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._data, indent=1, sort_keys=True))
            tmp.replace(self.path)
        return found


def _solve(problem: Any, timeout_s: float) -> Any:
    """Fast Downward's optimal plan, or None when it finds none in time. Without a `:metric` the
    engine reports SOLVED_SATISFICING although its search is optimal, so that status is accepted
    from the optimal engine."""
    from unified_planning.engines import PlanGenerationResultStatus as S
    from unified_planning.shortcuts import OneshotPlanner

    with OneshotPlanner(name="fast-downward-opt") as planner:
        result = planner.solve(problem, timeout=timeout_s)
    if result.status in (S.SOLVED_OPTIMALLY, S.SOLVED_SATISFICING) and result.plan is not None:
        return result.plan
    return None


def optimal_plan(task: PDDLTask, *, timeout_s: float = 60.0) -> Optimum:
    """Fast Downward's optimum (optimal configuration, `timeout_s` per search). Where the problem
    minimises action costs, one search finds the cheapest plan, whose cost the validator sums as for
    any submitted plan, and a second one, on a copy without the metric (every action costs 1),
    finds the shortest; elsewhere one search finds the shortest plan, as before."""
    problem = parse_problem(task)
    if measure_of(problem) == "length":
        plan = _solve(problem, timeout_s)
        return Optimum(measure="length", length=None if plan is None else len(plan.actions))
    cheapest = _solve(problem, timeout_s)
    cost = None if cheapest is None else _validate_cost(problem, cheapest)[1]
    unit = problem.clone()
    unit.clear_quality_metrics()
    shortest = _solve(unit, timeout_s)
    return Optimum(measure="cost", length=None if shortest is None else len(shortest.actions), cost=cost,
                   cost_plan_length=None if cheapest is None else len(cheapest.actions))


def optimal_length(task: PDDLTask, *, timeout_s: float = 60.0) -> int | None:
    """The shortest plan's length, or None when Fast Downward cannot find it in time. Where the
    problem minimises action costs this is not the cheapest plan's length: see `optimal_plan`."""
    return optimal_plan(task, timeout_s=timeout_s).length
