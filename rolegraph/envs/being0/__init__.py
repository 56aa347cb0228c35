"""Being-0's world: a simulated office with a humanoid's pose, active head camera and detector,
its skill library and action grammar, the connector's composite skills, and long-horizon tasks."""

from rolegraph.envs.being0._connector import Connector, Options, Report
from rolegraph.envs.being0._scripted import PLANS, scripted_planner
from rolegraph.envs.being0._skills import COMPOSITES, PRIMITIVES, Action, ActionError, parse_action, run_primitive
from rolegraph.envs.being0._tasks import TASKS, Task, get_task, reference_length
from rolegraph.envs.being0._world import Detection, Layout, Pose, Thing, World, default_office, detect, top_down

__all__ = [
    "COMPOSITES",
    "PLANS",
    "PRIMITIVES",
    "TASKS",
    "Action",
    "ActionError",
    "Connector",
    "Detection",
    "Layout",
    "Options",
    "Pose",
    "Report",
    "Task",
    "Thing",
    "World",
    "default_office",
    "detect",
    "get_task",
    "parse_action",
    "reference_length",
    "run_primitive",
    "scripted_planner",
    "top_down",
]
