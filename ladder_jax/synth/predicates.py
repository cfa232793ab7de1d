"""Every quantity and relation the engine emits, each with one written definition and one unit.

All are read off `ObjectBox`es in the canonical frame (x right, y up, z forward, origin at the
camera). "Centre" is always the centre of the object's oriented 3D box. A relation is only asked
when its deciding difference clears a margin, so no question hinges on a few centimetres.
Each predicate names what it needs to have seen of its objects (`ObjectBox` flags): `complete`
(not cut off by the border or hidden by a nearer object), `footprint_seen` (the top surface covers
the footprint, so the back is not guessed) and `base_seen` (the bottom rests visibly on a surface).
Relations to the camera (left of, behind, closer, direction), protected by their margins, use
every object; between two objects' centres (direction from, nearest) a cut-off or hidden object's
centre can be a metre off, so those need objects seen whole.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Callable

import numpy as np

from ladder_jax.synth.cleaning import ObjectBox

LOG_RATIO_MARGIN = math.log(1.2)  # size comparisons need ≥ 20% difference
POSITION_MARGIN = 0.10  # metres, for left/above/behind/closer
MIN_DISTANCE = 0.10  # metres: distances below this are not asked (relative error is meaningless)
HOUR_EDGE = 0.2  # clock directions within 6° of a half-hour boundary are not asked
MIN_CLOCK_RANGE = 1.0  # metres along the floor: a half-seen object's centre can sit ~15 cm off (toy world: 0.5 m gave 97%)


@dataclasses.dataclass(frozen=True)
class Predicate:
    name: str
    arity: int
    unit: str  # "m", "bool" or "o'clock"
    definition: str
    needs_up: bool
    value: Callable[..., float]  # quantity, or signed score (True iff > 0) for relations
    margin: float = 0.0  # relations: |score| must reach this; quantities: value must reach it
    needs: tuple[str, ...] = ()  # ObjectBox flags every object must have for the value to be right


WHOLE = ("complete", "footprint_seen", "base_seen")  # box centre and every extent
PLAN = ("complete", "footprint_seen")  # horizontal extents and the centre along the floor
UPRIGHT = ("complete", "base_seen")  # height and the centre along up


def _clock(dx: float, dz: float) -> float:
    """Hours clockwise from straight ahead; NaN when too near to tell."""
    if math.hypot(dx, dz) < MIN_CLOCK_RANGE:
        return math.nan
    return math.degrees(math.atan2(dx, dz)) / 30.0


def _dist(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b))


def _log_ratio(a: float, b: float) -> float:
    return math.log(max(a, 1e-9) / max(b, 1e-9))


PREDICATES: dict[str, Predicate] = {p.name: p for p in [
    Predicate("distance", 2, "m", "Euclidean distance between the centres of the two objects' 3D boxes", False,
              lambda a, b: _dist(a.center, b.center), MIN_DISTANCE, WHOLE),
    Predicate("horizontal_distance", 2, "m", "distance between box centres along the floor: sqrt(dx^2 + dz^2) in the gravity-aligned frame", True,
              lambda a, b: _dist(a.center[[0, 2]], b.center[[0, 2]]), MIN_DISTANCE, PLAN),
    Predicate("vertical_distance", 2, "m", "|dy| between box centres along gravity up", True,
              lambda a, b: abs(float(a.center[1] - b.center[1])), MIN_DISTANCE, UPRIGHT),
    Predicate("width", 1, "m", "longer horizontal side of the object's box oriented about gravity up", True,
              lambda a: a.width, needs=PLAN),
    Predicate("depth", 1, "m", "shorter horizontal side of the object's box oriented about gravity up", True,
              lambda a: a.depth, needs=PLAN),
    Predicate("height", 1, "m", "extent of the object's box along gravity up", True,
              lambda a: a.height, needs=UPRIGHT),
    Predicate("size", 1, "m", "longest side (width, depth or height) of the object's gravity-aligned oriented box", True,
              lambda a: max(a.width, a.depth, a.height), needs=WHOLE),
    Predicate("left_of", 2, "bool", "the first centre lies left of the second along the frame's right axis (camera right, levelled)", False,
              lambda a, b: float(b.center[0] - a.center[0]), POSITION_MARGIN),
    Predicate("above", 2, "bool", "the first centre lies higher than the second along gravity up", True,
              lambda a, b: float(a.center[1] - b.center[1]), POSITION_MARGIN, UPRIGHT),
    Predicate("behind", 2, "bool", "the first centre lies farther than the second along the camera's forward direction (levelled)", False,
              lambda a, b: float(a.center[2] - b.center[2]), POSITION_MARGIN),
    Predicate("closer", 2, "bool", "the first centre is nearer to the camera centre than the second (Euclidean)", False,
              lambda a, b: float(np.linalg.norm(b.center) - np.linalg.norm(a.center)), POSITION_MARGIN),
    Predicate("bigger", 2, "bool", "the first box volume (width x depth x height) exceeds the second by at least 20%", True,
              lambda a, b: _log_ratio(a.volume, b.volume), LOG_RATIO_MARGIN, WHOLE),
    Predicate("taller", 2, "bool", "the first height (extent along up) exceeds the second by at least 20%", True,
              lambda a, b: _log_ratio(a.height, b.height), LOG_RATIO_MARGIN, UPRIGHT),
    Predicate("wider", 2, "bool", "the first width (longer horizontal side) exceeds the second by at least 20%", True,
              lambda a, b: _log_ratio(a.width, b.width), LOG_RATIO_MARGIN, PLAN),
    Predicate("direction", 1, "o'clock", "clock position of the centre seen from the camera on the floor plane; 12 = straight ahead, 3 = right", True,
              lambda a: _clock(a.center[0], a.center[2])),
    Predicate("direction_from", 2, "o'clock", "clock position of the second centre seen from the first, facing the camera's forward direction on the floor; 12 = ahead, 3 = right", True,
              lambda a, b: _clock(b.center[0] - a.center[0], b.center[2] - a.center[2]), needs=("complete",)),
]}


@dataclasses.dataclass(frozen=True)
class Fact:
    """One answerable statement: a predicate applied to objects (labels in question order)."""

    predicate: str
    objects: tuple[str, ...]
    value: float | bool | int
    unit: str
    definition: str


def evaluate(name: str, boxes: tuple[ObjectBox, ...]) -> Fact | None:
    """The fact for `boxes`, or None when the question would hinge on a margin or an hour boundary."""
    p = PREDICATES[name]
    raw = p.value(*boxes)
    labels = tuple(b.label for b in boxes)
    if p.unit == "bool":
        return Fact(name, labels, raw > 0, p.unit, p.definition) if abs(raw) >= p.margin else None
    if p.unit == "o'clock":
        if math.isnan(raw) or abs(raw - math.floor(raw) - 0.5) < HOUR_EDGE:
            return None
        hour = int(round(raw)) % 12
        return Fact(name, labels, 12 if hour == 0 else hour, p.unit, p.definition)
    return Fact(name, labels, float(raw), p.unit, p.definition) if raw >= p.margin else None


def scene_facts(boxes: list[ObjectBox], has_up: bool, rng: np.random.Generator) -> list[Fact]:
    """Every fact about unambiguous objects; each unordered pair is asked in a random order."""
    usable = [p for p in PREDICATES.values() if has_up or not p.needs_up]
    facts = []
    for p in usable:
        subjects = [b for b in boxes if all(getattr(b, flag) for flag in p.needs)]
        if p.arity == 1:
            facts += [evaluate(p.name, (b,)) for b in subjects]
            continue
        for a, b in itertools.combinations(subjects, 2):
            facts.append(evaluate(p.name, (a, b) if rng.random() < 0.5 else (b, a)))
    return [f for f in facts if f is not None]


def nearest(reference: ObjectBox, candidates: list[ObjectBox]) -> ObjectBox | None:
    """Candidate whose centre is nearest the reference's, if it wins by POSITION_MARGIN."""
    d = np.array([_dist(reference.center, c.center) for c in candidates])
    order = np.argsort(d)
    if len(d) < 2 or d[order[1]] - d[order[0]] < POSITION_MARGIN:
        return None
    return candidates[int(order[0])]
