"""Scenes → an output folder laid out as a SpatialLadder-26k release, so `read_release(OUT)` and
`ladder-jax prepare OUT` take it as it is:

    spld_spatial_data.jsonl    release fields + audit fields (predicate, objects, value, ...)
    spld_grounding_data.jsonl  boxes of the objects each spatial question names
    images/<scene>.png         the rgb; every row's image path is relative to images/
    freeform/freeform_qa.jsonl free-form QA (no release type; kept out of the release's *.jsonl)
    report.json                what was skipped or dropped and why, frame and seconds per scene
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import time
from typing import Callable, Iterable

import numpy as np
from PIL import Image

from ladder_jax.data.scene_folder import Scene, load_scene
from ladder_jax.data.spld import GROUNDING_FILE, SPATIAL_FILE
from ladder_jax.synth.analyze import analyze_scene
from ladder_jax.synth.cleaning import CleaningConfig
from ladder_jax.synth.records import scene_rows

OUTPUTS = {"spatial": SPATIAL_FILE, "grounding": GROUNDING_FILE, "freeform": "freeform/freeform_qa.jsonl"}


@dataclasses.dataclass(frozen=True)
class SynthOptions:
    seed: int = 0
    fov_deg: float | None = None  # horizontal field of view assumed when a scene has no intrinsics
    cleaning: CleaningConfig = CleaningConfig()


def scene_folders(root: str | pathlib.Path) -> list[pathlib.Path]:
    """`root` itself when it is a scene folder, else its sub-folders in name order."""
    root = pathlib.Path(root)
    if (root / "meta.json").exists():
        return [root]
    return sorted(p for p in root.iterdir() if p.is_dir())


def synthesize(sources: Iterable[tuple[str, Callable[[], Scene]]], out: str | pathlib.Path,
               options: SynthOptions = SynthOptions()) -> dict:
    """Runs every scene; one that fails to load or analyse is skipped and reported, never fatal."""
    out = pathlib.Path(out)
    for folder in ("images", "freeform"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    report = {"scenes_done": 0, "skipped_scenes": {}, "dropped": {}, "frames": {}, "assumptions": {},
              "rows": dict.fromkeys(OUTPUTS, 0), "seconds_per_scene": {}}
    files = {k: open(out / name, "w") for k, name in OUTPUTS.items()}
    next_id = 0
    try:
        for index, (name, load) in enumerate(sources):
            start = time.perf_counter()
            try:
                scene = load()
                analysis = analyze_scene(scene, options.seed + index, options.fov_deg, options.cleaning)
            except Exception as e:  # noqa: BLE001 — a bad scene must not end a long run
                report["skipped_scenes"][name] = f"{type(e).__name__}: {e}"
                continue
            image = f"{name}.png"
            Image.fromarray(scene.rgb).save(out / "images" / image)
            rows = scene_rows(analysis, image, next_id, np.random.default_rng([options.seed, index]))
            for kind, items in rows.items():
                files[kind].writelines(json.dumps(r) + "\n" for r in items)
                report["rows"][kind] += len(items)
            next_id += 2 * len(analysis.facts)
            report["scenes_done"] += 1
            report["frames"][name] = analysis.frame.source
            report["dropped"][name] = analysis.dropped
            report["assumptions"][name] = analysis.assumptions
            report["seconds_per_scene"][name] = round(time.perf_counter() - start, 4)
    finally:
        for f in files.values():
            f.close()
    (out / "report.json").write_text(json.dumps(report, indent=1))
    return report


def synthesize_folders(root: str | pathlib.Path, out: str | pathlib.Path, options: SynthOptions = SynthOptions()) -> dict:
    return synthesize(((p.name, lambda p=p: load_scene(p)) for p in scene_folders(root)), out, options)
