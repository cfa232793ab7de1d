"""One scene → canonical frame, cleaned object boxes and every fact, with what was dropped and why."""

from __future__ import annotations

import collections
import dataclasses

import numpy as np

from ladder_jax.data.scene_folder import Scene, SceneError
from ladder_jax.synth.ambiguity import label_key, unambiguous_ids
from ladder_jax.synth.canonical import Frame, canonical_frame
from ladder_jax.synth.cleaning import CleaningConfig, ObjectBox, clean_points, flying_pixels, object_box
from ladder_jax.synth.lifting import assumed_intrinsics, backproject, object_points, pixel_boxes
from ladder_jax.synth.plausibility import label_problem, object_problem, scene_problem
from ladder_jax.synth.predicates import Fact, nearest, scene_facts
from ladder_jax.synth.visibility import bases_seen, incomplete_objects

COUNT_DEFINITION = "number of labelled instances of this category (same head noun) visible in the image"
NEAREST_DEFINITION = "the candidate whose box centre is nearest the reference's box centre, winning by at least 10 cm"


@dataclasses.dataclass(frozen=True)
class Analysis:
    scene: str
    frame: Frame
    boxes: list[ObjectBox]
    facts: list[Fact]
    pixel_boxes: dict[str, tuple[int, int, int, int]]  # label -> xyxy, for nameable objects
    assumptions: list[str]
    dropped: dict[str, str]  # "label (id N)" -> reason


def _count_facts(scene: Scene, present: set[int], pixels: dict[int, int], min_pixels: int) -> tuple[list[Fact], dict[str, str]]:
    """Counts per category; a category with a barely visible member is not counted (unclear answer)."""
    groups = collections.defaultdict(list)
    for i in present:
        groups[label_key(scene.labels[i])].append(i)
    facts, skipped = [], {}
    for key, ids in sorted(groups.items()):
        if min(pixels[i] for i in ids) < min_pixels:
            skipped[f"count of '{key}'"] = f"a member has fewer than {min_pixels} visible pixels"
            continue
        facts.append(Fact("count", (key,), len(ids), "objects", COUNT_DEFINITION))
    return facts, skipped


def _nearest_facts(boxes: list[ObjectBox], rng: np.random.Generator) -> list[Fact]:
    facts = []
    for ref in boxes:
        others = [b for b in boxes if b is not ref]
        if len(others) < 2:
            continue
        pick = [others[i] for i in rng.choice(len(others), size=min(3, len(others)), replace=False)]
        win = nearest(ref, pick)
        if win is not None:
            facts.append(Fact("nearest", (ref.label, *(b.label for b in pick)), win.label, "label", NEAREST_DEFINITION))
    return facts


def _intrinsics(scene: Scene, fov_deg: float | None) -> tuple[np.ndarray, list[str]]:
    if scene.intrinsics is not None:
        return scene.intrinsics, []
    h, w = scene.shape
    k, text = assumed_intrinsics(w, h, fov_deg)
    return k, [text]


def analyze_scene(scene: Scene, seed: int = 0, fov_deg: float | None = None,
                  cleaning: CleaningConfig = CleaningConfig()) -> Analysis:
    why = scene_problem(scene)
    if why:
        raise SceneError(f"scene {scene.name}: {why}")
    rng = np.random.default_rng(seed)
    k, assumptions = _intrinsics(scene, fov_deg)
    depth = np.where(flying_pixels(scene.depth), 0, scene.depth)
    points = backproject(depth, k)
    ids, pixels = np.unique(scene.instances, return_counts=True)
    pixel_count = dict(zip(ids.tolist(), pixels.tolist()))
    present = {i for i in pixel_count if i in scene.labels}
    dropped = {f"instance id {i}": "in instances.png but not in meta.json objects" for i in pixel_count if i and i not in scene.labels}
    bad_labels = {i: why for i in present if (why := label_problem(scene.labels[i]))}
    dropped.update({f"instance id {i}": why for i, why in bad_labels.items()})
    present -= set(bad_labels)
    background = (depth > 0) & (scene.instances == 0)
    frame = canonical_frame(points[background], scene.camera_to_world, scene.world_up, seed)
    nameable, ambiguous = unambiguous_ids(scene.labels, present)
    dropped.update({f"{scene.labels[i]} (id {i})": why for i, why in ambiguous.items()})
    per_object = object_points(points, depth, scene.instances, sorted(nameable))
    pix = pixel_boxes(scene.instances, sorted(nameable))
    incomplete = incomplete_objects(scene.instances, depth)
    resting = bases_seen(scene.instances, depth)
    boxes = []
    for i, pts in per_object.items():
        footprint = float(np.median(pts[:, 2])) / k[0, 0] if len(pts) else 0.0  # metres per pixel at its range
        kept, why = clean_points(frame.apply(pts), footprint, cleaning)
        if why:
            dropped[f"{scene.labels[i]} (id {i})"] = why
        else:
            if len(kept) < cleaning.min_measure_points:
                incomplete.setdefault(i, f"too small to measure ({len(kept)} points < {cleaning.min_measure_points})")
            box = object_box(i, scene.labels[i], kept, pix.get(i), i not in incomplete, i in resting)
            implausible = object_problem(box.width, box.depth, box.height)
            if implausible:
                dropped[f"{scene.labels[i]} (id {i})"] = implausible
                continue
            boxes.append(box)
            if i in incomplete:
                dropped[f"{scene.labels[i]} (id {i}) measurements"] = incomplete[i]
    counts, skipped = _count_facts(scene, present, pixel_count, cleaning.min_points)
    dropped.update(skipped)
    facts = scene_facts(boxes, frame.has_up, rng) + _nearest_facts([b for b in boxes if b.complete], rng) + counts
    if not frame.has_up:
        assumptions.append("no floor plane found and no camera_to_world: predicates that need gravity were not emitted")
    return Analysis(scene.name, frame, boxes, facts, {b.label: b.pixel_box for b in boxes}, assumptions, dropped)
