"""Numeric questions: object size, room size, object count, absolute distance.

Definitions (one per quantity): object size = the longest of the object's own length, width and
height, in whole centimetres (diameter for round shapes); room size = floor area in square metres;
absolute distance = straight-line distance between the two object centres in metres (2 decimals);
object count = instances of the label clearly seen in the image (single image) or present in the
room (multi-view and video, asked only when every instance is clearly seen somewhere).
"""

from __future__ import annotations

import numpy as np

from ladder_jax.data.toyworld.question import Question, Views, distance, format_number
from ladder_jax.data.toyworld.questions_choice import named
from ladder_jax.data.toyworld.scene import Scene


def object_size(scene: Scene, views: Views, rng: np.random.Generator) -> Question | None:
    objs = named(scene, views)
    if not objs:
        return None
    obj = objs[int(rng.integers(len(objs)))]
    dims = ", ".join(f"{round(float(d) * 100)}" for d in obj.dims)
    return Question(
        "object size",
        f"What is the length of the longest dimension (length, width, or height) of the {obj.label}, "
        "measured in centimeters?",
        None,
        str(obj.longest_cm),
        f"The {obj.label} measures {dims} cm (length, width, height); the longest is {obj.longest_cm} cm.",
        f"The {obj.label}'s longest side is {obj.longest_cm} cm.",
    )


def room_size(scene: Scene, views: Views, rng: np.random.Generator) -> Question | None:
    if views.data_type == "single_image":
        return None  # one view rarely shows the whole floor
    x, y = (format_number(float(v), 1) for v in scene.size[:2])
    area = format_number(scene.floor_area)
    return Question(
        "room size",
        "What is the size of this room (in square meters)? If multiple rooms are shown, estimate the "
        "size of the combined space.",
        None,
        area,
        f"The floor is {x} m by {y} m, so its area is {x} × {y} = {area} square meters.",
        f"The floor covers {area} square meters.",
    )


def object_count(scene: Scene, views: Views, rng: np.random.Generator) -> Question | None:
    seen, unclear = views.seen(), views.glimpsed_only()
    by_label: dict[str, list[int]] = {}
    for obj in scene.objects:
        by_label.setdefault(obj.label, []).append(obj.id)
    counts = {}
    for label, ids in by_label.items():
        if unclear[ids].any():
            continue
        if views.data_type == "single_image" or seen[ids].all():
            counts[label] = int(seen[ids].sum())
    counts = {label: n for label, n in counts.items() if n > 0}
    if not counts:
        return None
    labels = sorted(counts)
    weights = np.array([3.0 if counts[l] > 1 else 1.0 for l in labels])
    label = labels[int(rng.choice(len(labels), p=weights / weights.sum()))]
    where = "image" if views.data_type == "single_image" else "room"
    return Question(
        "object count",
        f"How many {label}(s) are in this {where}?",
        None,
        str(counts[label]),
        f"Going over the {where}, I find {counts[label]} {label}(s) in total.",
        f"I see {counts[label]} {label}(s).",
    )


def absolute_distance(scene: Scene, views: Views, rng: np.random.Generator) -> Question | None:
    objs = named(scene, views)
    if len(objs) < 2:
        return None
    a, b = (objs[i] for i in rng.choice(len(objs), 2, replace=False))
    d = format_number(distance(a.centre, b.centre))
    ca, cb = (", ".join(f"{v:.2f}" for v in o.centre) for o in (a, b))
    return Question(
        "absolute distance",
        f"Measuring from the centre of each object, what is the direct distance between the {a.label} "
        f"and the {b.label} (in meters)?",
        None,
        d,
        f"The {a.label}'s centre is at ({ca}) m and the {b.label}'s at ({cb}) m; the straight line "
        f"between them is {d} m long.",
        f"The {a.label} and the {b.label} are {d} m apart.",
    )
