"""Encoded examples → one batch in the training batch contract, padded to its buckets.

Contract (per sample, batch leading, every key always present, vision sizes may be 0):
  input_ids, attention_mask, labels int32 (B, L); labels -100 where there is no loss;
  pixel_values float32 (B, P, 1176), image_grid_thw int32 (B, K, 3) (zero rows pad);
  pixel_values_videos float32 (B, Pv, 1176), video_grid_thw int32 (B, Kv, 3),
  second_per_grid_ts float32 (B, Kv) (padding 1.0).
Training batches are right-padded. Prompt batches (generation) are left-padded so every prompt
ends at the same index, carry no labels, and add the answers and question types rewards need.
`repad` pads a collated batch further by the same conventions (processes agreeing on one shape).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ladder_jax.data.buckets import Sizes
from ladder_jax.data.examples import Example, Mode
from ladder_jax.data.processor import IGNORE_INDEX
from ladder_jax.models.qwen25_vl.batching import PAD_SECONDS, stack_rows

# The arrays the model's jitted core takes; the rest of a batch is host-side information.
MODEL_KEYS = ("input_ids", "attention_mask", "pixel_values", "image_grid_thw", "pixel_values_videos",
              "video_grid_thw", "second_per_grid_ts")
TRAIN_KEYS = MODEL_KEYS + ("labels",)
# Text keys; in prompt mode they are padded on the left.
TEXT_KEYS = ("input_ids", "attention_mask", "labels")


def collate(examples: Sequence[Example], sizes: Sizes, mode: Mode, pad_id: int, patch_dim: int) -> dict:
    """The batch of `examples` padded to `sizes`; `ids` names the records row by row."""
    batch = _text(examples, sizes.length, mode, pad_id)
    batch["pixel_values"], batch["image_grid_thw"], _ = stack_rows(
        [e.images for e in examples], patch_dim, sizes.image_patches, sizes.image_items)
    batch["pixel_values_videos"], batch["video_grid_thw"], batch["second_per_grid_ts"] = stack_rows(
        [e.videos for e in examples], patch_dim, sizes.video_patches, sizes.video_items)
    batch["ids"] = tuple(e.id for e in examples)
    if mode == "prompt":
        batch["answers"] = tuple(e.answer for e in examples)
        batch["question_types"] = tuple(e.question_type for e in examples)
    return batch


def _text(examples: Sequence[Example], length: int, mode: Mode, pad_id: int) -> dict[str, np.ndarray]:
    rows = len(examples)
    ids = np.full((rows, length), pad_id, np.int32)
    mask = np.zeros((rows, length), np.int32)
    labels = np.full((rows, length), IGNORE_INDEX, np.int32)
    for b, e in enumerate(examples):
        n = len(e.input_ids)
        span = slice(length - n, length) if mode == "prompt" else slice(0, n)
        ids[b, span], mask[b, span] = e.input_ids, 1
        if e.labels is not None:
            labels[b, span] = e.labels
    out = {"input_ids": ids, "attention_mask": mask}
    if mode == "train":
        out["labels"] = labels
    return out


def model_inputs(batch: dict) -> dict[str, np.ndarray]:
    """Only the arrays the model's forward takes (drops labels, ids, answers, question types)."""
    return {key: batch[key] for key in MODEL_KEYS}


def padded_shapes(batch: dict) -> dict[str, tuple[int, ...]]:
    """The padded size of each array of `batch` past the batch axis (what `repad` takes)."""
    return {key: tuple(np.shape(batch[key])[1:]) for key in TRAIN_KEYS if key in batch}


def repad(batch: dict, shapes: dict[str, tuple[int, ...]], mode: Mode, pad_id: int) -> dict:
    """`batch` with each array named in `shapes` padded up to that shape: the batch `collate` gives
    at those sizes. Padding is inert: pad tokens outside the attention mask, no loss (-100), zero
    pixels, zero grid rows (a zero grid owns no tokens) and PAD_SECONDS; prompt text pads on the
    left so prompts still end at the last index. Other keys (ids, answers) pass through."""
    fills = {"input_ids": pad_id, "attention_mask": 0, "labels": IGNORE_INDEX, "pixel_values": 0,
             "image_grid_thw": 0, "pixel_values_videos": 0, "video_grid_thw": 0, "second_per_grid_ts": PAD_SECONDS}
    out = dict(batch)
    for key, shape in shapes.items():
        left = mode == "prompt" and key in TEXT_KEYS
        out[key] = _pad_to(np.asarray(batch[key]), shape, fills[key], left)
    return out


def _pad_to(x: np.ndarray, shape: tuple[int, ...], fill, left: bool) -> np.ndarray:
    extra = [want - have for want, have in zip(shape, x.shape[1:], strict=True)]
    if min(extra, default=0) < 0:
        raise ValueError(f"cannot pad an array of shape {x.shape} down to {shape} past the batch axis")
    widths = [(0, 0)] + [(n, 0) if left else (0, n) for n in extra]
    return np.pad(x, widths, constant_values=fill) if any(extra) else x
