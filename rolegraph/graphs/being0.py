"""Being-0 as a graph: a foundation-model planner in Cradle's stages (information gathering,
self-reflection, task inference, action planning), a connector that grounds each planned call
into skills on the simulated robot, and a skill library. One run is one episode.

The planner's action is one call (`grab(object_name="cup")`) read with a small grammar and
checked against the skill library; an unreadable call goes back to the planner with the error.
The planner's history is a summary memory: step results are added as they happen, and the
summarizer folds older ones into a summary when they overflow the budget.

Ablations (options): `connector=False` makes the planner call primitive skills itself (the
paper's FM-only baseline); `active_vision=False` fixes the head; `pose_adjustment=False` skips
lining up before grasping and placing."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rolegraph.agents import Agent, OutputInvalid
from rolegraph.envs.being0 import (
    COMPOSITES,
    PRIMITIVES,
    ActionError,
    Connector,
    Options,
    World,
    default_office,
    detect,
    get_task,
    parse_action,
    reference_length,
    run_primitive,
)
from rolegraph.errors import AgentOutputError
from rolegraph.graphs._api import END, START, RunResult, StateGraph, graph
from rolegraph.models import decode_json
from rolegraph.runtime import Runtime

HISTORY_MEMORY = "being0.history"


class Being0Options(BaseModel):
    model_config = ConfigDict(frozen=True)

    connector: bool = True
    active_vision: bool = True
    pose_adjustment: bool = True
    max_steps: int = 20
    """Planner steps (action calls) before the episode is given up."""
    constrained: bool = False
    """Offer the planner its possible calls as a JSON-schema enum (for very small models)."""
    history_tokens: int = 400


class EpisodeSpec(BaseModel):
    """One episode: the graph's input (what a trace records)."""

    task: str
    """A name in rolegraph.envs.being0.TASKS."""
    seed: int = 0
    episode_id: str = ""
    """Scopes the episode's history memory; a fresh run without one gets a new id."""


class Gather(BaseModel):
    image_description: str = ""
    target_name: str = ""
    area: str = ""


class Reflect(BaseModel):
    success: bool
    reason: str = ""


class Infer(BaseModel):
    history_summary: str = ""
    subtask: str = ""


class PlanOut(BaseModel):
    reasoning: str = ""
    action: str


class StepRecord(BaseModel):
    step: int
    action: str
    ok: bool
    message: str
    skills: list[str] = Field(default_factory=list)
    """The primitive skills the connector ran for it."""
    subtask: str = ""


class EpisodeState(BaseModel):
    spec: EpisodeSpec
    world: World
    step: int = 0
    gather: Gather = Field(default_factory=Gather)
    reflection: Reflect | None = None
    infer: Infer = Field(default_factory=Infer)
    records: list[StepRecord] = Field(default_factory=list)
    frames: list[World] = Field(default_factory=list)
    planner_calls: int = 0
    done: bool = False
    started: float = 0.0


class EpisodeResult(RunResult):
    task: str
    seed: int
    options: dict[str, Any]
    success: bool
    subtasks_done: int
    subtasks_total: int
    steps: int
    """Planner steps."""
    skill_steps: int
    """Primitive skills executed."""
    distance: float
    reference_distance: float
    efficiency: float
    """Shortest route / distance walked (1.0 is perfect; 0 when the task failed)."""
    planner_calls: int
    records: list[StepRecord]
    frames: list[World] = Field(default_factory=list)
    """The world after each step (for rendering; kept out of the recorded output, the checkpoints hold it)."""


def skills_for(options: Being0Options) -> dict[str, dict[str, type]]:
    return COMPOSITES if options.connector else PRIMITIVES


def _signature(name: str, params: dict[str, type]) -> str:
    return f"{name}({', '.join(f'{k}: {t.__name__}' for k, t in params.items())})"


def candidate_calls(world: World, options: Being0Options) -> list[str]:
    """Every call worth offering in constrained mode."""
    layout = default_office()
    if not options.connector:
        out = []
        for name, params in PRIMITIVES.items():
            if "distance" in params:
                out += [f"{name}(distance={d})" for d in (0.3, 1.0, 2.0)]
            elif "angle" in params:
                angles = {"tilt_head": (-30.0, 0.0), "turn_head": (-45.0, 0.0, 45.0)}.get(name, (15.0, 45.0, 90.0))
                out += [f"{name}(angle={a})" for a in angles]
            else:
                out.append(f"{name}()")
        return out
    places = [f.name for f in layout.furniture] + [d.name for d in layout.doors]
    things = [t.name for t in world.things.values() if t.graspable]
    people = [t.name for t in world.things.values() if t.kind == "person"]
    # single quotes: llama.cpp's grammar cannot hold a double quote inside an enum choice
    return ([f"search_and_move_towards(target_name='{p}')" for p in [*places, *things, *people]]
            + [f"grab(object_name='{t}')" for t in things]
            + [f"place_on(target_name='{f.name}')" for f in layout.furniture]
            + [f"handout(person_name='{p}')" for p in people] + ["open_beer()"])


