"""SPIN-Bench's classical planning task as a one-node graph: the planner reads a PDDL domain and
problem and writes a plan; the plan is validated with unified-planning (a recorded tool call)."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel

from rolegraph.agents import Agent
from rolegraph.envs.spin.pddl import PDDLTask, PlanCheck, check_plan
from rolegraph.graphs._api import END, START, RunResult, StateGraph, graph
from rolegraph.runtime import Runtime

PROMPT = "spin/pddl_plan"


class PlanOptions(BaseModel):
    model_config = {"frozen": True}

    max_tokens: int = 1024


class PlanState(BaseModel):
    task: PDDLTask
    seed: int = 0
    plan: str = ""
    check: PlanCheck | None = None


class PlanResult(RunResult):
    domain: str
    instance: str
    plan: str
    check: PlanCheck


def _finish(state: PlanState) -> PlanResult:
    assert state.check is not None
    return PlanResult(domain=state.task.domain, instance=state.task.instance, plan=state.plan, check=state.check)


@graph(input=PDDLTask, state=PlanState, result=PlanResult, options=PlanOptions,
       start=lambda task, seed: PlanState(task=task, seed=seed), finish=_finish)
def spin_pddl(g: StateGraph, options: PlanOptions) -> None:
    """plan: the planner writes a plan, then it is validated (a recorded tool call)."""
    planner = Agent(name="planner", prompt=PROMPT, output=str, max_tokens=options.max_tokens, max_attempts=1)

    async def plan(state: PlanState, runtime: Runtime) -> dict[str, Any]:
        text = await planner.run(runtime, seed=state.seed, domain=state.task.domain_pddl.strip(),
                                 problem=state.task.problem_pddl.strip())

        async def validate(value: dict[str, Any]) -> dict[str, Any]:
            check = await asyncio.to_thread(check_plan, state.task, value["plan"])
            return check.model_dump()

        verdict = await runtime.call_tool("pddl.validate", validate, {"plan": text, "task": state.task.key})
        return {"plan": text, "check": PlanCheck.model_validate(verdict)}

    g.add_node(plan)
    g.add_edge(START, "plan")
    g.add_edge("plan", END)


run, run_sync = spin_pddl.run, spin_pddl.run_sync
