"""Per-object point clean-up and 3D boxes in the canonical frame.

First, on the depth image, flying pixels (depth strictly between the nearest and farthest surface
around them, the mixed returns sensors give at depth edges) are marked unknown. Then cleaning works on voxel centroids (so dense near surfaces do not dominate and it stays fast), and
the surviving voxels select the raw points the box is measured on (so voxelization does not
shrink extents): voxel downsampling → statistical outlier removal → largest DBSCAN cluster →
minimum point counts.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import ConvexHull, QhullError, cKDTree


@dataclasses.dataclass(frozen=True)
class CleaningConfig:
    neighbours: int = 16  # statistical outlier removal: k nearest voxel centroids
    std_ratio: float = 4.0  # drop voxels whose mean k-NN distance exceeds mean + ratio·std
    min_voxel: float = 0.01  # metres; the voxel grows with the pixel footprint at the object's range
    footprint_voxels: float = 1.5  # voxel = max(min_voxel, this × pixel footprint)
    eps_voxels: float = 5.0  # DBSCAN radius in voxels: surfaces seen at a grazing angle are sparse
    min_samples: int = 4  # DBSCAN core-point neighbourhood (self included)
    min_points: int = 30  # raw pixels an object needs, before and after cleaning
    min_measure_points: int = 150  # to be measured (lengths, extent comparisons): ~12×12 px


FLYING_GAP = 0.10  # metres, growing to 5% of depth: beyond the 3% steps of surfaces seen at ~10° grazing


def flying_pixels(depth: np.ndarray) -> np.ndarray:
    """Mask of pixels lying well in front of their farthest and well behind their nearest 3×3 neighbour.

    A silhouette pixel is the nearest of its window and a grazing surface steps by less than the
    gap, so only mixed depths between two surfaces are caught.
    """
    known = np.where(depth > 0, depth, np.nan)
    lo = ndimage.minimum_filter(np.nan_to_num(known, nan=np.inf), 3)
    hi = ndimage.maximum_filter(np.nan_to_num(known, nan=-np.inf), 3)
    gap = np.maximum(FLYING_GAP, 0.05 * depth)
    return (depth > 0) & (depth - lo > gap) & (hi - depth > gap)


def voxel_ids(points: np.ndarray, voxel: float) -> tuple[np.ndarray, np.ndarray]:
    """(centroid of each occupied voxel (V, 3), voxel index of each point (N,))."""
    keys = np.floor(points / voxel).astype(np.int64)
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    counts = np.bincount(inverse)
    centroids = np.stack([np.bincount(inverse, weights=points[:, a]) for a in range(3)], axis=1) / counts[:, None]
    return centroids, inverse


def statistical_inliers(points: np.ndarray, neighbours: int, std_ratio: float) -> np.ndarray:
    """Mask of points whose mean distance to their k nearest neighbours is not unusually large."""
    k = min(neighbours, len(points) - 1)
    if k < 1:
        return np.ones(len(points), bool)
    dist, _ = cKDTree(points).query(points, k=k + 1)
    mean = dist[:, 1:].mean(axis=1)
    return mean <= mean.mean() + std_ratio * mean.std()


def largest_cluster(points: np.ndarray, eps: float, min_samples: int) -> np.ndarray:
    """Mask of the largest DBSCAN cluster (core points linked within eps, plus their border points)."""
    n = len(points)
    pairs = cKDTree(points).query_pairs(eps, output_type="ndarray")
    degree = np.bincount(pairs.ravel(), minlength=n) + 1
    core = degree >= min_samples
    if not core.any():
        return np.zeros(n, bool)
    both = core[pairs[:, 0]] & core[pairs[:, 1]]
    graph = coo_matrix((np.ones(both.sum()), (pairs[both, 0], pairs[both, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    labels = np.where(core, labels, -1)
    for a, b in ((0, 1), (1, 0)):  # a border point joins the cluster of a core neighbour
        sel = core[pairs[:, a]] & ~core[pairs[:, b]]
        labels[pairs[sel, b]] = labels[pairs[sel, a]]
    sizes = np.bincount(labels[labels >= 0])
    return labels == int(np.argmax(sizes))


def clean_points(points: np.ndarray, footprint: float, cfg: CleaningConfig = CleaningConfig()) -> tuple[np.ndarray, str]:
    """Cleaned raw points of one object, or an empty array and the reason it was dropped."""
    if len(points) < cfg.min_points:
        return points[:0], f"only {len(points)} pixels with depth (< {cfg.min_points})"
    voxel = max(cfg.min_voxel, cfg.footprint_voxels * footprint)
    centroids, inverse = voxel_ids(points, voxel)
    keep = statistical_inliers(centroids, cfg.neighbours, cfg.std_ratio)
    idx = np.flatnonzero(keep)
    keep[idx] = largest_cluster(centroids[idx], cfg.eps_voxels * voxel, cfg.min_samples)
    kept = points[keep[inverse]]
    if len(kept) < cfg.min_points:
        return points[:0], f"only {len(kept)} points left after cleaning (< {cfg.min_points})"
    return kept, ""


@dataclasses.dataclass(frozen=True)
class ObjectBox:
    """An object's box in the canonical frame (metres; x right, y up, z forward)."""

    id: int
    label: str
    center: np.ndarray  # (3,) centre of the oriented box
    minimum: np.ndarray  # (3,) axis-aligned box corners
    maximum: np.ndarray
    yaw: float  # radians from +x towards +z of the oriented box's long horizontal side
    width: float  # longer horizontal side of the oriented box
    depth: float  # shorter horizontal side of the oriented box
    height: float  # extent along up
    n_points: int
    pixel_box: tuple[int, int, int, int] | None = None
    complete: bool = True  # not truncated or occluded
    footprint_seen: bool = True  # its top surface covers the footprint: horizontal sides are measured, not guessed
    base_seen: bool = True  # its bottom visibly rests on a surface: the height is not cut short

    @property
    def volume(self) -> float:
        return self.width * self.depth * self.height