def _planner(options: Being0Options) -> Agent[PlanOut]:
    library = skills_for(options)

    def parse(text: str) -> PlanOut:
        try:
            out = PlanOut.model_validate(decode_json(text))
        except (ValueError, ValidationError):
            raise OutputInvalid('answer with a JSON object {"reasoning": ..., "action": "<one call>"}') from None
        try:
            action = parse_action(out.action, library)
        except ActionError as exc:
            raise OutputInvalid(str(exc)) from None
        return out.model_copy(update={"action": action.text()})

    return Agent(name="planner", prompt="being0/plan", output=parse, max_tokens=200)


def _call_schema(world: World, options: Being0Options) -> dict[str, Any]:
    """The planner's answer with its action one of the calls worth offering (constrained mode)."""
    return {"type": "object", "properties": {"reasoning": {"type": "string"},
                                             "action": {"type": "string", "enum": candidate_calls(world, options)}},
            "required": ["reasoning", "action"]}


def _view(world: World) -> dict[str, Any]:
    layout = default_office()
    return {"detections": "\n".join(d.text() for d in detect(layout, world)),
            "room": layout.room_of(world.robot.x, world.robot.y), "holding": world.holding or ""}


def _prepare(spec: EpisodeSpec) -> EpisodeSpec:
    get_task(spec.task)
    return spec if spec.episode_id else spec.model_copy(update={"episode_id": uuid.uuid4().hex[:12]})


def _start(spec: EpisodeSpec) -> EpisodeState:
    return EpisodeState(spec=spec, world=get_task(spec.task).world(), started=time.time())


def _finish(state: EpisodeState, options: Being0Options) -> EpisodeResult:
    task = get_task(state.spec.task)
    success = task.success(state.world)
    ref = reference_length(task)
    walked = state.world.distance
    return EpisodeResult(task=task.name, seed=state.spec.seed, options=options.model_dump(), success=success,
                         subtasks_done=task.subtask_progress(state.world), subtasks_total=len(task.subtasks),
                         steps=state.step, skill_steps=state.world.steps, distance=round(walked, 3),
                         reference_distance=round(ref, 3),
                         efficiency=round(min(1.0, ref / walked), 3) if success and walked > 0 else 0.0,
                         planner_calls=state.planner_calls, records=state.records, frames=state.frames)


@graph(input=EpisodeSpec, state=EpisodeState, result=EpisodeResult, options=Being0Options, prepare=_prepare,
       start=_start, finish=_finish, templates=("being0/_context", "memory/summary"),
       recursion_limit=lambda spec, options: options.max_steps * 3 + 10, output_exclude=("frames",))
