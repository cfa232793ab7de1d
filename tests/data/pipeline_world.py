"""Small records of every kind and data type, with PIL images on disk, for the pipeline tests.

Images are 56x56 (so the training min_pixels upsamples them to 112x112: 64 patches, 16 tokens),
videos have 4-6 frames; two records are bad on purpose: one image file is truncated, one record
breaks the schema (its answer is not an option letter).
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
from PIL import Image

from ladder_jax.data.schema import Box, Record

MC = ("A. the chair", "B. the table", "C. the lamp")
SIZE = (56, 56)


@dataclasses.dataclass
class World:
    root: Path  # the data root the records' image paths are relative to
    records: list[Record]
    corrupt_id: str  # a record whose image does not decode
    invalid_id: str  # a record that fails schema validation


def _save(root: Path, name: str, seed: int, size=SIZE) -> str:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(root / name)
    return name


def _spatial(i: int, images: tuple[str, ...], data_type: str, numeric: bool) -> Record:
    question = "Which object is closest to the door?" + " Look again at the room." * (i % 4)
    if numeric:
        return Record(f"spatial/{i}", "spatial", question, images, data_type, "object count", None, str(i % 7 + 1))
    return Record(f"spatial/{i}", "spatial", question, images, data_type, "relative distance", MC, "ABC"[i % 3])


def make_world(root: Path) -> World:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    frames = tuple(_save(root, f"frame{i}.png", 100 + i) for i in range(6))
    records = []
    for i in range(12):
        kind = i % 3
        if kind == 0:
            images, data_type = (_save(root, f"single{i}.png", i),), "single_image"
        elif kind == 1:
            images, data_type = frames[: 2 + i % 2], "multi_view"
        else:
            images, data_type = frames[: 4 + i % 3], "video"
        records.append(_spatial(i, images, data_type, numeric=i % 2 == 1))
    for i in range(3):
        image = _save(root, f"ground{i}.png", 50 + i, size=(84, 56))
        boxes = (Box((4.0, 6.0, 40.0, 30.0 + i), "chair"), Box((50.0, 10.0, 80.0, 50.0), "lamp"))
        records.append(Record(f"grounding/{i}", "grounding", "Where are the chair and the lamp?", (image,),
                              "single_image", boxes=boxes))
    for i in range(2):
        solution = f"<think>Let me think. The table is nearer.</think><answer>{'AB'[i]}</answer>"
        records.append(Record(f"cold/{i}", "cold_start", "Which is closer?", (f"single{3 * i}.png",), "single_image",
                              "relative distance", MC, "AB"[i], solution=solution))
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((56, 56, 3), np.uint8)).save(buffer, format="JPEG")
    (root / "broken.jpg").write_bytes(buffer.getvalue()[:200])
    corrupt = _spatial(90, ("broken.jpg",), "single_image", numeric=False)
    invalid = dataclasses.replace(_spatial(91, ("single0.png",), "single_image", numeric=False), answer="Z")
    records[4:4] = [corrupt]
    records[9:9] = [invalid]
    return World(root, records, corrupt.id, invalid.id)
