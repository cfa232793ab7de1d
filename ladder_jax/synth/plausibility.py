"""What an indoor RGB-D scene may look like before its numbers become "metric" questions.

A scene whose geometry is implausible (depth in millimetres read as metres, a focal length of a
few pixels, a camera pose that stretches or shears space) would turn into confident answers of
kilometres or millimetres. `scene_problem` names the first implausible field of a scene (the
scene is then skipped and reported); `object_problem` and `label_problem` name why one object
cannot be used (it is dropped and reported, the rest of the scene is kept).
"""

from __future__ import annotations

import math
import re

import numpy as np

from ladder_jax.data.scene_folder import Scene

HFOV_DEGREES = (20.0, 140.0)  # phone main cameras ≈ 65–80°, wide RGB-D sensors ≈ 90–120°
PIXEL_ASPECT = (0.5, 2.0)  # fy / fx
MEDIAN_DEPTH_M = (0.2, 20.0)  # a room seen from inside it
MAX_DEPTH_M = 100.0  # sensor range; beyond it the unit is wrong
ROTATION_TOLERANCE = 1e-3  # |RᵀR − I| entries of camera_to_world's rotation
OBJECT_EXTENT_M = (0.01, 15.0)  # the largest side of an indoor object's box
MAX_LABEL_CHARS = 64
_MARKUP = re.compile(r"[<>{}\[\]\\]|[\x00-\x1f\x7f]")


def hfov_problem(fov_deg: float) -> str | None:
    lo, hi = HFOV_DEGREES
    if not (math.isfinite(fov_deg) and lo <= fov_deg <= hi):
        return f"a horizontal field of view of {fov_deg:g}° is outside the plausible [{lo:g}, {hi:g}]°"
    return None


def intrinsics_problem(k: np.ndarray, width: int, height: int) -> str | None:
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    why = hfov_problem(math.degrees(2 * math.atan(width / (2 * fx))))
    if why:
        return f"field 'intrinsics': fx = {fx:g} px for a {width} px wide image gives {why}"
    if not PIXEL_ASPECT[0] <= fy / fx <= PIXEL_ASPECT[1]:
        return f"field 'intrinsics': fy / fx = {fy / fx:.3g} is outside [{PIXEL_ASPECT[0]}, {PIXEL_ASPECT[1]}]"
    if not (0 <= cx <= width and 0 <= cy <= height):
        return f"field 'intrinsics': principal point ({cx:g}, {cy:g}) lies outside the {width}x{height} image"
    return None


def pose_problem(c2w: np.ndarray) -> str | None:
    r = c2w[:3, :3]
    error = float(np.abs(r.T @ r - np.eye(3)).max())
    if error > ROTATION_TOLERANCE or np.linalg.det(r) <= 0:
        return (f"field 'camera_to_world' is not a rigid pose: its rotation is not orthonormal with determinant +1 "
                f"(|RᵀR − I| = {error:.3g}, det = {np.linalg.det(r):.3g}); scale or shear would distort every length")
    if not np.allclose(c2w[3], [0, 0, 0, 1], atol=1e-6):
        return f"field 'camera_to_world' must end with the row [0, 0, 0, 1], got {c2w[3].tolist()}"
    return None


def depth_problem(depth: np.ndarray) -> str | None:
    valid = depth[depth > 0]
    median, top = float(np.median(valid)), float(valid.max())
    lo, hi = MEDIAN_DEPTH_M
    if not lo <= median <= hi or top > MAX_DEPTH_M:
        hint = " (millimetres? divide by 1000)" if median > hi else ""
        return (f"depth.npy: median depth {median:.4g} m (max {top:.4g} m) is outside an indoor scene's "
                f"[{lo:g}, {hi:g}] m (max {MAX_DEPTH_M:g} m); depth must be metres{hint}")
    return None


def scene_problem(scene: Scene) -> str | None:
    """The first implausible field of a scene, or None."""
    h, w = scene.shape
    checks = [lambda: depth_problem(scene.depth)]
    if scene.intrinsics is not None:
        checks.append(lambda: intrinsics_problem(scene.intrinsics, w, h))
    if scene.camera_to_world is not None:
        checks.append(lambda: pose_problem(scene.camera_to_world))
    return next((why for why in (check() for check in checks) if why), None)


def label_problem(label: str) -> str | None:
    """Labels are copied into questions and answers: markup, control characters or essays are refused."""
    if _MARKUP.search(label):
        return f"label {label!r} holds markup or control characters (<, >, brackets, braces, backslash)"
    if len(label) > MAX_LABEL_CHARS:
        return f"label is {len(label)} characters long (at most {MAX_LABEL_CHARS})"
    return None


def object_problem(width: float, depth: float, height: float) -> str | None:
    largest = max(width, depth, height)
    lo, hi = OBJECT_EXTENT_M
    if not lo <= largest <= hi:
        return (f"implausible size for an indoor object: {width:.3g} × {depth:.3g} × {height:.3g} m "
                f"(largest side outside [{lo:g}, {hi:g}] m)")
    return None