def being0(g: StateGraph, options: Being0Options) -> None:
    """gather -> infer -> act, looped until the task is done or the steps run out."""
    gatherer = Agent(name="gather", role="planner", prompt="being0/gather", output=Gather, max_tokens=160)
    reflector = Agent(name="reflect", role="planner", prompt="being0/reflect", output=Reflect, max_tokens=100)
    inferrer = Agent(name="infer", role="planner", prompt="being0/infer", output=Infer, max_tokens=160)
    planner = _planner(options)
    library = skills_for(options)
    skills = [_signature(n, p) for n, p in library.items()]
    example = 'grab(object_name="cup")' if options.connector else "go_straight(distance=1.0)"

    async def gather(state: EpisodeState, runtime: Runtime) -> dict[str, Any]:
        task = get_task(state.spec.task)
        out = await gatherer.run(runtime, seed=state.spec.seed + state.step, instruction=task.instruction,
                                 **_view(state.world))
        update: dict[str, Any] = {"gather": out, "planner_calls": state.planner_calls + 1}
        if state.records:
            last = state.records[-1]
            update["reflection"] = await reflector.run(runtime, seed=state.spec.seed + state.step,
                                                       instruction=task.instruction, last_action=last.action,
                                                       last_result=("succeeded: " if last.ok else "failed: ") + last.message,
                                                       **_view(state.world))
            update["planner_calls"] += 1
        return update

    async def infer(state: EpisodeState, runtime: Runtime) -> dict[str, Any]:
        task = get_task(state.spec.task)
        history = runtime.memory(HISTORY_MEMORY, kind="summary", scope=state.spec.episode_id)
        text = "\n".join(i.render() for i in await history.window(options.history_tokens))
        reflection = ""
        if state.reflection is not None:
            reflection = ("it worked" if state.reflection.success else "it failed") + f": {state.reflection.reason}"
        view = _view(state.world)
        out = await inferrer.run(runtime, seed=state.spec.seed + state.step, instruction=task.instruction,
                                 past=text, description=state.gather.image_description, reflection=reflection,
                                 room=view["room"], holding=view["holding"])
        return {"infer": out, "planner_calls": state.planner_calls + 1}

    async def act(state: EpisodeState, runtime: Runtime) -> dict[str, Any]:
        task = get_task(state.spec.task)
        last = state.records[-1] if state.records else None
        agent = replace(planner, response_schema=_call_schema(state.world, options)) if options.constrained else planner
        try:
            plan = await agent.run(runtime, seed=state.spec.seed + state.step, instruction=task.instruction,
                                   subtask=state.infer.subtask or task.instruction, skills=skills, example=example,
                                   last_action=last.action if last else "",
                                   last_result=(("succeeded: " if last.ok else "failed: ") + last.message) if last else "",
                                   **_view(state.world))
            action_text: str | None = plan.action
        except AgentOutputError:  # no usable call after the retries: the step is lost, recorded as failed
            action_text = None

        async def execute(value: dict[str, Any]) -> dict[str, Any]:
            world = World.model_validate(value["world"])
            if value["action"] is None:
                return {"world": world.model_dump(mode="json"), "ok": False, "message": "no valid action", "skills": []}
            action = parse_action(value["action"], library)
            layout = default_office()
            seed = value["seed"]
            if options.connector:
                conn = Connector(layout, world, seed, Options(active_vision=options.active_vision,
                                                              pose_adjustment=options.pose_adjustment))
                report = conn.run(action)
                ok, message, steps = report.ok, report.message, conn.steps
            else:
                out = run_primitive(layout, world, action.name, action.args, seed, active_vision=options.active_vision)
                ok, message, steps = out.ok, out.message, [action.text()]
            return {"world": world.model_dump(mode="json"), "ok": ok, "message": message, "skills": steps}

        result = await runtime.call_tool("being0.skill", execute, {"action": action_text, "seed": state.spec.seed * 1000
                                                                   + state.step, "world": state.world.model_dump(mode="json")})
        world = World.model_validate(result["world"])
        record = StepRecord(step=state.step, action=action_text or "(none)", ok=result["ok"], message=result["message"],
                            skills=result["skills"], subtask=state.infer.subtask)
        history = runtime.memory(HISTORY_MEMORY, kind="summary", scope=state.spec.episode_id)
        await history.add(f"step {state.step + 1}: {record.action} -> {'ok' if record.ok else 'failed'}: {record.message}",
                          role="robot")
        done = task.success(world) or state.step + 1 >= options.max_steps
        return {"world": world, "records": [*state.records, record], "frames": [*state.frames, world],
                "step": state.step + 1, "planner_calls": state.planner_calls + 1, "done": done}

    def route(state: EpisodeState) -> str:
        return END if state.done else "gather"

    for fn in (gather, infer, act):
        g.add_node(fn)
    g.add_edge(START, "gather")
    g.add_edge("gather", "infer")
    g.add_edge("infer", "act")
    g.add_conditional_edges("act", route, ["gather", END])


async def run(task: str, *, runtime: Runtime, seed: int = 0, options: Being0Options = Being0Options()) -> EpisodeResult:
    """Run one episode of `task` (a name in rolegraph.envs.being0.TASKS), recorded."""
    result: EpisodeResult = await being0.run(EpisodeSpec(task=task, seed=seed), runtime=runtime, seed=seed,
                                             options=options)
    return result


def run_sync(task: str, *, runtime: Runtime, seed: int = 0, options: Being0Options = Being0Options()) -> EpisodeResult:
    """`run` from synchronous code."""
    return runtime.run_sync(run(task, runtime=runtime, seed=seed, options=options))
