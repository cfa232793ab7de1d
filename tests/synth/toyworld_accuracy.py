"""Engine facts on toy-world scenes scored against the toy world's exact geometry.

The truth of every fact is recomputed here from `gt_objects` and `camera_to_world` alone, following
the definition the fact carries (checked by a key phrase, so a changed definition fails loudly
instead of being scored against the old one). Relations are scored by the sign of the true
difference: the engine's margins decide what it asks, never what counts as right.

Shared by test_toyworld.py and the report's tables (bench/probes/synth_accuracy.py toyworld).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import pathlib

import numpy as np

from ladder_jax.data.scene_folder import load_scene
from ladder_jax.synth.analyze import analyze_scene
from tests.synth.accuracy import corrupt  # the realistic depth-error model of the analytic harness


@dataclasses.dataclass(frozen=True)
class Truth:
    centre: np.ndarray  # world metres
    width: float  # longer own horizontal side (a round footprint's diameter)
    depth: float  # shorter own horizontal side
    height: float


def truth_objects(meta: dict) -> dict[str, Truth]:
    """Visible objects by label (the engine only names labels seen once, so each maps to one)."""
    out = {}
    for o in meta["gt_objects"]:
        if o["pixels"] > 0:
            dims = o["dims"]
            out[o["label"]] = Truth(np.array(o["centre"]), max(dims[:2]), min(dims[:2]), dims[2])
    return out


def view_axes(c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(camera centre, levelled forward, right) in world coordinates; world up is +z."""
    forward = c2w[:3, 2] * [1.0, 1.0, 0.0]
    forward /= np.linalg.norm(forward)
    return c2w[:3, 3], forward, np.cross(forward, [0.0, 0.0, 1.0])


def _hour(dx: float, dz: float) -> int:
    hour = int(round(math.degrees(math.atan2(dx, dz)) / 30.0)) % 12
    return 12 if hour == 0 else hour


def _head(label: str) -> str:
    word = label.lower().split()[-1]
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _volume(t: Truth) -> float:
    return t.width * t.depth * t.height


# predicate -> (phrase its definition must contain, truth from (view, *objects))
TRUTHS = {
    "distance": ("Euclidean distance between the centres", lambda v, a, b: float(np.linalg.norm(a.centre - b.centre))),
    "horizontal_distance": ("sqrt(dx^2 + dz^2)", lambda v, a, b: float(np.linalg.norm((a.centre - b.centre)[:2]))),
    "vertical_distance": ("|dy| between box centres", lambda v, a, b: abs(float(a.centre[2] - b.centre[2]))),
    "width": ("longer horizontal side", lambda v, a: a.width),
    "depth": ("shorter horizontal side", lambda v, a: a.depth),
    "height": ("extent of the object's box along gravity up", lambda v, a: a.height),
    "size": ("longest side", lambda v, a: max(a.width, a.depth, a.height)),
    "left_of": ("left of the second", lambda v, a, b: bool((b.centre - a.centre) @ v[2] > 0)),
    "above": ("higher than the second", lambda v, a, b: bool(a.centre[2] > b.centre[2])),
    "behind": ("farther than the second along the camera's forward", lambda v, a, b: bool((a.centre - b.centre) @ v[1] > 0)),
    "closer": ("nearer to the camera centre", lambda v, a, b: bool(np.linalg.norm(a.centre - v[0]) < np.linalg.norm(b.centre - v[0]))),
    "bigger": ("box volume", lambda v, a, b: _volume(a) > _volume(b)),
    "taller": ("first height", lambda v, a, b: a.height > b.height),
    "wider": ("first width", lambda v, a, b: a.width > b.width),
    "direction": ("seen from the camera", lambda v, a: _hour((a.centre - v[0]) @ v[2], (a.centre - v[0]) @ v[1])),
    "direction_from": ("seen from the first", lambda v, a, b: _hour((b.centre - a.centre) @ v[2], (b.centre - a.centre) @ v[1])),
}


def true_value(fact, meta: dict, objects: dict[str, Truth]):
    if fact.predicate == "count":
        assert "same head noun" in fact.definition
        return sum(o["pixels"] > 0 and _head(o["label"]) == fact.objects[0] for o in meta["gt_objects"])
    named = [objects[label] for label in fact.objects]
    if fact.predicate == "nearest":
        assert "box centre is nearest" in fact.definition
        d = [np.linalg.norm(c.centre - named[0].centre) for c in named[1:]]
        return fact.objects[1 + int(np.argmin(d))]
    phrase, truth = TRUTHS[fact.predicate]
    assert phrase in fact.definition, f"{fact.predicate}: definition changed: {fact.definition}"
    return truth(view_axes(np.asarray(meta["camera_to_world"])), *named)


def score_scene(folder: pathlib.Path, corruption: dict | None = None, seed: int = 0):
    """[(predicate, kind, correct)] for every fact of one scene; kind is "qualitative" or "quantitative"."""
    scene = load_scene(folder)
    meta = json.loads((folder / "meta.json").read_text())
    if corruption:
        depth = corrupt(scene.depth, np.random.default_rng(seed), **corruption)
        scene = dataclasses.replace(scene, depth=depth)
    objects = truth_objects(meta)
    out = []
    for fact in analyze_scene(scene, seed=seed).facts:
        truth = true_value(fact, meta, objects)
        if fact.unit == "m":
            out.append((fact.predicate, "quantitative", abs(fact.value - truth) <= 0.1 * truth))
        else:
            out.append((fact.predicate, "qualitative", fact.value == truth))
    return out


def summarize(scored) -> dict[str, float]:
    kinds = collections.defaultdict(list)
    for _, kind, ok in scored:
        kinds[kind].append(ok)
    return {k: float(np.mean(kinds[k])) if kinds[k] else math.nan for k in ("qualitative", "quantitative")} | {
        f"n_{k}": len(kinds[k]) for k in ("qualitative", "quantitative")}


def measure(folders, corruption: dict | None = None) -> tuple[dict[str, float], list]:
    scored = [s for i, f in enumerate(folders) for s in score_scene(f, corruption, seed=i)]
    return summarize(scored), scored


def make_scenes(out: pathlib.Path, n: int, seed: int = 0, size: int = 224) -> list[pathlib.Path]:
    from ladder_jax.data.toyworld import generate

    generate(out, n, seed, size=size, views=1, video_frames=4, eval_fraction=0.0, workers=1)
    return sorted((out / "scenes").iterdir())

