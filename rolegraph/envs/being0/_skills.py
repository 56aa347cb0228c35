"""Being-0's skill library on the simulator: locomotion with noise in distance and angle, head
control (active vision), and manipulation skills whose success depends on the robot's distance
and angle to the object, drawn from a seeded generator.

Also the planner's action grammar: one call with literal keyword arguments, read with `ast` and
checked against the library's signatures. Model output is never executed."""

from __future__ import annotations

import ast
import math
import random
from dataclasses import dataclass
from typing import Any

from rolegraph.envs.being0._world import HEAD_TILT_LIMIT, HEAD_YAW_LIMIT, Layout, World, _wrap

STEP = 0.05
"""Collision checks along a path, every 5 cm."""
DIST_NOISE = 0.05
"""Walking distance: +-5% (uniform)."""
ANGLE_NOISE = 3.0
"""Turning and the heading drift of a walk: +-3 degrees (uniform)."""
GRASP_RANGE = (0.3, 0.6)
"""Distance from the robot's centre to an object for a sure grasp."""


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str


def _rng(seed: int, world: World) -> random.Random:
    return random.Random(f"{seed}:{world.steps}")


def _walk(layout: Layout, world: World, distance: float, direction: float, rng: random.Random) -> Outcome:
    """Walk `distance` metres towards `direction` degrees off the heading, stopping at obstacles."""
    r = world.robot
    actual = distance * (1 + rng.uniform(-DIST_NOISE, DIST_NOISE))
    drift = rng.uniform(-ANGLE_NOISE, ANGLE_NOISE) * min(1.0, abs(distance))
    angle = math.radians(r.heading + direction)
    x, y = r.x, r.y
    moved = 0.0
    n = max(1, int(abs(actual) / STEP))
    dx, dy = math.cos(angle) * actual / n, math.sin(angle) * actual / n
    for _ in range(n):
        if layout.blocked(x + dx, y + dy):
            break
        x, y = x + dx, y + dy
        moved += abs(actual) / n
    world.robot = r.model_copy(update={"x": x, "y": y, "heading": _wrap(r.heading + drift)})
    world.distance += moved
    world.trail.append((round(x, 3), round(y, 3)))
    if moved < abs(actual) * 0.5:
        return Outcome(False, f"blocked after {moved:.2f} m")
    return Outcome(True, f"moved {moved:.2f} m")


def _turn(world: World, angle: float, rng: random.Random) -> Outcome:
    noisy = angle + rng.uniform(-ANGLE_NOISE, ANGLE_NOISE) * min(1.0, abs(angle) / 30)
    world.robot = world.robot.model_copy(update={"heading": _wrap(world.robot.heading + noisy)})
    return Outcome(True, f"turned {noisy:.0f} degrees")


def relative(world: World, x: float, y: float) -> tuple[float, float]:
    """(distance, bearing off the robot's heading in degrees) of a point."""
    r = world.robot
    d = math.hypot(x - r.x, y - r.y)
    return d, _wrap(math.degrees(math.atan2(y - r.y, x - r.x)) - r.heading)


def grasp_chance(distance: float, bearing: float) -> float:
    """Success probability of a grasp from this pose: sure inside the grasp range facing the
    object, falling to zero at 0.9 m or 40 degrees off."""
    lo, hi = GRASP_RANGE
    if distance < lo:
        fd = max(0.0, (distance - 0.15) / (lo - 0.15))
    elif distance <= hi:
        fd = 1.0
    else:
        fd = max(0.0, (0.9 - distance) / (0.9 - hi))
    fa = 1.0 if abs(bearing) <= 10 else max(0.0, (40 - abs(bearing)) / 30)
    return 0.95 * fd * fa


def place_chance(distance: float, bearing: float) -> float:
    fd = 1.0 if distance <= 0.75 else max(0.0, (1.2 - distance) / 0.45)
    fa = 1.0 if abs(bearing) <= 25 else max(0.0, (60 - abs(bearing)) / 35)
    return 0.95 * fd * fa


def grasp(layout: Layout, world: World, name: str, rng: random.Random) -> Outcome:
    thing = world.things.get(name)
    if thing is None or not thing.graspable or thing.on == "robot":
        return Outcome(False, f"there is no {name} to grasp")
    if world.holding is not None:
        return Outcome(False, f"already holding the {world.holding}")
    d, b = relative(world, thing.x, thing.y)
    p = grasp_chance(d, b)
    if rng.random() >= p:
        return Outcome(False, f"the grasp missed the {name} (distance {d:.2f} m, {b:.0f} degrees off)")
    world.holding = name
    world.things[name] = thing.model_copy(update={"on": "robot"})
    return Outcome(True, f"holding the {name}")


