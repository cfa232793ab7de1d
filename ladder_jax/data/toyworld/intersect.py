"""Analytic ray intersections, vectorized over rays.

Each function takes one ray origin `o` (3,) and directions `d` (..., 3), not necessarily unit, and
returns the ray parameter `t` (..., inf where missed; the hit point is o + t·d) and the unit world
normal at the hit (..., 3). The camera is always outside the solids, so only entry hits matter.
"""

from __future__ import annotations

import numpy as np

from ladder_jax.data.toyworld.catalogue import BOX, CYLINDER, SPHERE
from ladder_jax.data.toyworld.scene import Obj


def intersect(obj: Obj, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if obj.shape == BOX:
        return _box(obj, o, d)
    if obj.shape == CYLINDER:
        return _cylinder(obj, o, d)
    if obj.shape == SPHERE:
        return _sphere(obj, o, d)
    raise ValueError(f"unknown shape {obj.shape!r} for object {obj.id} ({obj.label})")


def _rot_z(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _box(obj: Obj, o: np.ndarray, d: np.ndarray):
    rot = _rot_z(obj.yaw)
    o_l, d_l = rot.T @ (o - obj.centre), d @ rot  # into the box's own frame
    half = obj.dims / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (-half - o_l) / d_l, (half - o_l) / d_l
    t_in, t_out = np.minimum(t1, t2), np.maximum(t1, t2)
    t_near, t_far = t_in.max(-1), t_out.min(-1)
    hit = (t_near <= t_far) & (t_near > 0)
    axis = t_in.argmax(-1)
    normal_l = -np.sign(np.take_along_axis(d_l, axis[..., None], -1)) * np.eye(3)[axis]
    return np.where(hit, t_near, np.inf), normal_l @ rot.T


def _cylinder(obj: Obj, o: np.ndarray, d: np.ndarray):
    r, z0, z1 = obj.dims[0] / 2, obj.centre[2] - obj.dims[2] / 2, obj.centre[2] + obj.dims[2] / 2
    oc = o[:2] - obj.centre[:2]
    a = (d[..., :2] ** 2).sum(-1)
    b = 2 * (d[..., :2] @ oc)
    c = oc @ oc - r * r
    disc = b * b - 4 * a * c
    with np.errstate(divide="ignore", invalid="ignore"):
        t_side = (-b - np.sqrt(disc)) / (2 * a)
        z_side = o[2] + t_side * d[..., 2]
        side_ok = (disc >= 0) & (t_side > 0) & (z_side >= z0) & (z_side <= z1)
        t_side = np.where(side_ok, t_side, np.inf)
        t_caps = []
        for z in (z0, z1):
            t = (z - o[2]) / d[..., 2]
            xy = o[:2] + t[..., None] * d[..., :2] - obj.centre[:2]
            t_caps.append(np.where((t > 0) & ((xy**2).sum(-1) <= r * r), t, np.inf))
    t = np.minimum(t_side, np.minimum(*t_caps))
    p = o + np.where(np.isfinite(t), t, 0)[..., None] * d
    radial = np.concatenate([(p[..., :2] - obj.centre[:2]) / r, np.zeros_like(t)[..., None]], -1)
    cap_normal = np.where(t == t_caps[1], 1.0, -1.0)[..., None] * np.array([0.0, 0.0, 1.0])
    return t, np.where((t == t_side)[..., None], radial, cap_normal)


def _sphere(obj: Obj, o: np.ndarray, d: np.ndarray):
    r = obj.dims[0] / 2
    oc = o - obj.centre
    a = (d * d).sum(-1)
    b = d @ oc
    disc = b * b - a * (oc @ oc - r * r)
    with np.errstate(invalid="ignore"):
        t = (-b - np.sqrt(disc)) / a
    t = np.where((disc >= 0) & (t > 0), t, np.inf)
    p = o + np.where(np.isfinite(t), t, 0)[..., None] * d
    return t, (p - obj.centre) / r
