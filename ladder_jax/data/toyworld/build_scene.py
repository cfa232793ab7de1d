"""One scene end to end: sample the room, render its cameras, write frames, scene folder and records.

Everything random comes from one generator seeded by (seed, scene index), so a scene is the same
whichever worker builds it and however many scenes are generated.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image

from ladder_jax.data.scene_folder import write_scene
from ladder_jax.data.toyworld import cameras, questions_choice, questions_numeric
from ladder_jax.data.toyworld.cold_start import cold_start_record
from ladder_jax.data.toyworld.ground_truth import ground_truth
from ladder_jax.data.toyworld.grounding import grounding
from ladder_jax.data.toyworld.question import Views
from ladder_jax.data.toyworld.render import Frame, render
from ladder_jax.data.toyworld.scene import Scene, sample_scene

BUILDERS = (
    questions_choice.relative_distance,
    questions_choice.relative_direction,
    questions_choice.appearance_order,
    questions_numeric.object_size,
    questions_numeric.room_size,
    questions_numeric.object_count,
    questions_numeric.absolute_distance,
)
IDS_PER_SCENE = 100  # question_id = scene index * 100 + position within the scene


@dataclasses.dataclass(frozen=True)
class Config:
    size: int = 224
    views: int = 8
    video_frames: int = 16
    grounding_per_scene: int = 4
    reasoning: str = "worked"  # cold-start solutions (cold_start.REASONING_STYLES)
    cold_start: str = "one"  # which questions get a cold-start record (cold_start.COLD_START_SHARES)
    jpeg_quality: int = 95

    @property
    def min_pixels(self) -> int:
        return max(30, int(0.002 * self.size * self.size))


def build_scene(root: Path, index: int, seed: int, cfg: Config) -> dict[str, list[dict]]:
    """Writes images/scene_XXXXXX/ and scenes/scene_XXXXXX/ under root; returns the scene's records."""
    rng = np.random.default_rng([seed, index])
    scene = sample_scene(rng)
    intrinsics = cameras.intrinsics(cfg.size, rng.uniform(55.0, 75.0))
    poses = {
        "single_image": [cameras.single_view(scene.size, rng)],
        "multi_view": cameras.ring_views(scene.size, cfg.views, rng),
        "video": cameras.video_path(scene.size, cfg.video_frames, rng),
    }
    name = f"scene_{index:06d}"
    frames, paths = {}, {}
    for data_type, pose_list in poses.items():
        frames[data_type] = [render(scene, intrinsics, p, cfg.size) for p in pose_list]
        paths[data_type] = _write_frames(root, name, data_type, frames[data_type], cfg.jpeg_quality)
    _write_scene_folder(root / "scenes" / name, scene, frames["single_image"][0])
    return _records(scene, frames, paths, index, cfg, rng)


def _write_scene_folder(folder: Path, scene: Scene, frame: Frame) -> None:
    """The single-image frame as an RGB-D scene folder for the synthesis engine, with its ground truth."""
    pixels = frame.pixel_counts(len(scene.objects))
    labels = {o.id: o.label for o in scene.objects if pixels[o.id] > 0}
    write_scene(folder, frame.rgb, frame.depth, frame.instances, labels, frame.intrinsics, frame.camera_to_world,
                extra_meta=ground_truth(scene, pixels))


def _write_frames(root: Path, name: str, data_type: str, frames: list[Frame], quality: int) -> list[str]:
    """Writes root/images/...; returns paths relative to the image root (root/images), as the release does."""
    stem = {"single_image": "single", "multi_view": "view_{:02d}", "video": "video/frame_{:03d}"}[data_type]
    rel = [f"{name}/{stem.format(i)}.jpg" for i in range(len(frames))]
    for path, frame in zip(rel, frames):
        (root / "images" / path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(frame.rgb).save(root / "images" / path, quality=quality)
    return rel


def _records(scene: Scene, frames, paths, index: int, cfg: Config, rng) -> dict[str, list[dict]]:
    out = {"grounding": [], "spatial": [], "cold_start": []}
    qid = index * IDS_PER_SCENE
    n = len(scene.objects)
    views = {dt: Views(dt, np.stack([f.pixel_counts(n) for f in fs]), cfg.min_pixels) for dt, fs in frames.items()}
    found = grounding(scene, views["single_image"], frames["single_image"][0].instances, rng, cfg.grounding_per_scene)
    for question, boxes in found:
        out["grounding"].append(
            {"question_id": qid, "question": question, "image": paths["single_image"],
             "data_type": "single_image", "answer": boxes}
        )
        qid += 1
    for data_type, view in views.items():
        asked = []
        for build in BUILDERS:
            q = build(scene, view, rng)
            if q is None:
                continue
            qid += 1
            asked.append((qid, q))
            out["spatial"].append(
                {"question_id": qid, "question": q.question, "options": list(q.options) if q.options else None,
                 "answer": q.answer, "image": paths[data_type], "question_type": q.question_type,
                 "data_type": data_type}
            )
        if asked:
            drawn = int(rng.integers(len(asked)))  # drawn either way: the rest of the scene stays the same
            for qid_cs, q in asked if cfg.cold_start == "all" else asked[drawn:drawn + 1]:
                out["cold_start"].append(cold_start_record(q, qid_cs, paths[data_type], data_type, cfg.reasoning))
    return out