def min_area_rectangle(xz: np.ndarray) -> tuple[float, float, float, np.ndarray]:
    """(yaw, long side, short side, centre) of the smallest rectangle around 2D points.

    Chosen over PCA: PCA axes are arbitrary on square footprints and then overstate the sides by
    up to √2; the minimum-area rectangle has a side on a hull edge, so every edge is tried at once.
    """
    try:
        hull = xz[ConvexHull(xz).vertices]
    except (QhullError, ValueError):
        hull = xz
    edges = np.roll(hull, -1, axis=0) - hull
    angles = np.unique(np.mod(np.arctan2(edges[:, 1], edges[:, 0]), np.pi / 2))
    angles = np.concatenate([[0.0], angles])
    c, s = np.cos(angles), np.sin(angles)
    u = hull[:, :1] * c + hull[:, 1:] * s  # (H, A) coordinates along each candidate axis
    v = -hull[:, :1] * s + hull[:, 1:] * c
    lo_u, hi_u, lo_v, hi_v = u.min(0), u.max(0), v.min(0), v.max(0)
    best = int(np.argmin((hi_u - lo_u) * (hi_v - lo_v)))
    a, b, cu, cv = hi_u[best] - lo_u[best], hi_v[best] - lo_v[best], (hi_u[best] + lo_u[best]) / 2, (hi_v[best] + lo_v[best]) / 2
    centre = np.array([cu * c[best] - cv * s[best], cu * s[best] + cv * c[best]])
    yaw = float(angles[best]) if a >= b else float(angles[best] + np.pi / 2)
    return yaw, float(max(a, b)), float(min(a, b)), centre


def object_box(obj_id: int, label: str, points: np.ndarray, pixel_box=None, complete: bool = True,
               base_seen: bool = True) -> ObjectBox:
    """Box of cleaned canonical-frame points: oriented about up, height along up."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    yaw, width, depth, centre_xz = min_area_rectangle(points[:, [0, 2]])
    centre = np.array([centre_xz[0], (lo[1] + hi[1]) / 2, centre_xz[1]])
    return ObjectBox(obj_id, label, centre, lo, hi, yaw, width, depth, float(hi[1] - lo[1]), len(points),
                     pixel_box, complete, footprint_covered(points, width, depth), base_seen)


TOP_SLAB = 0.03  # metres below the highest point that still count as the top surface
FOOTPRINT_COVER = 0.7  # a disc fills 0.785 of its square; the L of two top edges fills 0.5
MAX_ROW_STEP = 0.1  # the top's samples along the view may leave gaps of at most 5% of the depth


def footprint_covered(points: np.ndarray, width: float, depth: float) -> bool:
    """Whether the points near the top fill the object's footprint rectangle (hull area ≥ 70%).

    Seen from above, a lid, a table top or a drum's top disc shows the whole footprint; seen from
    below its top (or for a ball) only the front is visible, the top points trace an edge or an
    arc, and the back of the rectangle would be a guess. A top seen so far or so flat that its
    pixel rows are far apart along the view is refused too: its sides are only known to a row.
    """
    top = points[points[:, 1] >= points[:, 1].max() - TOP_SLAB][:, [0, 2]]
    try:
        area = ConvexHull(top).volume  # in 2-D, "volume" is the area
    except (QhullError, ValueError):
        return False
    steps = np.diff(np.sort(top[:, 1]))  # far or grazing tops are sampled in sparse rows along the view
    return area >= FOOTPRINT_COVER * width * depth and steps.max() <= MAX_ROW_STEP * depth
