"""Being-0's connector: grounds a plan step into skills using the detector's boxes, and runs the
composite skills as the paper describes them:

- move_towards: detect at each step; stop within distance; sidestep obstacles; else turn by the
  target's angle or walk forward;
- search_for: turn one way until the target is seen (with active vision, look left and right
  with the head first);
- adjustment: turn the head toward the target, then approach along an arc to a grasp pose.

It sees only the detector's boxes (with the depth under each), never the simulator's true
positions, and reports success or failure to the planner."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from rolegraph.envs.being0._skills import GRASP_RANGE, Action, Outcome, run_primitive
from rolegraph.envs.being0._world import H_FOV, Detection, Layout, World, detect


@dataclass(frozen=True)
class Options:
    """The ablations: each False reproduces one of the paper's ablated agents."""

    active_vision: bool = True
    pose_adjustment: bool = True
    stop_distance: float = 0.7
    max_steps: int = 40


@dataclass
class Report:
    ok: bool
    message: str
    steps: list[str] = field(default_factory=list)


def canonical(name: str) -> str:
    return name.strip().lower().replace(" ", "_")


class Connector:
    """Runs one planner action on the world (mutating it), through primitive skills."""

    def __init__(self, layout: Layout, world: World, seed: int, options: Options = Options()) -> None:
        self.layout, self.world, self.seed, self.options = layout, world, seed, options
        self.steps: list[str] = []

    # -- primitives and perception ---------------------------------------------------------------

    def do(self, name: str, **args: Any) -> Outcome:
        out = run_primitive(self.layout, self.world, name, args, self.seed, active_vision=self.options.active_vision)
        self.steps.append(Action(name, args).text() + ("" if out.ok else f" -> {out.message}"))
        return out

    def find(self, target: str) -> Detection | None:
        return next((d for d in detect(self.layout, self.world) if d.name == target), None)

    def estimate(self, det: Detection) -> tuple[float, float]:
        """(distance, bearing off the body's heading) of a box: the bearing from the box's centre
        and the head's yaw, the distance from the aligned depth image."""
        return det.depth, (0.5 - det.cx) * H_FOV + self.world.head_yaw

    def look_for(self, target: str) -> Detection | None:
        """The target's box, moving only the head (active vision) if it is not in view."""
        det = self.find(target)
        if det is not None or not self.options.active_vision:
            return det
        for tilt in (self.world.head_tilt, -35.0, -55.0, 0.0):
            if tilt != self.world.head_tilt:
                self.do("tilt_head", angle=tilt)
            for yaw in (0.0, -50.0, 50.0):
                if yaw != self.world.head_yaw:
                    self.do("turn_head", angle=yaw)
                det = self.find(target)
                if det is not None:
                    return det
        self.do("turn_head", angle=0.0)
        return None

    def face(self, bearing: float) -> None:
        """Turn the body by `bearing` and bring the head back to straight ahead."""
        if abs(bearing) > 1:
            self.do("turn_left" if bearing > 0 else "turn_right", angle=round(abs(bearing), 1))
        if self.world.head_yaw != 0 and self.options.active_vision:
            self.do("turn_head", angle=0.0)

    def blocked_ahead(self, distance: float) -> bool:
        r = self.world.robot
        a = math.radians(r.heading)
        n = max(1, math.ceil(distance / 0.05))
        return any(self.layout.blocked(r.x + math.cos(a) * distance * i / n, r.y + math.sin(a) * distance * i / n)
                   for i in range(1, n + 1))

    # -- composite skills ------------------------------------------------------------------------

    def search_for(self, target: str) -> Report:
        target = canonical(target)
        if self.look_for(target) is not None:
            return Report(True, f"{target} is in view")
        for _ in range(12):
            self.do("turn_left", angle=30.0)
            det = self.look_for(target)
            if det is not None:
                return Report(True, f"found {target}")
        return Report(False, f"{target} is not in sight from here")

    def move_towards(self, target: str, stop: float | None = None) -> Report:
        target = canonical(target)
        stop = stop if stop is not None else (0.3 if target.endswith("_door") else self.options.stop_distance)
        last: tuple[float, float] | None = None
        for _ in range(self.options.max_steps):
            det = self.look_for(target)
            if det is None:
                if last is not None and last[0] < 2.0 and not self.options.active_vision:
                    # a fixed head loses near things below its view: walk the last estimate blind
                    self.face(last[1])
                    self.do("go_straight", distance=round(max(0.0, last[0] - stop), 2))
                    return Report(True, f"walked to where {target} was last seen")
                return Report(False, f"lost sight of {target}")
            distance, bearing = self.estimate(det)
            last = (distance, bearing)
            if distance <= stop:
                if abs(bearing) > 15:
                    self.face(bearing)
                if target.endswith("_door"):  # a doorway is passed, not stood in
                    self.do("go_straight", distance=0.9)
                    return Report(True, f"went through the {target}")
                return Report(True, f"reached {target} ({distance:.2f} m)")
            if abs(bearing) > 12:
                self.face(bearing)
                continue
            step = min(0.6, distance - stop)
            if self.blocked_ahead(step + 0.1):
                left = not self.layout.blocked(*self._beside(0.5, 90))
                out = self.do("sidestep_left" if left else "sidestep_right", distance=0.5)
                if out.ok:
                    self.do("go_straight", distance=min(0.5, step))
                continue
            if not self.do("go_straight", distance=round(step, 2)).ok:  # grazed a corner: step aside
                self.do("sidestep_left" if not self.layout.blocked(*self._beside(0.3, 90)) else "sidestep_right",
                        distance=0.3)
            if self.options.active_vision and det.y2 > 0.85 and self.world.head_tilt > -35:
                self.do("tilt_head", angle=self.world.head_tilt - 15)
        return Report(False, f"did not reach {target} in {self.options.max_steps} moves")

    def _beside(self, distance: float, side: float) -> tuple[float, float]:
        r = self.world.robot
        a = math.radians(r.heading + side)
        return r.x + math.cos(a) * distance, r.y + math.sin(a) * distance

    def adjust(self, target: str, near: tuple[float, float] = GRASP_RANGE, tolerance: float = 8.0) -> Report:
        """Pose adjustment: head toward the target, then small turns and steps (an arc) until it
        sits in the grasp range, straight ahead."""
        if self.options.active_vision:
            self.do("tilt_head", angle=-35.0)
        lo, hi = near
        for _ in range(16):
            det = self.look_for(target)
            if det is None:
                if not self.options.active_vision:
                    return Report(True, f"{target} is out of view; trying from here")
                return Report(False, f"cannot see {target} to line up")
            distance, bearing = self.estimate(det)
            if lo <= distance <= hi and abs(bearing) <= tolerance:
                return Report(True, f"lined up with {target} ({distance:.2f} m, {bearing:.0f} degrees)")
            if abs(bearing) > tolerance:
                self.face(bearing)
            if distance > hi:
                out = self.do("go_straight", distance=round(min(0.3, distance - (lo + hi) / 2), 2))
                if not out.ok:  # the furniture's edge is in the way: slide along it, toward the target
                    self.slide(target, distance)
            elif distance < lo:
                self.do("walk_backwards", distance=0.15)
        return Report(False, f"could not line up with {target}")

    def slide(self, target: str, distance: float) -> None:
        """Sidestep along an obstacle: left first, and back to the right if that took us further."""
        self.do("sidestep_left", distance=0.2)
        det = self.find(target)
        if det is None or self.estimate(det)[0] >= distance:
            self.do("sidestep_right", distance=0.4)

    def approach(self, target: str, for_grasp: bool) -> Report:
        found = self.search_for(target)
        if not found.ok:
            return found
        moved = self.move_towards(target)
        if not moved.ok:
            return moved
        if self.options.pose_adjustment:
            return self.adjust(target, GRASP_RANGE if for_grasp else (0.3, 0.7), 8.0 if for_grasp else 20.0)
        return moved

    def grab(self, object_name: str) -> Report:
        name = canonical(object_name)
        thing = self.world.things.get(name)
        if thing is None:
            return Report(False, f"there is no {name} in this office")
        if self.world.holding is not None:
            return Report(False, f"already holding the {self.world.holding}")
        near = self.approach(name, for_grasp=True)
        if not near.ok:
            return near
        skill = "carry_basket" if thing.kind == "basket" else f"grasp_{thing.kind}"
        out = self.do(skill)
        return Report(out.ok, out.message)

    def place_on(self, target_name: str) -> Report:
        target = canonical(target_name)
        if self.world.holding is None:
            return Report(False, "holding nothing to place")
        if self.layout.furniture_named(target) is None:
            return Report(False, f"there is no {target} to put things on")
        near = self.approach(target, for_grasp=False)
        if not near.ok:
            return near
        kind = self.world.things[self.world.holding].kind
        out = self.do(f"place_{kind}")
        return Report(out.ok, out.message)

    def handout(self, person_name: str) -> Report:
        person = canonical(person_name)
        if person not in self.world.things or self.world.things[person].kind != "person":
            return Report(False, f"there is nobody called {person}")
        near = self.approach(person, for_grasp=False)
        if not near.ok:
            return near
        out = self.do("handout_snack")
        return Report(out.ok, out.message)

    def run(self, action: Action) -> Report:
        """Ground one planner action; its primitive steps are in `self.steps`."""
        n = action.name
        if n == "search_and_move_towards":
            found = self.search_for(action.args["target_name"])
            return self.move_towards(action.args["target_name"]) if found.ok else found
        if n == "move_towards":
            return self.move_towards(action.args["target_name"])
        if n == "search_for":
            return self.search_for(action.args["target_name"])
        if n == "grab":
            return self.grab(action.args["object_name"])
        if n == "place_on":
            return self.place_on(action.args["target_name"])
        if n == "handout":
            return self.handout(action.args["person_name"])
        out = self.do(n, **action.args)  # a primitive, e.g. open_beer
        return Report(out.ok, out.message)
