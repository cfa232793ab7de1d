"""Which objects are seen whole: extents and centres of cut-off or hidden objects are not measured.

An object is incomplete when its mask touches the image border (truncated) or when part of its
outline borders a labelled object that is clearly nearer (occluded). Occlusion by unlabelled
things cannot be told from a depth edge inside the background, so it is not detected.

Separately, an object's base is seen when most of its lower outline (mask pixels whose pixel below
is background) meets that background at about the same depth: it rests on a visible surface. A
lower outline floating in front of a farther surface (a ball, anything curving under itself) hides
the true bottom, so its height would be cut short.
"""

from __future__ import annotations

import numpy as np

OCCLUSION_GAP = 0.05  # metres; the gap grows to 3% of depth because depth error grows with range
OCCLUSION_GAP_FRACTION = 0.03


def incomplete_objects(instances: np.ndarray, depth: np.ndarray) -> dict[int, str]:
    """{instance id: "truncated by the image border" | "occluded by a nearer object"}."""
    edge = np.concatenate([instances[0], instances[-1], instances[:, 0], instances[:, -1]])
    reasons = {int(i): "truncated by the image border" for i in np.unique(edge) if i}
    for axis in (0, 1):
        for step in (1, -1):
            other = np.roll(instances, step, axis=axis)
            other_depth = np.roll(depth, step, axis=axis)
            gap = _gap(depth)
            hidden = (instances > 0) & (other > 0) & (other != instances) & (other_depth > 0) & (other_depth < depth - gap)
            for i in np.unique(instances[hidden]):
                reasons.setdefault(int(i), "occluded by a nearer object")
    return reasons


BASE_CONTACT_FRACTION = 0.5


def _gap(depth: np.ndarray) -> np.ndarray:
    return np.maximum(OCCLUSION_GAP, OCCLUSION_GAP_FRACTION * depth)


def bases_seen(instances: np.ndarray, depth: np.ndarray) -> set[int]:
    """Ids whose lower outline mostly touches the background below it (image rows grow downwards)."""
    below_id, below_depth = instances[1:], depth[1:]
    here_id, here_depth = instances[:-1], depth[:-1]
    outline = (here_id > 0) & (below_id == 0) & (here_depth > 0) & (below_depth > 0)
    touching = outline & (np.abs(below_depth - here_depth) < _gap(here_depth))
    ids = here_id[outline]
    total = np.bincount(ids, minlength=1)
    touch = np.bincount(here_id[touching], minlength=len(total))
    return {int(i) for i in np.flatnonzero(touch >= BASE_CONTACT_FRACTION * np.maximum(total, 1)) if i and total[i]}
