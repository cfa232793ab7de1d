"""Which objects are seen whole: extents and centres of cut-off or hidden objects are not measured.

An object is incomplete when its mask touches the image border (truncated) or when part of its
outline borders a labelled object that is clearly nearer (occluded). Occlusion by unlabelled
things cannot be told from a depth edge inside the background, so it is not detected.
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
            gap = np.maximum(OCCLUSION_GAP, OCCLUSION_GAP_FRACTION * depth)
            hidden = (instances > 0) & (other > 0) & (other != instances) & (other_depth > 0) & (other_depth < depth - gap)
            for i in np.unique(instances[hidden]):
                reasons.setdefault(int(i), "occluded by a nearer object")
    return reasons