def place(layout: Layout, world: World, target: str, rng: random.Random) -> Outcome:
    if world.holding is None:
        return Outcome(False, "holding nothing to place")
    held = world.things[world.holding]
    furniture = layout.furniture_named(target)
    person = world.things.get(target)
    if furniture is not None:
        tx, ty = furniture.anchor
    elif person is not None and person.kind == "person":
        tx, ty = person.x, person.y
    else:
        return Outcome(False, f"there is no {target} to put things on")
    d, b = relative(world, tx, ty)
    if rng.random() >= place_chance(d, b):
        return Outcome(False, f"could not reach the {target} (distance {d:.2f} m, {b:.0f} degrees off)")
    update: dict[str, Any] = {"x": tx, "y": ty, "on": target}
    if target == "coffee_machine" and held.kind == "cup":
        update["filled"] = True  # the machine brews into a cup put under it
    world.things[held.name] = held.model_copy(update=update)
    world.holding = None
    return Outcome(True, f"put the {held.name} on the {target}" if furniture else f"handed the {held.name} to {target}")


def open_held(world: World, kind: str, rng: random.Random) -> Outcome:
    held = world.things.get(world.holding or "")
    if held is None or held.kind != kind:
        return Outcome(False, f"not holding a {kind}")
    if rng.random() >= 0.9:
        return Outcome(False, f"fumbled opening the {kind}")
    world.things[held.name] = held.model_copy(update={"opened": True})
    return Outcome(True, f"opened the {kind}")


PRIMITIVES: dict[str, dict[str, type]] = {
    "no_action": {},
    "go_straight": {"distance": float},
    "walk_backwards": {"distance": float},
    "turn_left": {"angle": float},
    "turn_right": {"angle": float},
    "sidestep_left": {"distance": float},
    "sidestep_right": {"distance": float},
    "tilt_head": {"angle": float},
    "turn_head": {"angle": float},
    "grasp_bottle": {},
    "grasp_cup": {},
    "grasp_beer": {},
    "grasp_snack": {},
    "carry_basket": {},
    "place_cup": {},
    "place_bottle": {},
    "place_beer": {},
    "place_basket": {},
    "open_beer": {},
    "handout_snack": {},
}
"""The primitive skills and their parameters (what the planner uses without the connector)."""

COMPOSITES: dict[str, dict[str, type]] = {
    "search_and_move_towards": {"target_name": str},
    "move_towards": {"target_name": str},
    "search_for": {"target_name": str},
    "grab": {"object_name": str},
    "place_on": {"target_name": str},
    "open_beer": {},
    "handout": {"person_name": str},
}
"""The connector's skills: what the planner calls when the connector is on."""


def nearest_furniture(layout: Layout, world: World, max_distance: float = 1.5) -> str | None:
    best, best_d = None, max_distance
    for f in layout.furniture:
        d, b = relative(world, *f.anchor)
        if d < best_d and abs(b) < 60:
            best, best_d = f.name, d
    for t in world.things.values():
        if t.kind == "person":
            d, b = relative(world, t.x, t.y)
            if d < best_d and abs(b) < 60:
                best, best_d = t.name, d
    return best


def run_primitive(layout: Layout, world: World, name: str, args: dict[str, Any], seed: int, *,
                  active_vision: bool = True) -> Outcome:
    """Execute one primitive skill (counted as a step)."""
    rng = _rng(seed, world)
    world.steps += 1
    if name == "no_action":
        return Outcome(True, "waited")
    if name in ("go_straight", "walk_backwards", "sidestep_left", "sidestep_right"):
        distance = max(0.0, min(3.0, float(args["distance"])))
        direction = {"go_straight": 0.0, "walk_backwards": 180.0, "sidestep_left": 90.0, "sidestep_right": -90.0}[name]
        return _walk(layout, world, distance, direction, rng)
    if name in ("turn_left", "turn_right"):
        angle = max(0.0, min(180.0, float(args["angle"])))
        return _turn(world, angle if name == "turn_left" else -angle, rng)
    if name in ("tilt_head", "turn_head"):
        if not active_vision:
            return Outcome(False, "the head is fixed")
        if name == "tilt_head":
            world.head_tilt = max(HEAD_TILT_LIMIT[0], min(HEAD_TILT_LIMIT[1], float(args["angle"])))
        else:
            world.head_yaw = max(-HEAD_YAW_LIMIT, min(HEAD_YAW_LIMIT, float(args["angle"])))
        return Outcome(True, f"head at yaw {world.head_yaw:.0f}, tilt {world.head_tilt:.0f}")
    if name.startswith("grasp_") or name == "carry_basket":
        kind = "basket" if name == "carry_basket" else name.removeprefix("grasp_")
        candidates = [t for t in world.things.values() if t.kind == kind and t.on != "robot"]
        target = min(candidates, key=lambda t: relative(world, t.x, t.y)[0]).name if candidates else None
        return grasp(layout, world, target, rng) if target else Outcome(False, f"there is no {kind} here")
    if name.startswith("place_"):
        kind = name.removeprefix("place_")
        held = world.things.get(world.holding or "")
        if held is None or held.kind != kind:
            return Outcome(False, f"not holding a {kind}")
        target = nearest_furniture(layout, world)
        return place(layout, world, target, rng) if target else Outcome(False, "nothing to put it on within reach")
    if name == "open_beer":
        return open_held(world, "beer", rng)
    if name == "handout_snack":
        held = world.things.get(world.holding or "")
        if held is None or held.kind != "snack":
            return Outcome(False, "not holding a snack")
        person = nearest_furniture(layout, world)
        if person is None or person not in world.things:
            return Outcome(False, "nobody within reach to hand it to")
        return place(layout, world, person, rng)
    raise ValueError(f"unknown primitive skill {name!r}")


