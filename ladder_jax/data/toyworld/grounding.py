"""Stage-1 grounding: a question naming 1–3 objects, answered with their boxes in the image.

Boxes are absolute pixel xyxy on the written frame, inclusive (x2, y2 are the last covered column
and row), taken from the instance mask, so they enclose exactly the visible part of the object.
Like the release, each named label occurs once in the image (here: once in the whole room).
"""

from __future__ import annotations

import numpy as np

from ladder_jax.data.toyworld.question import Views
from ladder_jax.data.toyworld.questions_choice import named
from ladder_jax.data.toyworld.scene import Scene

TEMPLATES = {
    1: ("Where is the {0} in this image?", "What is the length of the longest dimension of the {0}?"),
    2: (
        "What is the distance between the {0} and the {1}?",
        "Which is closer to the camera, the {0} or the {1}?",
    ),
    3: (
        "If I am standing by the {0} and facing the {1}, is the {2} to my left or to my right?",
        "Which object is closer to the {0}, the {1} or the {2}?",
    ),
}


def mask_box(instances: np.ndarray, obj_id: int) -> list[int]:
    rows = np.flatnonzero((instances == obj_id).any(1))
    cols = np.flatnonzero((instances == obj_id).any(0))
    if rows.size == 0:
        raise ValueError(f"instance {obj_id} is not visible; it has no box")
    return [int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])]


def grounding(scene: Scene, views: Views, instances: np.ndarray, rng: np.random.Generator, count: int = 1):
    """Up to `count` distinct (question, [{"bbox_2d", "label"}]) about one image (fewer when the
    room has too few namable objects; none when it has none). Several questions per image teach
    the model to read which objects are asked for, not just where the usual ones are."""
    objs = named(scene, views)
    found, asked = [], set()
    for _ in range(4 * count):
        if not objs or len(found) == count:
            break
        n = int(rng.integers(1, min(3, len(objs)) + 1))
        chosen = [objs[i] for i in rng.choice(len(objs), n, replace=False)]
        templates = TEMPLATES[n]
        question = templates[int(rng.integers(len(templates)))].format(*(o.label for o in chosen))
        if question not in asked:
            asked.add(question)
            found.append((question, [{"bbox_2d": mask_box(instances, o.id), "label": o.label} for o in chosen]))
    return found
