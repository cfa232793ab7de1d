"""A procedural room: floor, four walls, a ceiling and catalogue objects resting on the floor.

World frame (metres, right-handed): the floor is the plane z = 0 with +z up; the room spans
x in [0, size_x], y in [0, size_y], z in [0, height]. An object's `centre` is the centre of its
solid, `dims` are its own (length, width, height) before rotation, `yaw` turns it about +z
(counter-clockwise seen from above) and only boxes are ever rotated.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ladder_jax.data.toyworld.catalogue import BOX, CATALOGUE, Kind, sample_dims

WALL_MARGIN = 0.45  # keeps a free band along the walls for the cameras
GAP = 0.10  # minimum free space between two footprints
MAX_TRIES = 60


@dataclasses.dataclass(frozen=True)
class Obj:
    id: int  # instance id in the rendered masks, 1-based
    label: str
    shape: str
    centre: np.ndarray  # (3,)
    dims: np.ndarray  # (3,) length, width, height in the object's own frame
    yaw: float
    colour: tuple[int, int, int]

    @property
    def extent(self) -> np.ndarray:
        """Size of the world-axis-aligned bounding box."""
        c, s = abs(np.cos(self.yaw)), abs(np.sin(self.yaw))
        return np.array([self.dims[0] * c + self.dims[1] * s, self.dims[0] * s + self.dims[1] * c, self.dims[2]])

    @property
    def longest_cm(self) -> int:
        return int(round(float(self.dims.max()) * 100))


@dataclasses.dataclass(frozen=True)
class Scene:
    size: np.ndarray  # (3,) size_x, size_y, height
    objects: tuple[Obj, ...]
    surface_colours: np.ndarray  # (6, 3) floor, ceiling, walls x=0, x=size_x, y=0, y=size_y

    @property
    def floor_area(self) -> float:
        return float(self.size[0] * self.size[1])

    def label_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for obj in self.objects:
            counts[obj.label] = counts.get(obj.label, 0) + 1
        return counts

    def unique_objects(self) -> list[Obj]:
        """Objects whose label occurs once: the only ones a question may name."""
        counts = self.label_counts()
        return [obj for obj in self.objects if counts[obj.label] == 1]


def sample_scene(rng: np.random.Generator) -> Scene:
    size = np.array([rng.uniform(3.0, 8.0), rng.uniform(3.0, 8.0), rng.uniform(2.5, 3.0)])
    size = np.round(size * np.array([10, 10, 20])) / np.array([10, 10, 20])
    kinds = rng.choice(len(CATALOGUE), size=int(rng.integers(6, 11)), replace=False)
    wanted: list[Kind] = []
    for k in kinds:
        kind = CATALOGUE[int(k)]
        repeats = int(rng.integers(1, kind.max_count + 1)) if rng.random() < 0.6 else 1
        wanted += [kind] * repeats
    placed: list[Obj] = []
    for kind in wanted:
        obj = _place(kind, len(placed) + 1, size, placed, rng)
        if obj is not None:
            placed.append(obj)
    grey = rng.uniform(150, 225, size=(6, 1)) * rng.uniform(0.92, 1.0, size=(6, 3))
    return Scene(size=size, objects=tuple(placed), surface_colours=grey.astype(np.float32))


def _place(kind: Kind, obj_id: int, room: np.ndarray, placed: list[Obj], rng) -> Obj | None:
    dims = sample_dims(kind, rng)
    for _ in range(MAX_TRIES):
        yaw = 0.0
        if kind.shape == BOX:
            yaw = float(rng.choice([0.0, np.pi / 2])) if rng.random() < 0.5 else float(rng.uniform(0, np.pi))
        candidate = Obj(obj_id, kind.label, kind.shape, np.zeros(3), dims, yaw, kind.colour)
        half = candidate.extent[:2] / 2
        lo, hi = WALL_MARGIN + half, room[:2] - WALL_MARGIN - half
        if np.any(lo >= hi):
            return None
        xy = rng.uniform(lo, hi)
        candidate = dataclasses.replace(candidate, centre=np.array([xy[0], xy[1], dims[2] / 2]))
        if not any(footprints_overlap(candidate, other, GAP) for other in placed):
            return candidate
    return None


def footprint_corners(obj: Obj) -> np.ndarray:
    """(4, 2) floor-plane corners; round footprints are bounded by their (conservative) square."""
    c, s = np.cos(obj.yaw), np.sin(obj.yaw)
    local = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]]) * obj.dims[:2] / 2
    return obj.centre[:2] + local @ np.array([[c, s], [-s, c]])


def footprints_overlap(a: Obj, b: Obj, gap: float) -> bool:
    """Separating-axis test of two convex footprints, grown by `gap`."""
    ca, cb = footprint_corners(a), footprint_corners(b)
    axes = np.concatenate([np.diff(ca[:3], axis=0), np.diff(cb[:3], axis=0)])
    axes = axes / np.linalg.norm(axes, axis=1, keepdims=True)
    pa, pb = ca @ axes.T, cb @ axes.T  # (4 corners, 4 axes)
    separated = (pa.max(0) + gap < pb.min(0)) | (pb.max(0) + gap < pa.min(0))
    return not bool(separated.any())
