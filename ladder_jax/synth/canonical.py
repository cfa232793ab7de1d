"""A gravity-aligned frame for the scene: x right, y up, z forward (camera's view projected on the floor).

The origin stays at the camera centre, so "closer to the camera" and clock directions are read
straight off canonical coordinates. Up comes from, in order:

1. `camera_to_world` + `world_up` when the scene gives them (exact);
2. a RANSAC floor plane: the plane with most inliers among the background (non-object) points,
   restricted to planes below the camera whose normal is within `max_tilt_deg` of the image's up
   direction (so a large wall never wins), accepted when it holds > 30% of the background points
   (objects are excluded because a cluttered view would otherwise fail on a visible floor);
3. otherwise the camera's own axes (y flipped to point up) with `has_up = False`: predicates that
   need gravity (above, heights, horizontal/vertical distance, widths, sizes, clock direction) are
   then not emitted — only those defined in the camera's view (distance, left of, behind, closer).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

FLOOR_MIN_FRACTION = 0.30
CAMERA_UP = np.array([0.0, -1.0, 0.0])  # OpenCV: image up is -y
CAMERA_FORWARD = np.array([0.0, 0.0, 1.0])


@dataclasses.dataclass(frozen=True)
class Frame:
    rotation: np.ndarray  # (3, 3) rows are the canonical x (right), y (up), z (forward) in camera axes
    has_up: bool
    source: str
    floor_fraction: float | None = None  # share of background points on the floor plane
    camera_height: float | None = None  # metres above the fitted floor

    def apply(self, points: np.ndarray) -> np.ndarray:
        return points @ self.rotation.T


def frame_from_up(up: np.ndarray, source: str, **extra) -> Frame:
    """Orthonormal frame with y = up, z = camera forward projected on the horizontal plane."""
    up = up / np.linalg.norm(up)
    fwd = CAMERA_FORWARD - CAMERA_FORWARD @ up * up
    if np.linalg.norm(fwd) < 1e-3:  # camera looking straight down/up: use the image's up direction
        fwd = CAMERA_UP - CAMERA_UP @ up * up
    fwd = fwd / np.linalg.norm(fwd)
    right = np.cross(fwd, up)
    return Frame(np.stack([right, up, fwd]), True, source, **extra)


def camera_frame() -> Frame:
    return Frame(np.diag([1.0, -1.0, 1.0]), False, "camera axes (no floor found: gravity unknown)")


def plane_threshold(points: np.ndarray) -> float:
    """Inlier distance: 1 cm, growing to 1% of the median depth because depth error grows with range."""
    return max(0.01, 0.01 * float(np.median(points[:, 2])))


def _hypotheses(sample: np.ndarray, rng: np.random.Generator, iterations: int):
    tri = sample[rng.integers(0, len(sample), (iterations, 3))]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    n = n / np.maximum(norm, 1e-12)
    d = -(n * tri[:, 0]).sum(axis=1)
    sign = np.where(d < 0, -1.0, 1.0)  # orient every normal towards the camera (origin on + side)
    return n * sign[:, None], d * sign, norm[:, 0] > 1e-9


def _orient(n: np.ndarray, d: float) -> tuple[np.ndarray, float]:
    return (-n, -d) if d < 0 else (n, d)


def fit_floor(points: np.ndarray, rng: np.random.Generator, iterations: int = 1000,
              max_tilt_deg: float = 50.0, sample_size: int = 4096) -> tuple[np.ndarray, float, np.ndarray] | None:
    """Best floor plane n·p + d = 0 (n unit, towards the camera) over `points` (N, 3) in camera axes.

    All hypotheses are scored in one batch on a random subsample, then the winner is refit by least
    squares on its inliers among all points. Returns (n, d, inlier mask) or None.
    """
    if len(points) < 3:
        return None
    sample = points[rng.choice(len(points), min(len(points), sample_size), replace=False)]
    thr = plane_threshold(points)
    n, d, ok = _hypotheses(sample, rng, iterations)
    ok &= n @ CAMERA_UP > math.cos(math.radians(max_tilt_deg))
    if not ok.any():
        return None
    counts = (np.abs(sample.astype(np.float32) @ n.T.astype(np.float32) + d.astype(np.float32)) < thr).sum(axis=0)
    best = int(np.argmax(np.where(ok, counts, -1)))
    n_best, d_best = n[best], d[best]
    for _ in range(2):  # least-squares refinement on the inliers
        inliers = np.abs(points @ n_best + d_best) < thr
        centre = points[inliers].mean(axis=0)
        normal = np.linalg.svd(points[inliers] - centre, full_matrices=False)[2][-1]
        n_best, d_best = _orient(normal, -float(normal @ centre))
    return n_best, d_best, np.abs(points @ n_best + d_best) < thr


def canonical_frame(background_points: np.ndarray, camera_to_world: np.ndarray | None = None,
                    world_up: np.ndarray | None = None, seed: int = 0) -> Frame:
    """The frame for a scene from its background points (camera axes); see the module docstring."""
    if camera_to_world is not None:
        up_world = np.array([0.0, 0.0, 1.0]) if world_up is None else np.asarray(world_up, float)
        return frame_from_up(camera_to_world[:3, :3].T @ up_world, "camera_to_world")
    fit = fit_floor(background_points, np.random.default_rng(seed))
    if fit is None:
        return camera_frame()
    n, d, inliers = fit
    fraction = float(inliers.mean())
    if fraction <= FLOOR_MIN_FRACTION:
        return dataclasses.replace(camera_frame(), floor_fraction=fraction)
    return frame_from_up(n, "floor plane (RANSAC)", floor_fraction=fraction, camera_height=d)
