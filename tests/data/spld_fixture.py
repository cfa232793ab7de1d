"""A tiny SpatialLadder-26k release in the published layout, with one of each defect we reject.

`make_release(root)` writes JSONL rows shaped as in SPEC.md section 2, images made with PIL under
`root/images`, and returns what a correct reader must make of every line.
"""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

FRAME = (1296, 968)  # the ScanNet frame the release's boxes refer to
SMALL = (64, 48)
MC = ["A. the chair", "B. the table", "C. the lamp", "D. the sofa"]
BAD_SOLUTION = "solution: needs exactly one <think>...</think> then one non-empty <answer>...</answer>"


@dataclasses.dataclass
class TinyRelease:
    root: Path
    good: dict[str, dict]  # record id -> the row it was read from, in file order
    rejected: list[tuple[str, int, str | None, str]]  # (file, line, record id, reason) at read time
    corrupt: dict[str, str]  # record id -> image path: valid rows whose image does not decode
    lines: int  # non-blank lines over all files


def _image(size: tuple[int, int], seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    return Image.fromarray(pixels).resize(size, Image.NEAREST)


def _write_images(root: Path) -> None:
    images = root / "images"
    (images / "scene0000_00").mkdir(parents=True)
    (images / "scene0001_00").mkdir()
    _image(FRAME, 0).save(images / "scene0000_00" / "00000.jpg", quality=90)
    _image(FRAME, 1).save(images / "scene0000_00" / "00010.png")
    for i in range(8):
        _image(SMALL, 10 + i).save(images / "scene0001_00" / f"{i:05d}.jpg")
    buffer = io.BytesIO()
    _image(SMALL, 99).save(buffer, format="JPEG")
    (images / "broken.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])  # truncated
    (root / "outside").mkdir()
    _image(SMALL, 7).save(root / "outside" / "secret.png")
    (images / "link.png").symlink_to(Path("..") / "outside" / "secret.png")


def _grounding(qid, image="scene0000_00/00000.jpg", boxes=None, question="Where is the chair?", **extra) -> dict:
    boxes = boxes if boxes is not None else [{"bbox_2d": [10, 20, 300, 400], "label": "chair"}]
    row = {"question_id": qid, "question": question, "image": [image], "data_type": "single_image", "answer": boxes}
    return row | extra


def _spatial(qid, question_type="relative distance", answer="B", options=MC, images=None, data_type="single_image"):
    images = images if images is not None else ["scene0001_00/00000.jpg"]
    return {
        "question_id": qid,
        "question": "Which object is closest to the door?",
        "options": options,
        "answer": answer,
        "image": images,
        "question_type": question_type,
        "data_type": data_type,
    }


FRAMES = [f"scene0001_00/{i:05d}.jpg" for i in range(8)]

GROUNDING = [
    (_grounding(0), None),
    (_grounding(1, "scene0000_00/00010.png", [{"bbox_2d": [0, 0, 1296, 968], "label": "room"},
                                              {"bbox_2d": [5.5, 6.5, 50.25, 60.75], "label": "cup"}]), None),
    (_grounding(2, boxes=[{"bbox_2d": [1000, 10, 1300, 200], "label": "door"}]), "boxes: box outside its image"),
    (_grounding(3, boxes=[{"bbox_2d": [300, 10, 300, 200], "label": "door"}]), "boxes: box has x2 <= x1 or y2 <= y1"),
    ('{"question_id": 4, "question": "broken', "malformed JSON line"),
    (_grounding(5, "../outside/secret.png"), "images: image path escapes the data root"),
    (_grounding(6, "/etc/hostname"), "images: absolute image path"),
    (_grounding(7, "link.png"), "images: image path escapes the data root"),
    (_grounding(8, question=""), "question: missing or empty"),
]

SPATIAL = [
    (_spatial(100), None),
    (_spatial(101, "object size", "45.5", None, FRAMES, "multi_view"), None),
    (_spatial(102, "object count", "3", None, FRAMES[:6], "video"), None),
    (_spatial(103, "object colour"), "question_type: unknown question_type"),
    (_spatial(104, "absolute distance", "abc", None), "answer: not a finite number for a numeric question"),
    (_spatial(105, "room size", "nan", None), "answer: not a finite number for a numeric question"),
    (_spatial(106, answer="E"), "answer: not one of the option letters"),
    (_spatial(107, "object count", "2", MC), "options: not allowed for a numeric question"),
    (_spatial(108, "appearance order", "A", None), "options: missing for a multiple-choice question"),
    (_spatial(109, images=["broken.jpg"]), None),  # readable header: only prepare finds it corrupt
    (_spatial(100, answer="C"), "id: duplicate id"),
    (_spatial(110, data_type="panorama"), "data_type: unknown data_type"),
    (_spatial(111, images=["scene0001_00/missing.jpg"]), "images: image file not found"),
    ("[1, 2, 3]", "record: not a JSON object"),
    (_spatial(112, "absolute distance", 2.5, None), None),  # a JSON number is read as its text
    ({k: v for k, v in _spatial(0).items() if k != "question_id"}, "question_id: missing or not an int/str"),
]

GOOD_SOLUTION = "<think>The table is nearer the door than the chair.</think>\n<answer>B</answer>"
COLD_START = [
    ({"prompt": "Which is closer?", "solution": GOOD_SOLUTION, "image": ["scene0001_00/00001.jpg"],
      "data_type": "single_image"}, None),
    ({"prompt": "Which is closer?", "solution": "<answer>B</answer>", "image": ["scene0001_00/00001.jpg"],
      "data_type": "single_image"}, BAD_SOLUTION),
    ({"prompt": "How far?", "solution": "<think>x</think><answer>1</answer><answer>2</answer>",
      "image": ["scene0001_00/00002.jpg"], "data_type": "single_image"},
     BAD_SOLUTION),
]

OURS = [
    ({"id": "toy/0001", "kind": "spatial", "question": "How many chairs?", "images": FRAMES[:2],
      "data_type": "multi_view", "question_type": "object count", "options": None, "answer": "4", "boxes": [],
      "solution": None, "meta": {"scene": 3, "seed": [1, 2]}}, None),
    ({"id": "toy/0002", "kind": "spatial", "question": "How many chairs?", "images": FRAMES[:2],
      "data_type": "multi_view", "question_type": "object count", "answer": "4", "colour": "red"},
     "colour: unknown field"),
]


def expected_id(file: str, row, line: int) -> str | None:
    if not isinstance(row, dict):
        return None
    if "id" in row:
        return row["id"]
    prefixes = {"spld_grounding_data.jsonl": "grounding", "spld_spatial_data.jsonl": "spatial"}
    prefix = prefixes.get(file, Path(file).stem)
    return f"{prefix}/{row['question_id']}" if "question_id" in row else f"{prefix}/line-{line}"


def make_release(root: Path) -> TinyRelease:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _write_images(root)
    release = TinyRelease(root, {}, [], {}, 0)
    files = {"spld_grounding_data.jsonl": GROUNDING, "spld_spatial_data.jsonl": SPATIAL,
             "cold_start.jsonl": COLD_START, "ours.jsonl": OURS}
    for name, rows in files.items():
        lines = []
        for i, (row, reason) in enumerate(rows):
            if i == 2:
                lines.append("   ")  # a blank line is not a record: neither read nor reported
            lines.append(row if isinstance(row, str) else json.dumps(row))
            line = len(lines)
            rid = expected_id(name, row if not isinstance(row, str) else _maybe_json(row), line)
            if reason is not None:
                release.rejected.append((name, line, rid, reason))
            elif "broken.jpg" in row.get("image", []):
                release.good[rid] = row
                release.corrupt[rid] = "broken.jpg"
            else:
                release.good[rid] = row
        release.lines += len(rows)
        (root / name).write_text("\n".join(lines) + "\n")
    return release


def _maybe_json(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return None
