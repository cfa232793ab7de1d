"""Depth map + intrinsics → metric point cloud in OpenCV camera axes (x right, y down, z forward)."""

from __future__ import annotations

import math

import numpy as np

from ladder_jax.synth.plausibility import hfov_problem

# Open SpatialVLM pipelines assume fx = fy ≈ 1.5·W when the camera is unknown (about 37° horizontal).
DEFAULT_FOCAL_PER_WIDTH = 1.5


def assumed_intrinsics(width: int, height: int, fov_deg: float | None = None) -> tuple[np.ndarray, str]:
    """Pinhole intrinsics for an uncalibrated image, with the sentence stating the assumption.

    Square pixels, principal point at the image centre; fx = fy = 1.5·W unless a horizontal
    field of view is given, then fx = (W/2) / tan(fov/2).
    """
    if fov_deg is None:
        f = DEFAULT_FOCAL_PER_WIDTH * width
        text = f"assumed intrinsics: fx = fy = {DEFAULT_FOCAL_PER_WIDTH}·W = {f:.1f} px, principal point at the centre"
    else:
        why = hfov_problem(fov_deg)
        if why:
            raise ValueError(why)
        f = (width / 2) / math.tan(math.radians(fov_deg) / 2)
        text = f"assumed intrinsics: {fov_deg:g}° horizontal field of view, fx = fy = {f:.1f} px, principal point at the centre"
    k = np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]], dtype=np.float64)
    return k, text


def backproject(depth: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """(H, W) z-depth → (H, W, 3) points = depth · K⁻¹ [u, v, 1]; pixel centres at integer (u, v).

    Unknown depth (0) gives the camera centre; callers mask with `depth > 0`.
    """
    h, w = depth.shape
    v, u = np.mgrid[0:h, 0:w]
    pix = np.stack([u, v, np.ones_like(u)], axis=-1).astype(np.float64)
    rays = pix @ np.linalg.inv(intrinsics).T  # rays with z = 1, so scaling by z-depth is exact
    return (rays * depth[..., None]).astype(np.float64)


def object_points(points: np.ndarray, depth: np.ndarray, instances: np.ndarray,
                  ids) -> dict[int, np.ndarray]:
    """Points with known depth of each instance id, as (N_i, 3) arrays (one sort, no per-point loop)."""
    valid = (depth > 0) & np.isin(instances, list(ids))
    flat_ids = instances[valid]
    pts = points[valid]
    order = np.argsort(flat_ids, kind="stable")
    flat_ids, pts = flat_ids[order], pts[order]
    uniq, starts = np.unique(flat_ids, return_index=True)
    chunks = np.split(pts, starts[1:]) if len(uniq) else []
    found = dict(zip(uniq.tolist(), chunks))
    return {int(i): found.get(int(i), np.zeros((0, 3))) for i in ids}


def pixel_boxes(instances: np.ndarray, ids) -> dict[int, tuple[int, int, int, int]]:
    """Absolute-pixel xyxy box of each instance mask (inclusive pixel indices), for grounding."""
    boxes = {}
    for i in ids:
        mask = instances == i
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if len(rows):
            boxes[int(i)] = (int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1]))
    return boxes
