"""Being-0's simulated office: a 2-D floor plan (rooms, walls with doors, furniture), objects, and
a robot with a pose, a head that turns and tilts, an egocentric camera and a ground-truth
detector. Geometry is continuous (metres, degrees). The world state is a pydantic model, so a
graph can carry it and a trace can record it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

from pydantic import BaseModel, Field

H_FOV = 70.0
"""Horizontal field of view of the head camera, degrees."""
V_FOV = 55.0
CAMERA_HEIGHT = 1.5
MAX_RANGE = 7.0
ROBOT_RADIUS = 0.25
HEAD_YAW_LIMIT = 90.0
HEAD_TILT_LIMIT = (-60.0, 10.0)


@dataclass(frozen=True)
class Rect:
    x1: float
    y1: float
    x2: float
    y2: float

    def contains(self, x: float, y: float, margin: float = 0.0) -> bool:
        return self.x1 - margin <= x <= self.x2 + margin and self.y1 - margin <= y <= self.y2 + margin


@dataclass(frozen=True)
class Furniture:
    name: str
    rect: Rect
    height: float
    """Surface height (objects on it sit this high)."""
    anchor: tuple[float, float]
    """Where things are put on it: a point on the edge that faces open floor."""
    label: str = ""


@dataclass(frozen=True)
class Room:
    name: str
    rect: Rect


@dataclass(frozen=True)
class Door:
    name: str
    """A landmark the detector sees, e.g. 'kitchen_office_door'."""
    x: float
    y: float
    rooms: tuple[str, str]


@dataclass(frozen=True)
class Layout:
    """The static office: rooms, wall segments, doors and furniture."""

    width: float
    height: float
    rooms: tuple[Room, ...]
    walls: tuple[tuple[float, float, float, float], ...]
    doors: tuple[Door, ...]
    furniture: tuple[Furniture, ...]
    obstacles: tuple[Rect, ...] = field(default=())

    def room_of(self, x: float, y: float) -> str:
        for r in self.rooms:
            if r.rect.contains(x, y):
                return r.name
        return "outside"

    def furniture_named(self, name: str) -> Furniture | None:
        return next((f for f in self.furniture if f.name == name), None)

    def blocked(self, x: float, y: float, radius: float = ROBOT_RADIUS) -> bool:
        """True if a robot of `radius` at (x, y) would overlap a wall, furniture or an obstacle."""
        if not (radius <= x <= self.width - radius and radius <= y <= self.height - radius):
            return True
        for f in self.furniture:
            if f.rect.contains(x, y, radius):
                return True
        for o in self.obstacles:
            if o.contains(x, y, radius):
                return True
        return any(_dist_to_segment(x, y, *w) < radius for w in self.walls)

    def line_of_sight(self, x1: float, y1: float, x2: float, y2: float) -> bool:
        return not any(_segments_cross((x1, y1, x2, y2), w) for w in self.walls)


def _dist_to_segment(px: float, py: float, x1: float, y1: float, x2: float, y2: float) -> float:
    dx, dy = x2 - x1, y2 - y1
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, ((px - x1) * dx + (py - y1) * dy) / length2))
    return math.hypot(px - (x1 + t * dx), py - (y1 + t * dy))


def _segments_cross(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    def orient(px: float, py: float, qx: float, qy: float, rx: float, ry: float) -> float:
        return (qx - px) * (ry - py) - (qy - py) * (rx - px)

    (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = a, b
    d1 = orient(bx1, by1, bx2, by2, ax1, ay1)
    d2 = orient(bx1, by1, bx2, by2, ax2, ay2)
    d3 = orient(ax1, ay1, ax2, ay2, bx1, by1)
    d4 = orient(ax1, ay1, ax2, ay2, bx2, by2)
    return (d1 * d2 < 0) and (d3 * d4 < 0)


def _wall_with_doors(x1: float, y1: float, x2: float, y2: float,
                     gaps: list[tuple[float, float]]) -> list[tuple[float, float, float, float]]:
    """A straight wall split around door gaps (given along its length as (start, end))."""
    horizontal = y1 == y2
    lo, hi = (x1, x2) if horizontal else (y1, y2)
    cuts = [lo]
    for g1, g2 in sorted(gaps):
        cuts += [g1, g2]
    cuts.append(hi)
    out = []
    for s, e in zip(cuts[::2], cuts[1::2], strict=True):
        if e > s:
            out.append((s, y1, e, y2) if horizontal else (x1, s, x2, e))
    return out


@lru_cache(maxsize=1)
def default_office() -> Layout:
    """12 m x 8 m: kitchen and meeting room on the left, office and lounge on the right, four doors."""
    w, h = 12.0, 8.0
    walls: list[tuple[float, float, float, float]] = [(0, 0, w, 0), (w, 0, w, h), (w, h, 0, h), (0, h, 0, 0)]
    walls += _wall_with_doors(5, 0, 5, h, [(1.4, 2.6), (5.4, 6.6)])
    walls += _wall_with_doors(0, 4, w, 4, [(1.9, 3.1), (8.0, 9.2)])
    rooms = (Room("kitchen", Rect(0, 0, 5, 4)), Room("office", Rect(5, 0, 12, 4)),
             Room("meeting room", Rect(0, 4, 5, 8)), Room("lounge", Rect(5, 4, 12, 8)))
    doors = (Door("kitchen_office_door", 5.0, 2.0, ("kitchen", "office")),
             Door("kitchen_meeting_door", 2.5, 4.0, ("kitchen", "meeting room")),
             Door("office_lounge_door", 8.6, 4.0, ("office", "lounge")),
             Door("meeting_lounge_door", 5.0, 6.0, ("meeting room", "lounge")))
    furniture = (
        Furniture("kitchen_counter", Rect(0.1, 0.1, 2.6, 0.7), 0.9, (1.0, 0.7), "kitchen counter"),
        Furniture("coffee_machine", Rect(3.0, 0.1, 3.6, 0.6), 0.9, (3.3, 0.6), "coffee machine"),
        Furniture("fridge", Rect(4.2, 0.1, 4.9, 0.8), 1.0, (4.55, 0.8), "fridge"),
        Furniture("kitchen_table", Rect(1.0, 2.2, 2.0, 2.9), 0.75, (1.5, 2.9), "kitchen table"),
        Furniture("desk", Rect(9.5, 0.1, 11.5, 0.8), 0.75, (10.5, 0.8), "desk"),
        Furniture("meeting_table", Rect(1.2, 5.6, 3.4, 6.6), 0.75, (2.3, 5.6), "meeting table"),
        Furniture("lounge_table", Rect(8.5, 6.4, 9.7, 7.2), 0.5, (9.1, 6.4), "lounge table"),
        Furniture("sofa", Rect(10.2, 6.6, 11.9, 7.9), 0.45, (11.0, 6.6), "sofa"),
    )
    obstacles = (Rect(7.0, 1.6, 7.4, 2.0), Rect(3.6, 2.2, 4.0, 2.6))  # a plant, a bin
    return Layout(w, h, rooms, tuple(walls), doors, furniture, obstacles)


class Pose(BaseModel):
    x: float
    y: float
    heading: float = 0.0
    """Degrees, counter-clockwise from +x."""


class Thing(BaseModel):
    """An object in the office and its state."""

    name: str
    kind: str
    x: float
    y: float
    size: float = 0.15
    """Height in metres (the connector knows typical sizes, as a VLM would)."""
    on: str | None = None
    """The furniture it stands on, None on the floor, 'robot' while held, or a person's name."""
    graspable: bool = True
    opened: bool = False
    filled: bool = False


