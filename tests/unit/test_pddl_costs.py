"""PDDL optimality where actions have costs: the cheapest plan is not the shortest, a plan is
scored by cost there and by length elsewhere, and old (length-only) cache entries still load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("unified_planning", reason="unified-planning is not installed (pip install unified-planning)")
pytest.importorskip("up_fast_downward", reason="the Fast Downward wheel is not installed (pip install up-fast-downward)")

from rolegraph.envs.spin.pddl import OptimalCache, PDDLTask, check_plan, optimal_length
from rolegraph.evals import Case
from rolegraph.evals.spin._bench import PlanOptimality

# home -> town: a direct flight (1 step, cost 10) or a drive through mid (2 steps, cost 1 + 1)
DOMAIN = """(define (domain toll)
 (:requirements :strips :typing :action-costs)
 (:types place)
 (:predicates (at ?p - place) (road ?a ?b - place) (air ?a ?b - place))
 (:functions (total-cost) - number)
 (:action drive :parameters (?a ?b - place) :precondition (and (at ?a) (road ?a ?b))
  :effect (and (not (at ?a)) (at ?b) (increase (total-cost) 1)))
 (:action fly :parameters (?a ?b - place) :precondition (and (at ?a) (air ?a ?b))
  :effect (and (not (at ?a)) (at ?b) (increase (total-cost) 10))))
"""
PROBLEM = """(define (problem trip)
 (:domain toll)
 (:objects home mid town - place)
 (:init (= (total-cost) 0) (at home) (road home mid) (road mid town) (air home town))
 (:goal (at town))
 (:metric minimize (total-cost)))
"""
FLY, DRIVE = "(fly home town)", "(drive home mid)\n(drive mid town)"


def costed() -> PDDLTask:
    return PDDLTask(domain="toll", instance="trip", domain_pddl=DOMAIN, problem_pddl=PROBLEM)


def uncosted() -> PDDLTask:
    domain = DOMAIN.replace(" :action-costs", "").replace(" (:functions (total-cost) - number)\n", "")
    domain = domain.replace(" (increase (total-cost) 1)", "").replace(" (increase (total-cost) 10)", "")
    problem = PROBLEM.replace(" (= (total-cost) 0)", "").replace("\n (:metric minimize (total-cost))", "")
    return PDDLTask(domain="free", instance="trip", domain_pddl=domain, problem_pddl=problem)


def case_of(task: PDDLTask) -> Case:
    return Case(id=f"{task.domain}/{task.instance}", input=task.model_dump(mode="json"))


async def score(scorer: PlanOptimality, task: PDDLTask, plan: str, *, drop_cost: bool = False) -> tuple[float, dict[str, Any]]:
    check = check_plan(task, plan).model_dump()
    if drop_cost:  # as recorded before plans carried their cost
        del check["cost"]
    s = await scorer(case_of(task), {"check": check, "plan": plan})
    return s.value, s.metadata | {"explanation": s.explanation}


def test_plan_cost_is_the_sum_of_its_actions_costs() -> None:
    fly, drive = check_plan(costed(), FLY), check_plan(costed(), DRIVE)
    assert fly.valid and fly.length == 1 and fly.cost == 10
    assert drive.valid and drive.length == 2 and drive.cost == 2
    assert check_plan(uncosted(), FLY).cost is None


def test_optimum_by_cost_with_the_length_apart(tmp_path: Path) -> None:
    cache = OptimalCache(tmp_path / "opt.json")
    opt = cache.optimum(costed())
    assert (opt.measure, opt.cost, opt.cost_plan_length, opt.length) == ("cost", 2, 2, 1)
    assert cache.get(costed()) == 1 == optimal_length(costed())  # the shortest plan, not the cheapest one's
    assert cache.optimum(uncosted()).model_dump(exclude={"format_version"}) == {
        "measure": "length", "length": 1, "cost": None, "cost_plan_length": None}
    entry = json.loads((tmp_path / "opt.json").read_text())[costed().key]
    assert entry["format_version"] == 2 and entry["cost"] == 2


async def test_scores_by_cost_where_costs_apply_and_by_length_elsewhere(tmp_path: Path) -> None:
    scorer = PlanOptimality(OptimalCache(tmp_path / "opt.json"))
    value, meta = await score(scorer, costed(), FLY)  # valid, shortest, but 5 times the cheapest cost
    assert value == pytest.approx(0.2) and meta["measure"] == "cost"
    assert (meta["cost"], meta["optimal_cost"], meta["cost"] / meta["optimal_cost"]) == (10, 2, 5)
    assert (meta["length"], meta["optimal_length"], meta["length_ratio"]) == (1, 1, 1.0)
    assert meta["explanation"] == "cost 10, optimum 2 (in 2 steps); 1 steps, shortest 1"
    value, meta = await score(scorer, costed(), DRIVE)
    assert value == 1.0 and meta["length_ratio"] == 0.5
    assert (await score(scorer, costed(), FLY, drop_cost=True))[0] == pytest.approx(0.2)  # old record: recomputed
    value, meta = await score(scorer, uncosted(), DRIVE)
    assert value == 0.5 and meta["measure"] == "length" and meta["optimal"] == 1 and "cost" not in meta
    invalid = await scorer(case_of(costed()), {"check": check_plan(costed(), "(fly mid town)").model_dump(),
                                               "plan": "(fly mid town)"})
    assert invalid.value == 0.0 and invalid.metadata["measure"] == "cost"


def test_length_only_cache_entries_are_kept_or_searched_again(tmp_path: Path) -> None:
    path = tmp_path / "opt.json"
    old = {t.key: {"domain": t.domain, "instance": t.instance, "length": 7} for t in (costed(), uncosted())}
    path.write_text(json.dumps(old))
    cache = OptimalCache(path)
    # no costs: the old length still holds and is kept without a search (7 is not the real optimum)
    assert cache.optimum(uncosted(), timeout_s=0.001).length == 7
    opt = cache.optimum(costed())  # costs: the entry held no cost, so it is searched again
    assert (opt.cost, opt.length) == (2, 1)
    assert {e["format_version"] for e in json.loads(path.read_text()).values()} == {2}
