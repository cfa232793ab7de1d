"""The largest batch a stage can produce, as abstract arrays of the batch contract.

Text: the largest length bucket (longer examples are skipped by the pipeline, so no batch is
longer). Images: the largest image-items bucket (one image for grounding, stage 1's only kind),
each at the stage's max_pixels, padded to its patch bucket (capped by the largest). Videos: the
largest video buckets for stages whose kinds carry videos. Rows of one batch are padded to the
largest of each dimension, so a batch may carry both.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from ladder_jax.data.buckets import Buckets
from ladder_jax.data.pipeline import PipelineConfig
from ladder_jax.models.qwen25_vl.config import ModelConfig

IMAGE_ONLY_STAGES = ("stage1",)  # grounding records: one image, no video


@dataclasses.dataclass(frozen=True)
class BatchShape:
    rows: int  # global rows (prompts for stage 3)
    length: int  # text tokens per row
    image_items: int
    image_patches: int
    video_items: int
    video_patches: int

    @property
    def patches(self) -> int:
        return self.image_patches + self.video_patches


def _bucket(buckets: tuple[int, ...], value: int) -> int:
    """The smallest bucket holding `value`, or the largest (examples beyond it are skipped)."""
    return next((b for b in buckets if value <= b), buckets[-1])


def patches_per_image(max_pixels: int, model: ModelConfig) -> int:
    """Patches of one image resized to at most max_pixels (whole 28x28 merge units)."""
    side = model.vision.patch_size * model.vision.spatial_merge_size
    return (max_pixels // (side * side)) * model.vision.spatial_merge_size ** 2


def longest(p: PipelineConfig, model: ModelConfig) -> BatchShape:
    """The longest batch the stage's pipeline can produce (see module doc)."""
    b: Buckets = p.buckets
    images = 1 if p.stage in IMAGE_ONLY_STAGES else b.image_items[-1]
    image_patches = _bucket(b.image_patches, images * patches_per_image(p.max_pixels, model))
    videos = 0 if p.stage in IMAGE_ONLY_STAGES else b.video_items[-1]
    video_patches = b.video_patches[-1] if videos else 0
    return BatchShape(p.global_batch_size, b.lengths[-1], images, image_patches, videos, video_patches)


def abstract_batch(s: BatchShape, model: ModelConfig, shardings: dict, labels: bool) -> dict:
    """ShapeDtypeStructs of the batch contract (models/qwen25_vl/inputs.py) at shape `s`."""
    dim = model.vision.patch_dim
    shapes = {
        "input_ids": ((s.rows, s.length), jnp.int32), "attention_mask": ((s.rows, s.length), jnp.int32),
        "pixel_values": ((s.rows, s.image_patches, dim), jnp.float32),
        "image_grid_thw": ((s.rows, s.image_items, 3), jnp.int32),
        "pixel_values_videos": ((s.rows, s.video_patches, dim), jnp.float32),
        "video_grid_thw": ((s.rows, s.video_items, 3), jnp.int32),
        "second_per_grid_ts": ((s.rows, s.video_items), jnp.float32),
    }
    if labels:
        shapes["labels"] = ((s.rows, s.length), jnp.int32)
    return {k: jax.ShapeDtypeStruct(shape, dtype, sharding=shardings[k]) for k, (shape, dtype) in shapes.items()}


def per_device_bytes(tree) -> int:
    """Bytes one device holds of a tree of sharded arrays / ShapeDtypeStructs (its largest shard)."""
    total = 0
    for x in jax.tree.leaves(tree):
        shape = x.sharding.shard_shape(x.shape) if getattr(x, "sharding", None) is not None else x.shape
        total += math.prod(shape) * jnp.dtype(x.dtype).itemsize
    return total