class World(BaseModel):
    """Everything that changes during an episode."""

    robot: Pose
    head_yaw: float = 0.0
    head_tilt: float = 0.0
    holding: str | None = None
    things: dict[str, Thing]
    steps: int = 0
    """Primitive skills executed."""
    distance: float = 0.0
    """Metres walked."""
    trail: list[tuple[float, float]] = Field(default_factory=list)


class Detection(BaseModel):
    """A detector box, normalised to the image: (0, 0) top-left, (1, 1) bottom-right."""

    name: str
    x1: float
    y1: float
    x2: float
    y2: float
    depth: float = 0.0
    """Metres to the thing, from the depth image aligned with the colour image."""

    @property
    def cx(self) -> float:
        return (self.x1 + self.x2) / 2

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    def text(self) -> str:
        return f"{self.name} [{self.x1:.2f}, {self.y1:.2f}, {self.x2:.2f}, {self.y2:.2f}] at {self.depth:.1f} m"


def _wrap(angle: float) -> float:
    return (angle + 180.0) % 360.0 - 180.0


def landmarks(layout: Layout, world: World) -> list[tuple[str, float, float, float, float]]:
    """(name, x, y, z, size) of everything the detector can report: objects, furniture, doors."""
    out = []
    for t in world.things.values():
        if t.on == "robot":
            continue
        f = layout.furniture_named(t.on) if t.on else None
        out.append((t.name, t.x, t.y, f.height if f else 0.0, t.size))
    for f in layout.furniture:  # seen at its usable edge (its anchor), where things are put
        out.append((f.name, *f.anchor, 0.0, f.height))
    for d in layout.doors:
        out.append((d.name, d.x, d.y, 0.0, 2.0))
    return out


