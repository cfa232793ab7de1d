"""Encoded examples → one batch in the batch contract (`models/qwen25_vl/inputs.py`), padded to its buckets.

Training batches are right-padded. Prompt batches (generation) are left-padded so every prompt
ends at the same index, carry no labels, and add the answers and question types rewards need.
`pad_batch` is the padding itself, also used by the prompt batcher (`ladder_jax.generate`) for
prompts that come from a processor instead of the pipeline.
`repad` pads a collated batch further by the same conventions (processes agreeing on one shape).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ladder_jax.data.buckets import Sizes
from ladder_jax.data.examples import Example, Mode
from ladder_jax.models.qwen25_vl.batching import PAD_SECONDS, pad_sequences, stack_rows
from ladder_jax.models.qwen25_vl.inputs import IGNORE_INDEX, MODEL_KEYS, TEXT_KEYS, TRAIN_KEYS


def collate(examples: Sequence[Example], sizes: Sizes, mode: Mode, pad_id: int, patch_dim: int) -> dict:
    """The batch of `examples` padded to `sizes`; `ids` names the records row by row."""
    batch = pad_batch(examples, sizes, mode, pad_id, patch_dim)
    batch["ids"] = tuple(e.id for e in examples)
    if mode == "prompt":
        batch["answers"] = tuple(e.answer for e in examples)
        batch["question_types"] = tuple(e.question_type for e in examples)
    return batch


def pad_batch(rows: Sequence, sizes: Sizes, mode: Mode, pad_id: int, patch_dim: int) -> dict[str, np.ndarray]:
    """The model's arrays for `rows` (each with input_ids (n,), images and videos as `RowVision`, and
    in train mode labels (n,) or None) padded to `sizes`; train mode adds the labels."""
    left = mode == "prompt"
    lengths = [len(r.input_ids) for r in rows]
    batch = {"input_ids": pad_sequences([r.input_ids for r in rows], sizes.length, pad_id, left),
             "attention_mask": pad_sequences([np.ones(n) for n in lengths], sizes.length, 0, left)}
    if mode == "train":
        labels = [() if r.labels is None else r.labels for r in rows]
        batch["labels"] = pad_sequences(labels, sizes.length, IGNORE_INDEX, left)
    batch["pixel_values"], batch["image_grid_thw"], _ = stack_rows(
        [r.images for r in rows], patch_dim, sizes.image_patches, sizes.image_items)
    batch["pixel_values_videos"], batch["video_grid_thw"], batch["second_per_grid_ts"] = stack_rows(
        [r.videos for r in rows], patch_dim, sizes.video_patches, sizes.video_items)
    return batch


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
