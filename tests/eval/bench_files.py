"""Tiny benchmark files in each published format, written into a test's folder.

Every writer adds a few good rows and known bad ones; `BAD` says how many rows each writer spoils
and why, so reader tests can check the counts.
"""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from ladder_jax.data.toyworld.generate import generate

SIZE = 56  # one 28-pixel factor times two: the smallest images the processor keeps as they are


def png_bytes(seed: int, size: int = SIZE) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (size, size, 3), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def write_mp4(path: Path, frames: int, fps: int = 10, size: int = SIZE) -> None:
    """A clip whose frame i is a flat grey of level 10 * i, so sampled indices can be read back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size, size, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), 10 * i, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _parquet(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _vsi_rows() -> list[dict]:
    good = [
        ("1", "scannet", "scene0001", "object_counting", "How many chairs are there?", None, "4"),
        ("2", "scannet", "scene0001", "object_rel_distance", "Which is closest to the bed?",
         ["A. chair", "B. table", "C. sofa", "D. lamp"], "B"),
        ("3", "arkitscenes", "41069025", "room_size_estimation", "How big is this room?", None, "22.5"),
        ("4", "scannet", "scene0001", "object_rel_direction_easy", "Is the lamp left or right of the sofa?",
         ["A. left", "B. right"], "A"),
    ]
    bad = [
        ("5", "scannet", "scene0009", "object_counting", "Video is missing?", None, "2"),  # no mp4
        ("6", "scannet", "scene0001", "object_counting", "", None, "2"),  # empty question
        ("7", "scannet", "scene0001", "object_rel_distance", "No options?", None, "A"),
        ("8", "scannet", "scene0001", "object_counting", "Not a number?", None, "many"),
        ("1", "scannet", "scene0001", "object_counting", "Duplicate id?", None, "3"),
        ("9", "scannet", "scene0001", "object_rel_distance", "Truth not an option?", ["A. bed", "B. sofa"], "C"),
        ("10", "scannet", "scene0001", "object_color", "Unknown type?", None, "2"),
        ("11", "scannet", "scene0001", "object_counting", "Negative truth?", None, "-3"),
        ("12", "..", "escape", "object_counting", "Media outside the folder?", None, "2"),  # ../escape.mp4 exists
    ]
    keys = ("id", "dataset", "scene_name", "question_type", "question", "options", "ground_truth")
    return [dict(zip(keys, row)) for row in good + bad]


VSI_GOOD, VSI_BAD = 4, 9
VSI_REASONS = {"scene_name: media file not found": 1, "question: missing, empty or not text": 1,
               "options: missing or not a list of strings for a multiple-choice question": 1,
               "ground_truth: not a finite number for a numeric question": 1, "id: duplicate id": 1,
               "ground_truth: multiple-choice truth not among the option letters": 1,
               "question_type: unknown question type": 1,
               "ground_truth: negative numeric truth (a size, distance or count is >= 0)": 1,
               "scene_name: media path outside the data folder": 1}


def write_vsi(root: Path, frames: int = 20) -> Path:
    write_mp4(root.parent / "escape.mp4", 2)
    write_mp4(root / "scannet" / "scene0001.mp4", frames)
    write_mp4(root / "arkitscenes" / "41069025.mp4", frames // 2)
    return _parquet(root / "test-00000-of-00001.parquet", _vsi_rows())


SPBENCH_GOOD, SPBENCH_BAD = 3, 2


def write_spbench(root: Path, views: int) -> Path:
    """SPBench-SI (views=1) or -MV: frames under root/images/{scene}/; bad rows lack a frame or a type."""
    names = [f"{k:05d}.jpg" for k in range(views)]
    for scene in ("scene0100", "scene0200"):
        (root / "images" / scene).mkdir(parents=True, exist_ok=True)
        for k, name in enumerate(names):
            Image.open(io.BytesIO(png_bytes(k))).save(root / "images" / scene / name)
    base = {"dataset": "scannet", "options": None}
    rows = [
        base | {"id": "a", "scene_name": "scene0100", "question_type": "object_size_estimation",
                "question": "How long is the table?", "ground_truth": "120", "images": names},
        base | {"id": "b", "scene_name": "scene0200", "question_type": "object_rel_distance",
                "question": "Which is nearer?", "options": ["A. bed", "B. desk"], "ground_truth": "A", "images": names},
        base | {"id": "c", "scene_name": "scene0100", "question_type": "object_abs_distance",
                "question": "How far apart?", "ground_truth": "1.8", "images": names},
        base | {"id": "d", "scene_name": "scene0100", "question_type": "object_counting",
                "question": "Missing frame?", "ground_truth": "2", "images": ["99999.jpg"]},
        base | {"id": "e", "scene_name": "scene0100", "question_type": None,
                "question": "No type?", "ground_truth": "2", "images": names},
    ]
    return _parquet(root / f"SPBench-{'SI' if views == 1 else 'MV'}.parquet", rows)


CVBENCH_GOOD, CVBENCH_BAD = 4, 2  # as read: the non-image bytes fail later, at decoding


def write_cvbench(root: Path, name: str = "test.parquet", first_idx: int = 0) -> Path:
    """Three good rows (one per source) and two bad: no image bytes, and bytes that are not an image
    (caught only when decoded, by the runner)."""
    question = "Which object is closer to the camera? Select from the following choices.\n(A) {}\n(B) {}"
    prompt = question.format("chair", "table")
    rows = [
        {"idx": 0, "prompt": question.format("table", "chair"), "image": {"bytes": png_bytes(0)}, "answer": "(A)",
         "type": "2D", "task": "Count", "source": "ADE20K"},
        {"idx": 1, "prompt": prompt, "image": {"bytes": png_bytes(1)}, "answer": "(B)", "type": "2D",
         "task": "Relation", "source": "COCO"},
        {"idx": 2, "prompt": question.format("chair", "chair"), "image": {"bytes": png_bytes(2)}, "answer": "(A)",
         "type": "3D", "task": "Depth", "source": "Omni3D"},
        {"idx": 3, "prompt": prompt, "image": {"bytes": b""}, "answer": "(A)", "type": "3D",
         "task": "Distance", "source": "Omni3D"},
        {"idx": 4, "prompt": prompt, "image": {"bytes": b"not an image"}, "answer": "(B)", "type": "3D",
         "task": "Distance", "source": "Omni3D"},
        {"idx": 5, "prompt": prompt, "image": {"bytes": png_bytes(5)}, "answer": "(Z)", "type": "2D",
         "task": "Count", "source": "COCO"},  # not among the choices
    ]
    for row in rows:
        row["idx"] += first_idx
    return _parquet(root / name, rows)


def write_toyworld(root: Path) -> Path:
    """A one-scene held-out split (out/eval); returns that split's folder."""
    generate(root, scenes=2, seed=0, size=SIZE, views=2, video_frames=4, eval_fraction=0.5, workers=1)
    return root / "eval"