def detect(layout: Layout, world: World) -> list[Detection]:
    """Ground-truth boxes of what the head camera sees: within the field of view given the head's
    yaw and tilt, in range, and not behind a wall. Sorted by name."""
    r = world.robot
    gaze = r.heading + world.head_yaw
    seen: list[Detection] = []
    for name, x, y, z, size in landmarks(layout, world):
        d = math.hypot(x - r.x, y - r.y)
        if d < 0.1 or d > MAX_RANGE:
            continue
        bearing = _wrap(math.degrees(math.atan2(y - r.y, x - r.x)) - gaze)
        half_w = math.degrees(math.atan2(0.15 if size < 1 else 0.4, d))
        if abs(bearing) - half_w > H_FOV / 2:
            continue
        if not layout.line_of_sight(r.x, r.y, x, y):
            continue
        # vertical: angles below the horizon of the object's bottom and top, seen with the head's tilt
        bottom = math.degrees(math.atan2(CAMERA_HEIGHT - z, d)) + world.head_tilt
        top = math.degrees(math.atan2(CAMERA_HEIGHT - (z + size), d)) + world.head_tilt
        if top > V_FOV / 2 or bottom < -V_FOV / 2:
            continue
        x1 = 0.5 - (bearing + half_w) / H_FOV
        x2 = 0.5 - (bearing - half_w) / H_FOV
        y1, y2 = 0.5 + top / V_FOV, 0.5 + bottom / V_FOV
        if y2 <= 0 or y1 >= 1 or x2 <= 0 or x1 >= 1:
            continue
        seen.append(Detection(name=name, x1=max(0.0, x1), y1=max(0.0, y1), x2=min(1.0, x2), y2=min(1.0, y2),
                              depth=round(d, 2)))
    return sorted(seen, key=lambda det: det.name)


def camera_image(layout: Layout, world: World, size: tuple[int, int] = (160, 120)) -> object:
    """The egocentric view as a PIL image: floor and wall bands, one coloured box per detection."""
    from PIL import Image, ImageDraw

    w, h = size
    img = Image.new("RGB", size, (205, 210, 220))
    draw = ImageDraw.Draw(img)
    horizon = int(h * (0.5 + world.head_tilt / V_FOV))
    draw.rectangle([0, max(0, horizon), w, h], fill=(150, 135, 115))
    for det in detect(layout, world):
        colour = _colour(det.name)
        draw.rectangle([det.x1 * w, det.y1 * h, det.x2 * w, det.y2 * h], fill=colour, outline=(20, 20, 20))
    return img


def _colour(name: str) -> tuple[int, int, int]:
    n = sum(ord(c) * (i + 1) for i, c in enumerate(name))
    return (60 + n * 37 % 180, 60 + n * 91 % 180, 60 + n * 53 % 180)


def top_down(layout: Layout, world: World, scale: int = 50) -> object:
    """A map of the office with the robot, its gaze and its trail (PIL image)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (int(layout.width * scale), int(layout.height * scale)), (250, 250, 245))
    draw = ImageDraw.Draw(img)

    def p(x: float, y: float) -> tuple[float, float]:
        return x * scale, (layout.height - y) * scale

    for f in layout.furniture:
        a, b = p(f.rect.x1, f.rect.y2), p(f.rect.x2, f.rect.y1)
        draw.rectangle([a, b], fill=(200, 180, 150), outline=(120, 100, 80))
        draw.text((a[0] + 2, a[1] + 2), f.label or f.name, fill=(60, 40, 20))
    for o in layout.obstacles:
        draw.rectangle([p(o.x1, o.y2), p(o.x2, o.y1)], fill=(120, 160, 120))
    for x1, y1, x2, y2 in layout.walls:
        draw.line([p(x1, y1), p(x2, y2)], fill=(40, 40, 40), width=4)
    for room in layout.rooms:
        draw.text(p(room.rect.x1 + 0.2, room.rect.y2 - 0.2), room.name, fill=(120, 120, 120))
    if len(world.trail) > 1:
        draw.line([p(x, y) for x, y in world.trail], fill=(90, 130, 220), width=2)
    for t in world.things.values():
        if t.on == "robot":
            continue
        cx, cy = p(t.x, t.y)
        draw.ellipse([cx - 5, cy - 5, cx + 5, cy + 5], fill=_colour(t.name), outline=(0, 0, 0))
        draw.text((cx + 6, cy - 6), t.name, fill=(0, 0, 0))
    r = world.robot
    cx, cy = p(r.x, r.y)
    rad = ROBOT_RADIUS * scale
    draw.ellipse([cx - rad, cy - rad, cx + rad, cy + rad], fill=(230, 90, 60), outline=(0, 0, 0))
    for edge in (-H_FOV / 2, H_FOV / 2):
        ray = math.radians(r.heading + world.head_yaw + edge)
        draw.line([(cx, cy), (cx + math.cos(ray) * 1.5 * scale, cy - math.sin(ray) * 1.5 * scale)],
                  fill=(230, 90, 60))
    if world.holding:
        draw.text((cx + rad, cy + rad), f"holding {world.holding}", fill=(150, 30, 30))
    return img
