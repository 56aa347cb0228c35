"""SPIN-Bench's classical planning task as a one-node graph: the planner reads a PDDL domain and
problem and writes a plan; the plan is validated with unified-planning (a recorded tool call)."""

from __future__ import annotations

import asyncio
from functools import lru_cache
from typing import Any

from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel

from rolegraph.agents import Agent
from rolegraph.evals.spin.pddl import PDDLTask, PlanCheck, check_plan
from rolegraph.graphs._run import GraphSpec, Prepared, run_graph
from rolegraph.runtime import Runtime
from rolegraph.traces import Manifest, RoleInfo, traced_node

NAME = "spin_pddl"
PROMPT = "spin/pddl_plan"


class PlanOptions(BaseModel):
    model_config = {"frozen": True}

    max_tokens: int = 1024


class PlanState(BaseModel):
    task: PDDLTask
    seed: int = 0
    plan: str = ""
    check: PlanCheck | None = None


class PlanResult(BaseModel):
    domain: str
    instance: str
    plan: str
    check: PlanCheck
    trace_id: str | None = None
    trace_dir: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


def build(runtime: Runtime, options: PlanOptions = PlanOptions()) -> Any:
    runtime.require_roles(["planner"])
    return _compiled(options)


@lru_cache(maxsize=8)
def _compiled(options: PlanOptions) -> Any:
    planner = Agent(name="planner", prompt=PROMPT, output=str, max_tokens=options.max_tokens, max_attempts=1)

    async def plan(state: PlanState, runtime: Runtime) -> dict[str, Any]:
        text = await planner.run(runtime, seed=state.seed, domain=state.task.domain_pddl.strip(),
                                 problem=state.task.problem_pddl.strip())

        async def validate(value: dict[str, Any]) -> dict[str, Any]:
            check = await asyncio.to_thread(check_plan, state.task, value["plan"])
            return check.model_dump()

        verdict = await runtime.call_tool("pddl.validate", validate, {"plan": text, "task": state.task.key})
        return {"plan": text, "check": PlanCheck.model_validate(verdict)}

    graph = StateGraph(PlanState)
    graph.add_node("plan", traced_node("plan", plan))
    graph.add_edge(START, "plan")
    graph.add_edge("plan", END)
    return graph.compile(name=NAME)


def _prepare(manifest: Manifest, runtime: Runtime, graph: Any) -> Prepared:
    options = PlanOptions.model_validate(manifest.options)
    return Prepared(graph if graph is not None else build(runtime, options),
                    PlanState(task=PDDLTask.model_validate(manifest.input), seed=manifest.seed or 0))


def _finish(manifest: Manifest, raw: Any, error: BaseException | None, run_id: str) -> PlanResult:
    state = PlanState.model_validate(raw)
    assert state.check is not None
    return PlanResult(domain=state.task.domain, instance=state.task.instance, plan=state.plan, check=state.check,
                      trace_id=run_id)


SPEC = GraphSpec(NAME, _prepare, _finish)


async def arun(task: PDDLTask, *, runtime: Runtime, seed: int = 0, options: PlanOptions = PlanOptions(),
               graph: Any = None) -> PlanResult:
    graph = graph if graph is not None else build(runtime, options)
    manifest = Manifest(graph=NAME, input=task.model_dump(mode="json"), options=options.model_dump(mode="json"),
                        seed=seed, prompts={PROMPT: runtime.prompts.get(PROMPT).sha256},
                        roles={"planner": RoleInfo()}, mermaid=graph.get_graph().draw_mermaid())
    result: PlanResult = await run_graph(SPEC, manifest, runtime, graph=graph)
    return result
