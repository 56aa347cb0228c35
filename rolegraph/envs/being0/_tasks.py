"""Long-horizon office tasks for Being-0, each checked from the simulator's state, with ordered
sub-tasks and a reference route (for navigation efficiency: the shortest collision-free path
through the places the task needs, found with A* on a 10 cm grid)."""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from rolegraph.envs.being0._world import Layout, Pose, Thing, World, default_office
from rolegraph.errors import UserError

Check = Callable[[World], bool]


def _things() -> dict[str, Thing]:
    items = [
        Thing(name="bottle", kind="bottle", x=1.0, y=0.7, size=0.25, on="kitchen_counter"),
        Thing(name="beer", kind="beer", x=4.55, y=0.8, size=0.15, on="fridge"),
        Thing(name="snack", kind="snack", x=1.5, y=2.9, size=0.1, on="kitchen_table"),
        Thing(name="cup", kind="cup", x=2.3, y=5.6, size=0.12, on="meeting_table"),
        Thing(name="basket", kind="basket", x=3.8, y=7.0, size=0.35, on=None),
        Thing(name="mug", kind="cup", x=10.0, y=0.8, size=0.12, on="desk"),
        Thing(name="alice", kind="person", x=10.5, y=5.8, size=1.7, on=None, graspable=False),
    ]
    return {t.name: t for t in items}


@dataclass(frozen=True)
class Task:
    name: str
    instruction: str
    start: Pose
    subtasks: tuple[tuple[str, Check], ...]
    """In order; the last one is the task's success."""
    route: tuple[str, ...]
    """Things and furniture the robot must reach, in order (for the reference path)."""

    def world(self) -> World:
        w = World(robot=self.start, things=_things())
        w.trail.append((self.start.x, self.start.y))
        return w

    def success(self, world: World) -> bool:
        return self.subtasks[-1][1](world)

    def subtask_progress(self, world: World) -> int:
        """How many sub-tasks are done, counting in order."""
        done = 0
        for _, check in self.subtasks:
            if not check(world):
                break
            done += 1
        return done


def _held(name: str) -> Check:
    """Picked up: held now, or already moved from where it started."""
    return lambda w: w.holding == name or _moved(w, name)


_START = _things()
"""Where everything starts (read-only: each episode gets its own copy from `_things()`)."""


def _moved(world: World, name: str) -> bool:
    return world.things[name].on != _START[name].on


def _on(name: str, place: str) -> Check:
    return lambda w: w.things[name].on == place


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("fetch_bottle", "Fetch the bottle from the kitchen counter and put it on the desk in the office.",
         Pose(x=8.0, y=2.5, heading=180.0),
         (("pick up the bottle", _held("bottle")), ("put the bottle on the desk", _on("bottle", "desk"))),
         ("bottle", "desk")),
    Task("prepare_coffee", "Make a coffee: take the cup from the meeting table to the coffee machine in the "
                           "kitchen, then bring the coffee to the lounge table.",
         Pose(x=3.0, y=2.0, heading=90.0),
         (("pick up the cup", _held("cup")), ("fill the cup at the coffee machine", lambda w: w.things["cup"].filled),
          ("put the coffee on the lounge table", lambda w: w.things["cup"].filled and w.things["cup"].on == "lounge_table")),
         ("cup", "coffee_machine", "lounge_table")),
    Task("carry_basket", "Carry the basket from the meeting room to the kitchen table.",
         Pose(x=2.0, y=1.8, heading=90.0),
         (("pick up the basket", _held("basket")), ("put the basket on the kitchen table", _on("basket", "kitchen_table"))),
         ("basket", "kitchen_table")),
    Task("serve_beer", "Take the beer from the fridge, open it, and put it on the lounge table.",
         Pose(x=9.0, y=5.5, heading=-90.0),
         (("pick up the beer", _held("beer")), ("open the beer", lambda w: w.things["beer"].opened),
          ("put the open beer on the lounge table",
           lambda w: w.things["beer"].opened and w.things["beer"].on == "lounge_table")),
         ("beer", "lounge_table")),
    Task("handout_snack", "Bring the snack from the kitchen table to Alice in the lounge.",
         Pose(x=7.0, y=6.0, heading=180.0),
         (("pick up the snack", _held("snack")), ("hand the snack to Alice", _on("snack", "alice"))),
         ("snack", "alice")),
    Task("tidy_mug", "Take the mug from the desk to the kitchen counter.",
         Pose(x=6.0, y=6.5, heading=-90.0),
         (("pick up the mug", _held("mug")), ("put the mug on the kitchen counter", _on("mug", "kitchen_counter"))),
         ("mug", "kitchen_counter")),
)}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise UserError(f"unknown Being-0 task {name!r}; tasks: {', '.join(TASKS)}")
    return TASKS[name]


def _goal_point(layout: Layout, name: str) -> tuple[float, float]:
    f = layout.furniture_named(name)
    if f is not None:
        return f.anchor
    t = _START[name]
    return t.x, t.y


@lru_cache(maxsize=4096)
def shortest_path(layout: Layout, start: tuple[float, float], goal: tuple[float, float], reach: float = 0.6,
                  cell: float = 0.1) -> tuple[float, tuple[float, float]]:
    """Length of the shortest collision-free path from `start` to within `reach` of `goal`
    (8-connected A* on a grid), and where it ends; (inf, start) if there is none."""
    def free(i: int, j: int) -> bool:
        return not layout.blocked(i * cell, j * cell)

    s = (round(start[0] / cell), round(start[1] / cell))
    gx, gy = goal
    frontier: list[tuple[float, float, tuple[int, int]]] = [(0.0, 0.0, s)]
    best = {s: 0.0}
    moves = [(dx, dy, math.hypot(dx, dy) * cell) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy]
    while frontier:
        _, g, (i, j) = heapq.heappop(frontier)
        if g > best.get((i, j), math.inf):
            continue
        if math.hypot(i * cell - gx, j * cell - gy) <= reach:
            return g, (i * cell, j * cell)
        for dx, dy, c in moves:
            n = (i + dx, j + dy)
            ng = g + c
            if ng < best.get(n, math.inf) and free(*n):
                best[n] = ng
                h = max(0.0, math.hypot(n[0] * cell - gx, n[1] * cell - gy) - reach)
                heapq.heappush(frontier, (ng + h, ng, n))
    return math.inf, start


def reference_length(task: Task, layout: Layout | None = None) -> float:
    """The shortest route through the task's places in order, in metres."""
    layout = layout or default_office()
    here = (task.start.x, task.start.y)
    total = 0.0
    for name in task.route:
        length, here = shortest_path(layout, here, _goal_point(layout, name))
        total += length
    return total
