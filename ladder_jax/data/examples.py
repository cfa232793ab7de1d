"""One source item → one encoded `Example`, or a `Skipped` saying why not.

This runs inside Grain worker processes, so it never raises on bad input: a record that fails
validation, an image that does not decode, a record the processor cannot encode or one that no
bucket holds all come back as `Skipped`, and the batcher carries them to the host to be counted.
`Encoder` is a plain picklable object because Grain sends it to spawned workers.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ladder_jax.data import prompts
from ladder_jax.data.buckets import BucketError, Buckets, Sizes
from ladder_jax.data.images import decode_images, read_payloads
from ladder_jax.data.processor import Processor
from ladder_jax.data.schema import Record, RecordError, validate
from ladder_jax.data.shards import ShardExample
from ladder_jax.data.vision_preprocess import resized_size
from ladder_jax.models.qwen25_vl.batching import VISION_KINDS, RowVision

Mode = Literal["train", "prompt"]

# Which record kinds feed which stage (SPEC section 3): stage 3 samples from spatial questions
# and from cold-start records that carry a question type and answer.
STAGE_KINDS = {
    "stage1": ("grounding",),
    "stage2": ("spatial",),
    "cold_start": ("cold_start",),
    "stage3": ("spatial", "cold_start"),
}


@dataclasses.dataclass
class Skipped:
    """An input the pipeline did not use; `reason` is the fixed phrase the report groups by."""

    source: str  # the file or shard item it came from
    line: int | None
    record_id: str | None
    reason: str
    detail: str = ""


@dataclasses.dataclass
class Example:
    id: str
    source: str
    input_ids: np.ndarray  # (n,) int32
    labels: np.ndarray | None  # (n,) int32, train mode only
    images: RowVision
    videos: RowVision
    answer: str  # prompt mode: the stage's target text (the ground truth rewards compare with)
    question_type: str  # "" for grounding records
    sizes: Sizes


class SafeSource:
    """A random-access source whose failing reads become `Skipped` items instead of exceptions
    (a truncated shard entry must not stop a run)."""

    def __init__(self, source: Any, name: str):
        self._source, self._name = source, name

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, index: int) -> Any:
        try:
            return self._source[index]
        except Exception as e:  # noqa: BLE001 - any read failure is reported, not raised
            return Skipped(f"{self._name} item {index}", None, None, "unreadable source item",
                           f"{type(e).__name__}: {e}")


@dataclasses.dataclass
class Encoder:
    processor: Processor
    stage: prompts.Stage
    mode: Mode
    buckets: Buckets
    answer_only_loss: bool = True
    data_root: Path | None = None  # where record image paths point; None for shard examples
    label_video_pads: bool = False  # with answer_only_loss=False: <|video_pad|> keeps its labels (the reference)

    def __post_init__(self):
        self._path_cache: dict = {}  # per process: shared frames are resolved once

    def __call__(self, item: Record | ShardExample | Skipped) -> Example | Skipped:
        if isinstance(item, Skipped):
            return item
        record = item.record if isinstance(item, ShardExample) else item
        meta = record.meta if isinstance(record.meta, dict) else {}
        source, line = str(meta.get("source", "records")), meta.get("line")
        try:
            return self._encode(item, record, source)
        except RecordError as e:
            return Skipped(source, line, _text(e.record_id), e.key, e.detail)
        except BucketError as e:
            return Skipped(source, line, _text(record.id), e.reason, e.detail)
        except Exception as e:  # noqa: BLE001 - the processor's failures are counted, never fatal
            return Skipped(source, line, _text(record.id), "processor: encoding failed", f"{type(e).__name__}: {e}")

    def _encode(self, item: Record | ShardExample, record: Record, source: str) -> Example:
        if record.kind not in STAGE_KINDS[self.stage]:
            raise RecordError(record.id, "kind", f"not used in {self.stage}", record.kind)
        vision = self.processor.vision
        if isinstance(item, ShardExample):
            images = decode_images(record, item.images, vision)
            validate(record, None, image_sizes=[images[0].size])
        else:
            if self.data_root is None:
                raise ValueError("records need a data_root to read their images from")
            validate(record, self.data_root, path_cache=self._path_cache)
            images = decode_images(record, read_payloads(record, self.data_root), vision)
        if self.mode == "train":
            enc = self.processor.encode_record(record, images, self.stage, self.answer_only_loss,
                                               self.label_video_pads)
        else:
            enc = self.processor.encode_prompt(record, images, self.stage)
        return self._example(record, source, images, enc)

    def _example(self, record: Record, source: str, images: list, enc: dict[str, np.ndarray]) -> Example:
        v = self.processor.vision
        patch_dim = 3 * v.temporal_patch_size * v.patch_size**2
        rows = {name: _row(enc, patch_dim, *keys) for name, keys in VISION_KINDS.items()}
        sizes = Sizes(len(enc["input_ids"]), len(rows["images"].patches), len(rows["images"].grids),
                      len(rows["videos"].patches), len(rows["videos"].grids))
        self.buckets.fit(sizes)
        labels = enc["labels"].astype(np.int32) if "labels" in enc else None
        answer = self._target(record, images) if self.mode == "prompt" else ""
        return Example(record.id, source, enc["input_ids"].astype(np.int32), labels, rows["images"], rows["videos"],
                       answer, record.question_type or "", sizes)

    def _target(self, record: Record, images: list) -> str:
        if self.stage != "stage1":
            return prompts.build_messages(record, self.stage)[1]
        first = images[0]
        hw, resized = (first.height, first.width), resized_size(first, self.processor.vision)
        return prompts.build_messages(record, self.stage, image_hw=hw, resized_hw=resized)[1]


def _row(enc: dict[str, np.ndarray], patch_dim: int, pixels: str, grids: str, seconds: str | None) -> RowVision:
    if pixels not in enc:
        return RowVision.empty(patch_dim)
    n = len(enc[grids])
    secs = enc[seconds] if seconds else np.ones(n, np.float32)
    return RowVision(enc[pixels], enc[grids].astype(np.int32), secs.astype(np.float32))


def _text(record_id: Any) -> str | None:
    return None if record_id is None else str(record_id)
