"""Pinhole intrinsics and camera_to_world poses: one view, a ring of views, a smooth video path.

Camera axes follow OpenCV (x right, y down, z forward). Pixel (u, v), integer column and row,
looks along K^-1 [u, v, 1], so lifting a depth map with integer pixel coordinates is exact.
Every camera stands in the free band along the walls (objects keep `WALL_MARGIN` from them).
"""

from __future__ import annotations

import numpy as np

WALL_OFFSET = 0.2  # distance of the camera path from the walls, inside the free band
UP = np.array([0.0, 0.0, 1.0])


def intrinsics(size: int, hfov_deg: float) -> np.ndarray:
    f = (size / 2) / np.tan(np.radians(hfov_deg) / 2)
    c = (size - 1) / 2
    return np.array([[f, 0, c], [0, f, c], [0, 0, 1]], dtype=np.float64)


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """4x4 camera_to_world whose +z looks from eye at target, with the image's down along -z world."""
    forward = target - eye
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, UP)
    right = right / np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([right, down, forward], axis=1)
    pose[:3, 3] = eye
    return pose


def perimeter_point(room: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Points on the rectangle inset WALL_OFFSET from the walls; phase in [0, 1) runs once around."""
    w, h = room[0] - 2 * WALL_OFFSET, room[1] - 2 * WALL_OFFSET
    s = (np.asarray(phase) % 1.0) * 2 * (w + h)
    x = np.select([s < w, s < w + h, s < 2 * w + h], [s, w, 2 * w + h - s], 0.0)
    y = np.select([s < w, s < w + h, s < 2 * w + h], [0.0, s - w, h], 2 * (w + h) - s)
    return np.stack([x + WALL_OFFSET, y + WALL_OFFSET], axis=-1)


def single_view(room: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    eye = np.append(perimeter_point(room, rng.uniform()), rng.uniform(1.2, 1.8))
    target = np.array([*(room[:2] * rng.uniform(0.35, 0.65, size=2)), rng.uniform(0.2, 0.6)])
    return look_at(eye, target)


def ring_views(room: np.ndarray, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """`count` cameras spread evenly around the room, each looking near the room centre."""
    phases = rng.uniform() + np.arange(count) / count
    poses = []
    for xy in perimeter_point(room, phases):
        eye = np.append(xy, rng.uniform(1.3, 1.7))
        target = np.array([*(room[:2] * rng.uniform(0.4, 0.6, size=2)), 0.4])
        poses.append(look_at(eye, target))
    return poses


def video_path(room: np.ndarray, frames: int, rng: np.random.Generator) -> list[np.ndarray]:
    """A walk once around the room, looking mostly ahead (about 27 degrees inwards).

    Looking along the walk rather than at the room centre makes objects enter the view one after
    another, which appearance-order questions need (measured: twice as many scenes qualify).
    """
    start, turn = rng.uniform(), rng.choice([-1.0, 1.0])
    phases = start + turn * np.arange(frames) / frames
    eyes = perimeter_point(room, phases)
    centre = room[:2] / 2
    height = rng.uniform(1.4, 1.6)
    poses = []
    for i, xy in enumerate(eyes):
        ahead = perimeter_point(room, phases[i] + turn * 0.08) - xy
        inward = centre - xy
        gaze = 2 * ahead / np.linalg.norm(ahead) + inward / np.linalg.norm(inward)
        eye = np.append(xy, height)
        poses.append(look_at(eye, eye + np.append(gaze / np.linalg.norm(gaze) * 2.0, -0.9)))
    return poses
