"""Scene folders for the synthesis engine (the RGB-D format of issue 7) plus ground truth.

One folder per scene: `rgb.png`, `depth.npy` (float32 z-depth in metres, H×W, 0 = unknown; OpenCV
camera axes), `instances.png` (16-bit ids, 0 = background), `meta.json` with `intrinsics` (3×3),
`objects` ([{id, label}] for the ids present in the mask) and `camera_to_world` (4×4, camera →
world). The toy world adds its exact geometry so that synthesis results can be checked:
`world_frame` (a sentence), `gt_room`, `gt_floor_plane` and `gt_objects` (every object in the room,
visible or not, with `pixels` = its visible pixel count in this frame).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from ladder_jax.data.toyworld.render import Frame
from ladder_jax.data.toyworld.scene import Scene

WORLD_FRAME = (
    "metres, right-handed, +z up; the floor is z = 0 and the room spans x in [0, size_x], "
    "y in [0, size_y], z in [0, height]; yaw turns an object about +z, counter-clockwise seen from above"
)


def write_scene_folder(folder: Path, scene: Scene, frame: Frame) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(frame.rgb).save(folder / "rgb.png")
    np.save(folder / "depth.npy", frame.depth.astype(np.float32))
    Image.fromarray(frame.instances.astype(np.uint16)).save(folder / "instances.png")
    (folder / "meta.json").write_text(json.dumps(scene_meta(scene, frame), indent=1))


def scene_meta(scene: Scene, frame: Frame) -> dict:
    pixels = frame.pixel_counts(len(scene.objects))
    return {
        "intrinsics": frame.intrinsics.tolist(),
        "camera_to_world": frame.camera_to_world.tolist(),
        "objects": [{"id": o.id, "label": o.label} for o in scene.objects if pixels[o.id] > 0],
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


def read_scene_folder(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(rgb, depth, instances, meta) as written above; a convenience for tests and users."""
    folder = Path(folder)
    rgb = np.asarray(Image.open(folder / "rgb.png").convert("RGB"))
    depth = np.load(folder / "depth.npy")
    instances = np.asarray(Image.open(folder / "instances.png")).astype(np.uint16)
    return rgb, depth, instances, json.loads((folder / "meta.json").read_text())
