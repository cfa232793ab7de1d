"""Generate a toy-world data set in the SpatialLadder-26k release layout, train and eval apart.

    out/spld_grounding_data.jsonl  out/spld_spatial_data.jsonl  out/cold_start.jsonl
    out/images/scene_XXXXXX/{single.jpg, view_NN.jpg, video/frame_NNN.jpg}
    out/scenes/scene_XXXXXX/{rgb.png, depth.npy, instances.png, meta.json}
    out/eval/...          the same files for the held-out scenes (the last `eval_fraction`)

Image paths in records are relative to the folder holding the JSONL files (out/ or out/eval/).
The output depends only on (scenes, seed, eval_fraction, size, views, video_frames,
grounding_per_scene, reasoning, cold_start), not on the number of workers; `reasoning` (the
cold-start solutions' style, cold_start.REASONING_STYLES) and `cold_start` (which questions get one,
cold_start.COLD_START_SHARES) change cold_start.jsonl alone.
"""

from __future__ import annotations

import collections
import concurrent.futures
import functools
import json
import multiprocessing
import os
import time
from pathlib import Path

from tqdm import tqdm

from ladder_jax.data.toyworld.build_scene import Config, build_scene
from ladder_jax.data.toyworld.cold_start import COLD_START_SHARES, REASONING_STYLES

SUMMARY_FILE = "toyworld_summary.json"  # written last: its presence means the set is complete
FILES = {
    "grounding": "spld_grounding_data.jsonl",
    "spatial": "spld_spatial_data.jsonl",
    "cold_start": "cold_start.jsonl",
}


def generate(
    out_dir: str | os.PathLike,
    scenes: int,
    seed: int,
    *,
    size: int = 224,
    views: int = 8,
    video_frames: int = 16,
    eval_fraction: float = 0.1,
    grounding_per_scene: int = 4,
    reasoning: str = "worked",
    cold_start: str = "one",
    workers: int | None = None,
    progress: bool = False,
) -> dict:
    """Builds `scenes` scenes into `out_dir` and returns a summary (counts per file, question type,
    data type), also written to SUMMARY_FILE. Existing files of the same names are
    overwritten; `ladder-jax toyworld` builds into a fresh folder and swaps it in instead."""
    if reasoning not in REASONING_STYLES:
        raise ValueError(f"reasoning={reasoning!r}: cold-start solutions are one of {REASONING_STYLES}")
    if cold_start not in COLD_START_SHARES:
        raise ValueError(f"cold_start={cold_start!r}: cold-start records are written for one of {COLD_START_SHARES}")
    if (scenes < 1 or not 0 <= eval_fraction < 1 or views < 1 or video_frames < 4 or size < 32
            or not 1 <= grounding_per_scene <= 20):
        raise ValueError(
            f"need scenes >= 1, 0 <= eval_fraction < 1, views >= 1, video_frames >= 4, size >= 32, "
            f"1 <= grounding_per_scene <= 20; got scenes={scenes} eval_fraction={eval_fraction} views={views} "
            f"video_frames={video_frames} size={size} grounding_per_scene={grounding_per_scene}"
        )
    out = Path(out_dir)
    n_eval = int(round(scenes * eval_fraction))
    roots = {"train": out, "eval": out / "eval"}
    cfg = Config(size=size, views=views, video_frames=video_frames, grounding_per_scene=grounding_per_scene,
                 reasoning=reasoning, cold_start=cold_start)
    start = time.perf_counter()
    counts = {split: collections.Counter() for split in roots}
    handles = {
        (split, kind): _open(root / name) for split, root in roots.items() for kind, name in FILES.items()
    }
    try:
        indices = range(scenes)
        split_of = ["train" if i < scenes - n_eval else "eval" for i in indices]
        jobs = [(roots[split_of[i]], i) for i in indices]
        bar = tqdm(total=scenes, desc="toyworld scenes", unit="scene", disable=not progress)
        for i, records in zip(indices, _run(jobs, seed, cfg, workers)):
            for kind, rows in records.items():
                for row in rows:
                    handles[(split_of[i], kind)].write(json.dumps(row) + "\n")
                    counts[split_of[i]].update(_keys(kind, row))
            bar.update(1)
        bar.close()
    finally:
        for handle in handles.values():
            handle.close()
    summary = {
        "seed": seed,
        "reasoning": reasoning,
        "cold_start": cold_start,
        "scenes": {"train": scenes - n_eval, "eval": n_eval},
        "frames_per_scene": 1 + views + video_frames,
        "counts": {split: dict(sorted(c.items())) for split, c in counts.items()},
        "seconds": round(time.perf_counter() - start, 2),
    }
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=1))
    return summary


def _open(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("w")


def _keys(kind: str, row: dict) -> list[str]:
    keys = [kind]
    if kind == "spatial":
        keys += [f"spatial/{row['question_type']}", f"spatial/{row['data_type']}"]
    return keys


def _run(jobs: list[tuple[Path, int]], seed: int, cfg: Config, workers: int | None):
    """Scene records in job order, built here or by a pool of spawned processes."""
    work = functools.partial(_build, seed=seed, cfg=cfg)
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    if workers <= 1:
        yield from map(work, jobs)
        return
    context = multiprocessing.get_context("spawn")  # the parent may hold JAX threads; never fork it
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        yield from pool.map(work, jobs, chunksize=2)


def _build(job: tuple[Path, int], seed: int, cfg: Config) -> dict[str, list[dict]]:
    root, index = job
    return build_scene(root, index, seed, cfg)
