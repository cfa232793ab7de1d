"""A small exact scene for the synthesis tests: a floor (world z = 0), an optional back wall and
boxes (yaw about world z), seen by a pinhole camera at height h pitched down, ray-cast to z-depth
and instance ids in numpy. World: x right, y forward (ahead of the camera), z up."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class WorldBox:
    label: str
    center: tuple[float, float, float]  # world metres
    size: tuple[float, float, float]  # along the box's own x, y, z before yaw
    yaw: float = 0.0  # radians about world z


def camera(height_m: float, pitch_deg: float, width: int, height: int, hfov_deg: float = 70.0):
    f = (width / 2) / np.tan(np.radians(hfov_deg) / 2)
    k = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1.0]])
    p = np.radians(pitch_deg)
    right, fwd = np.array([1.0, 0, 0]), np.array([0, np.cos(p), -np.sin(p)])
    c2w = np.eye(4)
    c2w[:3, :3] = np.stack([right, np.cross(fwd, right), fwd], axis=1)  # columns: x right, y down, z forward
    c2w[:3, 3] = [0, 0, height_m]
    return k, c2w


def _box_hits(origin, dirs, box: WorldBox):
    """Ray parameter of the first hit with a yawed box (inf where missed), slab method."""
    c, s = np.cos(-box.yaw), np.sin(-box.yaw)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    o, d = rot @ (origin - np.array(box.center)), dirs @ rot.T
    half = np.array(box.size) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (-half - o) / d, (half - o) / d
    near, far = np.nanmax(np.minimum(t1, t2), axis=-1), np.nanmin(np.maximum(t1, t2), axis=-1)
    return np.where((near <= far) & (near > 0), near, np.inf)


def render(boxes: list[WorldBox], k, c2w, width: int, height: int, wall_y: float | None = None, floor: bool = True):
    """(depth (H, W) float32 z-depth, instances (H, W) ids 1..len(boxes), rgb)."""
    v, u = np.mgrid[0:height, 0:width]
    rays_cam = np.stack([u, v, np.ones_like(u)], -1).reshape(-1, 3) @ np.linalg.inv(k).T  # z = 1: t is z-depth
    dirs, origin = rays_cam @ c2w[:3, :3].T, c2w[:3, 3]
    with np.errstate(divide="ignore"):
        planes = [np.where(dirs[:, 2] < 0, -origin[2] / dirs[:, 2], np.inf) if floor else np.full(len(dirs), np.inf)]
        planes.append(np.where(dirs[:, 1] > 0, (wall_y - origin[1]) / dirs[:, 1], np.inf) if wall_y else np.full(len(dirs), np.inf))
    t = np.stack(planes + [_box_hits(origin, dirs, b) for b in boxes], axis=1)
    hit = np.argmin(t, axis=1)
    depth = np.take_along_axis(t, hit[:, None], 1)[:, 0]
    ids = np.where(hit >= 2, hit - 1, 0)
    depth = np.where(np.isfinite(depth), depth, 0).reshape(height, width).astype(np.float32)
    rgb = (np.stack([ids * 37 % 256, ids * 91 % 256, 80 + ids * 13 % 176], -1)).reshape(height, width, 3)
    return depth, ids.reshape(height, width), rgb.astype(np.uint8)


def canonical_truth(box: WorldBox, c2w):
    """The box in the engine's canonical frame (x right, y up, z forward levelled, camera origin)."""
    cam = c2w[:3, 3]
    fwd = c2w[:3, 2] * np.array([1, 1, 0])
    fwd /= np.linalg.norm(fwd)
    up = np.array([0, 0, 1.0])
    rot = np.stack([np.cross(fwd, up), up, fwd])
    centre = rot @ (np.array(box.center) - cam)
    return centre, max(box.size[0], box.size[1]), min(box.size[0], box.size[1]), box.size[2]


LABELS = ("table", "chair", "sofa", "lamp", "cabinet", "box", "bin", "plant", "stool", "desk", "shelf", "bed")


def random_room(rng: np.random.Generator, n: int = 10) -> list[WorldBox]:
    """n boxes with unique labels on a jittered 4×3 grid of 1.1 m cells ahead of the camera (no
    overlaps); every third one is small and sits on top of the box before it."""
    cells = rng.permutation([(x, y) for x in (-1.65, -0.55, 0.55, 1.65) for y in (2.6, 3.7, 4.8)])
    boxes, labels = [], rng.permutation(LABELS)
    for i in range(n):
        if i % 3 == 2 and boxes:
            base = boxes[-1]
            sx, sy, sz = rng.uniform(0.15, 0.3), rng.uniform(0.15, 0.3), rng.uniform(0.2, 0.5)
            top = base.center[2] + base.size[2] / 2
            boxes.append(WorldBox(str(labels[i]), (base.center[0], base.center[1], top + sz / 2), (sx, sy, sz)))
            continue
        x, y = cells[i] + rng.uniform(-0.1, 0.1, 2)
        sx, sy, sz = rng.uniform(0.3, 0.75), rng.uniform(0.3, 0.75), rng.uniform(0.25, 1.0)
        boxes.append(WorldBox(str(labels[i]), (x, y, sz / 2), (sx, sy, sz), rng.uniform(-0.5, 0.5)))
    return boxes
