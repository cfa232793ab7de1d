"""The toy world's exact geometry, kept in each scene folder's meta.json beside the format's own
fields (ladder_jax/data/scene_folder.py) so that synthesis results can be checked against it:
`world_frame` (a sentence), `gt_room`, `gt_floor_plane` and `gt_objects` (every object in the room,
visible or not, with `pixels` = its visible pixel count in this frame).
"""

from __future__ import annotations

import numpy as np

from ladder_jax.data.toyworld.scene import Scene

WORLD_FRAME = (
    "metres, right-handed, +z up; the floor is z = 0 and the room spans x in [0, size_x], "
    "y in [0, size_y], z in [0, height]; yaw turns an object about +z, counter-clockwise seen from above"
)


def ground_truth(scene: Scene, pixels: np.ndarray) -> dict:
    """The meta.json ground truth of one frame; `pixels[id]` is object id's visible pixel count."""
    return {
        "world_frame": WORLD_FRAME,
        "gt_room": {"size": scene.size.tolist(), "floor_area_m2": scene.floor_area},
        "gt_floor_plane": {"normal": [0.0, 0.0, 1.0], "offset": 0.0},  # points p with normal · p = offset
        "gt_objects": [
            {
                "id": o.id,
                "label": o.label,
                "shape": o.shape,
                "centre": o.centre.tolist(),
                "size": o.extent.tolist(),  # extent along the world axes
                "dims": o.dims.tolist(),  # own length, width, height (diameter twice for round shapes)
                "yaw": o.yaw,
                "pixels": int(pixels[o.id]),
            }
            for o in scene.objects
        ],
    }
