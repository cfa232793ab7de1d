"""The RGB-D scene folder: what a user with a depth camera (or the toy world) hands the synthesis
engine (ladder_jax/synth). Read with `load_scene`, written with `write_scene`.

One folder per scene:

- `rgb.png`        H×W×3 colour image.
- `depth.npy`      float32 H×W, metres along the optical axis (z-depth, not ray length);
                   0 (or non-finite) = unknown. OpenCV camera axes: x right, y down, z forward.
- `instances.png`  16-bit H×W instance ids, 0 = background (floor, walls, anything unlabelled).
- `meta.json`      `intrinsics` 3×3 (optional: without it a field-of-view assumption is used and
                   stated in every record), `objects` [{"id": int, "label": str}], optional
                   `camera_to_world` 4×4 (OpenCV camera → world, metres) with `world_up`
                   (the world's gravity-up unit vector, default [0, 0, 1]). Other keys are kept
                   and ignored by the engine: the toy world adds its exact geometry there.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np
from PIL import Image


class SceneError(ValueError):
    """A scene folder that cannot be used; the message names the folder, file and field."""


@dataclasses.dataclass(frozen=True)
class Scene:
    name: str
    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32 metres, 0 = unknown
    instances: np.ndarray  # (H, W) int32, 0 = background
    labels: dict[int, str]  # instance id -> label
    intrinsics: np.ndarray | None  # (3, 3) or None when the folder gives none
    camera_to_world: np.ndarray | None = None  # (4, 4)
    world_up: np.ndarray | None = None  # (3,) unit vector in world coordinates
    image_path: pathlib.Path | None = None  # the rgb file, for copying into the output

    @property
    def shape(self) -> tuple[int, int]:
        return self.depth.shape


def _read_png(path: pathlib.Path, where: str) -> np.ndarray:
    if not path.is_file():
        raise SceneError(f"{where}: missing {path.name}")
    try:
        with Image.open(path) as im:
            return np.asarray(im)
    except OSError as e:
        raise SceneError(f"{where}: cannot read {path.name}: {e}") from e


def _matrix(meta: dict, field: str, shape: tuple[int, int], where: str) -> np.ndarray | None:
    if meta.get(field) is None:
        return None
    m = np.asarray(meta[field], dtype=np.float64)
    if m.shape != shape or not np.all(np.isfinite(m)):
        raise SceneError(f"{where}: meta.json field '{field}' must be a finite {shape[0]}x{shape[1]} matrix")
    return m


def _check_intrinsics(k: np.ndarray | None, where: str) -> None:
    if k is None:
        return
    if k[0, 0] <= 0 or k[1, 1] <= 0 or not np.allclose(k[2], [0, 0, 1]) or k[1, 0] != 0:
        raise SceneError(f"{where}: meta.json field 'intrinsics' must be [[fx,s,cx],[0,fy,cy],[0,0,1]] with fx, fy > 0")


def _read_labels(meta: dict, where: str) -> dict[int, str]:
    objects = meta.get("objects")
    if not isinstance(objects, list):
        raise SceneError(f"{where}: meta.json field 'objects' must be a list of {{id, label}}")
    labels: dict[int, str] = {}
    for i, o in enumerate(objects):
        if not isinstance(o, dict) or not isinstance(o.get("id"), int) or not isinstance(o.get("label"), str):
            raise SceneError(f"{where}: meta.json objects[{i}] must have an integer 'id' and a string 'label'")
        if o["id"] <= 0 or o["id"] > 65535 or o["id"] in labels or not o["label"].strip():
            raise SceneError(f"{where}: meta.json objects[{i}] has a duplicate, empty or out-of-range id/label")
        labels[o["id"]] = o["label"].strip()
    return labels


def _read_meta(folder: pathlib.Path, where: str) -> dict:
    path = folder / "meta.json"
    if not path.is_file():
        raise SceneError(f"{where}: missing meta.json")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SceneError(f"{where}: meta.json is not valid JSON: {e}") from e
    if not isinstance(meta, dict):
        raise SceneError(f"{where}: meta.json must hold an object")
    return meta


def _read_depth(folder: pathlib.Path, where: str) -> np.ndarray:
    path = folder / "depth.npy"
    if not path.is_file():
        raise SceneError(f"{where}: missing depth.npy")
    try:
        depth = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise SceneError(f"{where}: cannot read depth.npy: {e}") from e
    if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.floating):
        raise SceneError(f"{where}: depth.npy must be a float H×W array of metres, got {depth.dtype} {depth.shape}")
    depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0).astype(np.float32)
    if not depth.any():
        raise SceneError(f"{where}: depth.npy has no valid (positive, finite) depth")
    return depth


def load_scene(folder: str | pathlib.Path) -> Scene:
    """Reads and checks one scene folder; raises SceneError naming what is wrong."""
    folder = pathlib.Path(folder)
    where = f"scene {folder}"
    meta = _read_meta(folder, where)
    depth = _read_depth(folder, where)
    rgb = _read_png(folder / "rgb.png", where)
    inst = _read_png(folder / "instances.png", where)
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise SceneError(f"{where}: rgb.png must be a colour image, got shape {rgb.shape}")
    if inst.ndim != 2:
        raise SceneError(f"{where}: instances.png must be a single-channel 16-bit image, got shape {inst.shape}")
    for name, arr in (("rgb.png", rgb), ("instances.png", inst)):
        if arr.shape[:2] != depth.shape:
            raise SceneError(f"{where}: {name} is {arr.shape[1]}x{arr.shape[0]} but depth.npy is {depth.shape[1]}x{depth.shape[0]}")
    labels = _read_labels(meta, where)
    intrinsics = _matrix(meta, "intrinsics", (3, 3), where)
    _check_intrinsics(intrinsics, where)
    c2w = _matrix(meta, "camera_to_world", (4, 4), where)
    up = None
    if c2w is not None:
        up = np.asarray(meta.get("world_up", [0.0, 0.0, 1.0]), dtype=np.float64)
        if up.shape != (3,) or not np.isfinite(up).all() or np.linalg.norm(up) == 0:
            raise SceneError(f"{where}: meta.json field 'world_up' must be a non-zero 3-vector")
        up = up / np.linalg.norm(up)
    return Scene(folder.name, rgb[..., :3], depth, inst.astype(np.int32), labels, intrinsics, c2w, up, folder / "rgb.png")


def write_scene(folder: str | pathlib.Path, rgb: np.ndarray, depth: np.ndarray, instances: np.ndarray,
                labels: dict[int, str], intrinsics: np.ndarray | None = None,
                camera_to_world: np.ndarray | None = None, world_up=None, extra_meta: dict | None = None) -> pathlib.Path:
    """Writes a scene folder in the format above (`extra_meta` keys, e.g. ground truth, are kept)."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(folder / "rgb.png")
    np.save(folder / "depth.npy", np.asarray(depth, dtype=np.float32))
    Image.fromarray(np.asarray(instances, dtype=np.uint16)).save(folder / "instances.png")
    meta = dict(extra_meta or {})
    meta["objects"] = [{"id": int(i), "label": str(l)} for i, l in sorted(labels.items())]
    if intrinsics is not None:
        meta["intrinsics"] = np.asarray(intrinsics, dtype=float).tolist()
    if camera_to_world is not None:
        meta["camera_to_world"] = np.asarray(camera_to_world, dtype=float).tolist()
        meta["world_up"] = list(map(float, world_up if world_up is not None else (0.0, 0.0, 1.0)))
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))
    return folder
