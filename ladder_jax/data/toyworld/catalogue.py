"""The labelled object catalogue: shape, plausible metric size ranges and one colour per label.

Sizes are (length, width, height) ranges in metres for boxes, (radius, height) for vertical
cylinders and (radius,) for spheres. Sampled sizes are snapped to whole centimetres (radii to half
centimetres) so that "longest dimension in cm" is an exact integer by construction.
"""

from __future__ import annotations

import dataclasses

import numpy as np

BOX, CYLINDER, SPHERE = "box", "cylinder", "sphere"


@dataclasses.dataclass(frozen=True)
class Kind:
    label: str
    shape: str
    size_range: tuple[tuple[float, float], ...]
    colour: tuple[int, int, int]
    max_count: int = 1  # > 1: the label may repeat in a scene (then it is only counted, never named)


CATALOGUE: tuple[Kind, ...] = (
    Kind("chair", BOX, ((0.42, 0.55), (0.42, 0.55), (0.80, 1.00)), (200, 60, 50), max_count=4),
    Kind("table", BOX, ((0.80, 1.60), (0.60, 0.90), (0.70, 0.78)), (150, 95, 45)),
    Kind("sofa", BOX, ((1.60, 2.20), (0.80, 0.95), (0.75, 0.90)), (60, 90, 170)),
    Kind("bed", BOX, ((1.90, 2.10), (0.90, 1.60), (0.45, 0.60)), (235, 235, 240)),
    Kind("cabinet", BOX, ((0.60, 1.00), (0.40, 0.60), (0.90, 1.90)), (120, 70, 30)),
    Kind("bookshelf", BOX, ((0.80, 1.20), (0.28, 0.40), (1.60, 2.00)), (90, 50, 25)),
    Kind("refrigerator", BOX, ((0.60, 0.80), (0.60, 0.75), (1.60, 1.90)), (200, 215, 225)),
    Kind("nightstand", BOX, ((0.40, 0.55), (0.35, 0.45), (0.50, 0.65)), (170, 130, 200)),
    Kind("tv stand", BOX, ((1.00, 1.60), (0.35, 0.50), (0.40, 0.60)), (40, 40, 45)),
    Kind("box", BOX, ((0.30, 0.60), (0.30, 0.60), (0.25, 0.50)), (205, 170, 110), max_count=3),
    Kind("lamp", CYLINDER, ((0.15, 0.25), (1.40, 1.80)), (250, 220, 60)),
    Kind("plant", CYLINDER, ((0.20, 0.35), (0.50, 1.20)), (40, 160, 60), max_count=3),
    Kind("barrel", CYLINDER, ((0.28, 0.32), (0.85, 0.95)), (150, 40, 110)),
    Kind("trash can", CYLINDER, ((0.15, 0.22), (0.35, 0.60)), (110, 120, 110)),
    Kind("stool", CYLINDER, ((0.17, 0.22), (0.45, 0.75)), (230, 120, 20), max_count=3),
    Kind("ball", SPHERE, ((0.10, 0.18),), (230, 40, 160), max_count=3),
    Kind("exercise ball", SPHERE, ((0.28, 0.38),), (20, 200, 210)),
)

BY_LABEL = {kind.label: kind for kind in CATALOGUE}


def sample_dims(kind: Kind, rng: np.random.Generator) -> np.ndarray:
    """Object-frame (length, width, height) in metres, snapped to the centimetre grid."""
    raw = np.array([rng.uniform(lo, hi) for lo, hi in kind.size_range])
    if kind.shape == BOX:
        return np.round(raw * 100) / 100
    radius = np.round(raw[0] * 200) / 200  # half-cm radius: whole-cm diameter
    height = 2 * radius if kind.shape == SPHERE else np.round(raw[1] * 100) / 100
    return np.array([2 * radius, 2 * radius, height])
