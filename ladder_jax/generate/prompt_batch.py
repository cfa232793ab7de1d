"""The prompt batcher: prompts as a processor returns them -> the left-padded batch the sampler takes.

Evaluation, the demo and `generate` build their batches here; GRPO's prompts come batched from
the data pipeline, whose prompt mode pads with the same function (`data.collate.pad_batch`; the
pipeline runs in data/, a layer below this one). Text is left-padded, so every prompt ends at the
last index and the first sampled token follows it in every row; vision arrays are per sample.

`bucketed` rounds the length, patch and image counts up on a ladder of four sizes per doubling,
and `rows` fills the batch with copies of its first prompt (whose outputs the caller drops), so a
whole benchmark compiles a handful of programs rather than one per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ladder_jax.data.buckets import Sizes
from ladder_jax.data.collate import pad_batch
from ladder_jax.models.qwen25_vl.batching import RowVision, split_kind
from ladder_jax.models.qwen25_vl.config import ModelConfig

# The smallest bucket of (length, image patches, images, video patches, videos).
MINIMUM = Sizes(256, 256, 8, 256, 8)


class Prompt(NamedTuple):
    """One prompt: its tokens (n,) without padding, and its images and videos."""

    input_ids: np.ndarray
    images: RowVision
    videos: RowVision


def bucket(n: int, minimum: int) -> int:
    """n rounded up on a ladder of 4 sizes per doubling (under 25% padding), at least `minimum`."""
    if n <= minimum:
        return minimum
    step = 2 ** max(0, (n - 1).bit_length() - 3)
    return -(-n // step) * step


def pad_id(cfg: ModelConfig) -> int:
    return 0 if cfg.pad_token_id is None else cfg.pad_token_id


def split_prompts(cfg: ModelConfig, inputs: dict) -> list[Prompt]:
    """A processor's output (one prompt, or a left-padded batch of them) -> its prompts in row order."""
    ids = np.asarray(inputs["input_ids"])
    mask = inputs.get("attention_mask")
    mask = np.ones_like(ids) if mask is None else np.asarray(mask)
    v = cfg.vision
    empty = [RowVision.empty(v.patch_dim)] * len(ids)
    images = split_kind(inputs, "images", cfg.image_token_id, v.merge_unit) or empty
    videos = split_kind(inputs, "videos", cfg.video_token_id, v.merge_unit) or empty
    return [Prompt(row[keep.astype(bool)], *vision) for row, keep, *vision in zip(ids, mask, images, videos)]


def prompt_sizes(cfg: ModelConfig, prompts: Sequence[dict], bucketed: bool = False) -> Sizes:
    """What a batch of processor outputs `prompts` needs: the widest input's length, the most
    patches and items of a row; `bucketed`, each rounded up by `bucket`."""
    return _sizes(prompts, [p for inputs in prompts for p in split_prompts(cfg, inputs)], bucketed)


def _sizes(prompts: Sequence[dict], split: Sequence[Prompt], bucketed: bool) -> Sizes:
    need = Sizes(max(np.shape(p["input_ids"])[1] for p in prompts),
                 max(len(p.images.patches) for p in split), max(len(p.images.grids) for p in split),
                 max(len(p.videos.patches) for p in split), max(len(p.videos.grids) for p in split))
    if bucketed:  # a dimension no prompt uses stays 0: its arrays are empty and cost nothing
        need = Sizes(*(bucket(n, low) if n else 0 for n, low in zip(need, MINIMUM)))
    return need


def prompt_batch(cfg: ModelConfig, prompts: Sequence[dict], *, rows: int | None = None,
                 bucketed: bool = False, sizes: Sizes | None = None) -> dict[str, np.ndarray]:
    """The sampler's batch (`inputs.MODEL_KEYS`) for processor outputs `prompts`, their rows in order.

    Sizes are the batch's own (`prompt_sizes`, `bucketed` or not), or `sizes` where given (what
    several processes agreed on; each must hold the batch's own); `rows` (default: the prompts'
    count) adds copies of the first prompt."""
    split = [p for inputs in prompts for p in split_prompts(cfg, inputs)]
    rows = len(split) if rows is None else rows
    if not 0 < len(split) <= rows:
        raise ValueError(f"{len(split)} prompts do not fit a batch of {rows} rows")
    need = _sizes(prompts, split, bucketed)
    if sizes is not None:
        if any(n > s for n, s in zip(need, sizes)):
            raise ValueError(f"prompts needing {need} do not fit the sizes {sizes}")
        need = sizes
    return pad_batch(split + [split[0]] * (rows - len(split)), need, "prompt", pad_id(cfg), cfg.vision.patch_dim)
