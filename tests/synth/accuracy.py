"""Engine answers vs exact geometry on analytic rooms, clean or with corrupted depth.

Shared by test_accuracy.py and the report's table (bench/probes/synth_accuracy.py analytic)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ladder_jax.data.scene_folder import Scene
from ladder_jax.synth.analyze import analyze_scene
from ladder_jax.synth.cleaning import ObjectBox
from ladder_jax.synth.predicates import evaluate
from tests.synth.analytic import camera, canonical_truth, random_room, render


def corrupt(depth: np.ndarray, rng: np.random.Generator, scale: float = 1.0, noise: float = 0.0, bleed: int = 0):
    """Depth-sensor errors: a global scale error, gaussian noise with std `noise`·depth, and edge
    bleeding (pixels within `bleed` px of a depth edge take a random depth between the nearest and
    farthest surface around them: flying pixels). Masks are left as they were."""
    d = depth * scale * (1 + noise * rng.standard_normal(depth.shape))
    if bleed:
        size = 2 * bleed + 1
        lo, hi = ndimage.minimum_filter(depth, size), ndimage.maximum_filter(depth, size)
        edge = (hi - lo > 0.1) & (depth > 0) & (lo > 0)
        d = np.where(edge, (lo + rng.random(depth.shape) * (hi - lo)) * scale, d)
    return np.where(depth > 0, d, 0).astype(np.float32)


def truth_boxes(boxes, c2w) -> dict[str, ObjectBox]:
    out = {}
    for b in boxes:
        c, w, d, h = canonical_truth(b, c2w)
        out[b.label] = ObjectBox(0, b.label, c, c, c, 0.0, w, d, h, 1)
    return out


def measure(n_scenes: int = 10, size: int = 224, seed: int = 0, **corruption) -> dict[str, float]:
    """Share of qualitative answers equal to the truth and of lengths within 10% of it."""
    hits = {"qualitative": [], "quantitative": []}
    for s in range(n_scenes):
        rng = np.random.default_rng(seed + s)
        boxes = random_room(rng)
        k, c2w = camera(1.6, 30, size, size)
        depth, ids, rgb = render(boxes, k, c2w, size, size, wall_y=6.5)
        depth = corrupt(depth, rng, **corruption)
        labels = {i + 1: b.label for i, b in enumerate(boxes)}
        analysis = analyze_scene(Scene(f"room{s}", rgb, depth, ids, labels, k), seed=s)
        truth = truth_boxes(boxes, c2w)
        for f in analysis.facts:
            if f.predicate in ("count", "nearest"):
                continue
            g = evaluate(f.predicate, tuple(truth[o] for o in f.objects))
            if g is None:
                continue
            if f.unit == "m":
                hits["quantitative"].append(abs(f.value - g.value) <= 0.1 * g.value)
            else:
                hits["qualitative"].append(f.value == g.value)
    return {k: float(np.mean(v)) if v else float("nan") for k, v in hits.items()} | {
        f"n_{k}": len(v) for k, v in hits.items()}

