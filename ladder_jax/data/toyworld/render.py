"""A numpy pinhole ray caster: RGB with Lambert shading, metric z-depth and instance ids.

Depth is measured along the optical axis (z-depth): rays are K^-1 [u, v, 1] with unit z in camera
coordinates, so the ray parameter of the nearest hit is the depth itself. The room is closed
(floor, walls, ceiling), so every pixel has a depth; instance 0 marks the room surfaces.
Each object is only tested against the rays inside its projected bounding rectangle.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ladder_jax.data.toyworld.intersect import intersect
from ladder_jax.data.toyworld.scene import Obj, Scene

SUN = np.array([0.35, 0.55, 1.0]) / np.linalg.norm([0.35, 0.55, 1.0])


@dataclasses.dataclass(frozen=True)
class Frame:
    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32 metres along the optical axis
    instances: np.ndarray  # (H, W) uint16, 0 = room surfaces
    intrinsics: np.ndarray  # (3, 3)
    camera_to_world: np.ndarray  # (4, 4)

    def pixel_counts(self, n_objects: int) -> np.ndarray:
        """(n_objects + 1,) visible pixels per instance id."""
        return np.bincount(self.instances.ravel(), minlength=n_objects + 1)


def camera_rays(intrinsics: np.ndarray, pose: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) world directions whose camera-frame z component is 1."""
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    pix = np.stack([u, v, np.ones_like(u)], axis=-1)
    return pix @ np.linalg.inv(intrinsics).T @ pose[:3, :3].T


def render(scene: Scene, intrinsics: np.ndarray, pose: np.ndarray, size: int) -> Frame:
    origin, rays = pose[:3, 3], camera_rays(intrinsics, pose, size)
    depth, normal, surface = _room(scene.size, origin, rays)
    colour = scene.surface_colours[surface].astype(np.float64)
    instances = np.zeros((size, size), np.uint16)
    for obj in scene.objects:
        window = _screen_window(obj, intrinsics, pose, size)
        if window is None:
            continue
        t, n = intersect(obj, origin, rays[window])
        closer = t < depth[window]
        # Basic slices are views, so masked assignment updates the full-frame buffers in place.
        depth[window][closer] = t[closer]
        normal[window][closer] = n[closer]
        colour[window][closer] = obj.colour
        instances[window][closer] = obj.id
    view = rays / np.linalg.norm(rays, axis=-1, keepdims=True)
    shade = 0.3 + 0.4 * np.clip(normal @ SUN, 0, 1) + 0.3 * np.clip(-(normal * view).sum(-1), 0, 1)
    rgb = np.clip(colour * shade[..., None], 0, 255).round().astype(np.uint8)
    return Frame(rgb, depth.astype(np.float32), instances, intrinsics, pose)


def _room(size: np.ndarray, origin: np.ndarray, rays: np.ndarray):
    """Nearest room plane: per axis only the wall the ray heads towards can be hit from inside.

    Surfaces are numbered floor, ceiling, x=0, x=size_x, y=0, y=size_y (as `surface_colours`).
    """
    far_side = rays > 0
    bounds = np.array([size[0], size[1], size[2]])
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (np.where(far_side, bounds, 0.0) - origin) / rays
    t = np.where(np.isfinite(t) & (t > 0), t, np.inf)
    axis = t.argmin(-1)
    hit_far = np.take_along_axis(far_side, axis[..., None], -1)[..., 0]
    surface = np.array([2, 4, 0])[axis] + hit_far
    normal = np.eye(3)[axis] * np.where(hit_far, -1.0, 1.0)[..., None]
    return np.take_along_axis(t, axis[..., None], -1)[..., 0], normal, surface


def _screen_window(obj: Obj, intrinsics: np.ndarray, pose: np.ndarray, size: int):
    """Slices of the pixels the object's bounding box can cover, or None when it is off screen."""
    signs = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T
    corners = obj.centre + signs * obj.extent / 2
    cam = (corners - pose[:3, 3]) @ pose[:3, :3]
    if np.any(cam[:, 2] <= 1e-3):
        return np.s_[:, :]  # a corner behind the camera: projection bounds are meaningless
    pix = cam @ intrinsics.T
    uv = pix[:, :2] / pix[:, 2:]
    lo = np.clip(np.floor(uv.min(0)).astype(int) - 1, 0, size)
    hi = np.clip(np.ceil(uv.max(0)).astype(int) + 2, 0, size)
    if np.any(hi <= lo):
        return None
    return np.s_[lo[1] : hi[1], lo[0] : hi[0]]
