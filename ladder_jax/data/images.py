"""Decode a record's images from files under a data root or from bytes embedded in a shard.

Only the pixels the processor will read are decoded: every image of an image record, and the
kept frames of a video (all of them unless the processor samples; the others are opened for their
header only, which the frame-rate arithmetic needs through their count). A file that does not
decode becomes a `RecordError` with the same key `prepare` uses ("images: corrupt image"), so
reports from both paths group together.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from ladder_jax.data.schema import Record, RecordError
from ladder_jax.data.vision_preprocess import PreprocessConfig, sample_frame_indices


def read_payloads(record: Record, data_root: Path) -> tuple[bytes, ...]:
    """The encoded files of `record.images`; call after `schema.validate` has checked the paths."""
    payloads = []
    for path in record.images:
        try:
            payloads.append(Path(os.path.join(data_root, path)).read_bytes())
        except OSError as e:
            raise RecordError(record.id, "images", "image file unreadable", f"{path}: {e}") from None
    return tuple(payloads)


def decode_images(record: Record, payloads: Sequence[bytes], vision: PreprocessConfig) -> list[Image.Image]:
    """PIL images aligned with `record.images`; the ones the processor reads are fully decoded."""
    if len(payloads) != len(record.images):
        raise RecordError(record.id, "images", "image payloads do not match the paths",
                          f"{len(payloads)} payloads for {len(record.images)} paths")
    decode = set(range(len(payloads)))
    if record.data_type == "video":
        decode = set(sample_frame_indices(len(payloads), vision.num_frames).tolist())
    images = []
    for i, (path, data) in enumerate(zip(record.images, payloads)):
        try:
            image = Image.open(io.BytesIO(data))
            if i in decode:
                image.load()  # a truncated or corrupt body fails here, not inside the processor
        except Exception as e:  # PIL reports bad files with many exception types
            raise RecordError(record.id, "images", "corrupt image", f"{path}: {type(e).__name__}: {e}") from None
        images.append(image)
    return images