# --- the action grammar -------------------------------------------------------------------------

class ActionError(ValueError):
    """The planner's action is not one whitelisted call with literal arguments."""


@dataclass(frozen=True)
class Action:
    name: str
    args: dict[str, Any]

    def text(self) -> str:
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in self.args.items())})"


MAX_ACTION_CHARS = 1000
"""The longest action text read: a skill call is a few dozen characters."""

LIMITS: dict[str, float] = {"distance": 10.0, "angle": 360.0}
"""The largest magnitude a numeric argument may have, by name (others: 1e6)."""

_PARSE_FAILURES = (SyntaxError, ValueError, TypeError, RecursionError, MemoryError, OverflowError,
                   UnicodeError)


def parse_action(text: str, library: dict[str, dict[str, type]]) -> Action:
    """One call like `grab(object_name="cup")`: parsed with `ast` (never executed), the name and
    keywords checked against `library`, every argument a literal of the declared type (numbers
    finite and within LIMITS). Raises only ActionError, with a message for the planner."""
    if not isinstance(text, str):
        raise ActionError("the action must be text: one call, like grab(object_name=\"cup\")")
    source = text.strip().strip("`").strip()
    if source.startswith("python"):
        source = source[len("python"):].strip()
    if len(source) > MAX_ACTION_CHARS:
        raise ActionError(f"the action is {len(source)} characters long; give one short call "
                          f"(at most {MAX_ACTION_CHARS}), like grab(object_name=\"cup\")")
    try:
        tree = ast.parse(source, mode="eval")
    except _PARSE_FAILURES:  # bad syntax, null bytes, lone surrogates, nesting, 5,000-digit numbers
        raise ActionError(f"not a single call: {source[:80]!r}") from None
    call = tree.body
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        raise ActionError("the action must be one call of a skill by name, like grab(object_name=\"cup\")")
    name = call.func.id
    if name not in library:
        raise ActionError(f"unknown skill {name!r}; the skills are: {', '.join(sorted(library))}")
    params = library[name]
    if call.args:
        if len(call.args) > len(params):
            raise ActionError(f"{name} takes {len(params)} argument(s)")
        keywords = list(zip(params, call.args, strict=False))
    else:
        keywords = []
    keywords += [(k.arg, k.value) for k in call.keywords if k.arg is not None]
    if any(k.arg is None for k in call.keywords):
        raise ActionError("no ** arguments")
    args: dict[str, Any] = {}
    for key, node in keywords:
        if key not in params:
            raise ActionError(f"{name} has no argument {key!r}; it takes: {', '.join(params) or 'nothing'}")
        try:
            value = ast.literal_eval(node)
        except _PARSE_FAILURES:  # a name, a call, an unhashable dict key
            raise ActionError(f"the argument {key} must be a literal value") from None
        want = params[key]
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            if abs(value) > 1e300:
                raise ActionError(f"the argument {key} is out of range")
            value = float(value)
        if not isinstance(value, want) or isinstance(value, bool):
            raise ActionError(f"the argument {key} must be a {want.__name__}")
        if isinstance(value, float):
            limit = LIMITS.get(key, 1e6)
            if not math.isfinite(value) or abs(value) > limit:
                raise ActionError(f"the argument {key} must be a finite number from {-limit:g} to {limit:g}")
        args[key] = value
    missing = [p for p in params if p not in args]
    if missing:
        raise ActionError(f"{name} needs {', '.join(missing)}")
    return Action(name, args)
