"""Host-side padding of rows into a batch: text rows, and a processor's flat vision arrays <-> the
model's per-sample arrays. The rows of every batch (training, pipeline prompts, generation, the
processor's own padded batches) are padded by these functions.

A Qwen2.5-VL processor concatenates the patches of every image of a batch into one
(N, patch_dim) array with one grid row per image, in row-major order of the pad tokens. The
model takes pixels (B, P, patch_dim), grids (B, K, 3) and second_per_grid_ts (B, K), zero-padded
to bucket sizes, so that batches shard by sample and jit sees a bounded set of shapes.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ladder_jax.models.qwen25_vl.inputs import VISION_KEYS

# second_per_grid_ts of padding items: any finite value works, since padded items own no tokens.
PAD_SECONDS = 1.0
# A processor's (pixels, grids, seconds) keys of each vision kind; images have no seconds.
VISION_KINDS = {"images": ("pixel_values", "image_grid_thw", None),
                "videos": ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts")}


class VisionLayoutError(ValueError):
    pass


@dataclasses.dataclass
class RowVision:
    """One sample's images (or videos): patches (n, patch_dim), grids (k, 3), seconds (k,)."""

    patches: np.ndarray
    grids: np.ndarray
    seconds: np.ndarray

    @classmethod
    def empty(cls, patch_dim: int) -> RowVision:
        return cls(np.zeros((0, patch_dim), np.float32), np.zeros((0, 3), np.int32), np.zeros(0, np.float32))


def pad_sequences(rows, length: int, fill, left: bool, dtype=np.int32) -> np.ndarray:
    """1-D rows as one (B, length) array, each padded with `fill` on the left (prompts: every row
    then ends at the last index, where generation continues) or on the right."""
    out = np.full((len(rows), length), fill, dtype)
    for b, row in enumerate(rows):
        out[b, slice(length - len(row), length) if left else slice(0, len(row))] = row
    return out


def split_flat(input_ids, pixels, grids, token_id: int, merge_unit: int, seconds=None) -> list[RowVision]:
    """Assigns the flat grids (and their patches) to rows by counting each row's pad tokens."""
    input_ids = np.asarray(input_ids)
    grids = np.asarray(grids, np.int64).reshape(-1, 3)
    pixels = np.asarray(pixels)
    seconds = np.ones(len(grids), np.float32) if seconds is None else np.asarray(seconds, np.float32)
    tokens = grids.prod(axis=1) // merge_unit
    patch_end = np.cumsum(grids.prod(axis=1))
    if pixels.shape[0] != (patch_end[-1] if len(grids) else 0):
        raise VisionLayoutError(f"pixel rows {pixels.shape[0]} != patches implied by the grids "
                                f"{int(patch_end[-1]) if len(grids) else 0}")
    rows, g = [], 0
    for b, want in enumerate((input_ids == token_id).sum(axis=1)):
        first, have = g, 0
        while have < want and g < len(grids):
            have += tokens[g]
            g += 1
        if have != want:
            raise VisionLayoutError(f"row {b} has {want} pad tokens (id {token_id}) but the grids give {have}")
        start = patch_end[first - 1] if first else 0
        end = patch_end[g - 1] if g > first else start
        rows.append(RowVision(pixels[start:end], grids[first:g], seconds[first:g]))
    if g != len(grids):
        raise VisionLayoutError(f"{len(grids) - g} grid rows are left over after assigning every row's pad tokens")
    return rows


def stack_rows(rows: list[RowVision], patch_dim: int, patches: int | None = None, items: int | None = None):
    """Zero-pads rows to (B, patches, patch_dim), (B, items, 3), (B, items); defaults: the maxima.
    Padding seconds are PAD_SECONDS."""
    need_p = max((len(r.patches) for r in rows), default=0)
    need_k = max((len(r.grids) for r in rows), default=0)
    patches = need_p if patches is None else patches
    items = need_k if items is None else items
    if need_p > patches or need_k > items:
        raise VisionLayoutError(f"a row needs {need_p} patches / {need_k} items; bucket holds {patches} / {items}")
    pix = np.zeros((len(rows), patches, patch_dim), np.float32)
    grid = np.zeros((len(rows), items, 3), np.int32)
    sec = np.full((len(rows), items), PAD_SECONDS, np.float32)
    for b, r in enumerate(rows):
        pix[b, :len(r.patches)] = r.patches
        grid[b, :len(r.grids)] = r.grids
        sec[b, :len(r.seconds)] = r.seconds
    return pix, grid, sec


def split_kind(inputs: dict, kind: str, token_id: int, merge_unit: int) -> list[RowVision] | None:
    """The rows' images or videos (`kind`) from a processor's flat arrays; None when it has none."""
    pixels, grids, seconds = VISION_KINDS[kind]
    if inputs.get(pixels) is None:
        return None
    return split_flat(inputs["input_ids"], inputs[pixels], inputs[grids], token_id, merge_unit,
                      inputs.get(seconds) if seconds else None)


def per_sample_inputs(inputs: dict, image_token_id: int, video_token_id: int, merge_unit: int, patch_dim: int) -> dict:
    """Processor-style flat inputs -> the model's per-sample layout (other keys pass through)."""
    out = {k: v for k, v in inputs.items() if k not in VISION_KEYS}
    for kind, token_id in (("images", image_token_id), ("videos", video_token_id)):
        rows = split_kind(inputs, kind, token_id, merge_unit)
        if rows is None:
            continue
        pixels, grids, seconds = VISION_KINDS[kind]
        out[pixels], out[grids], sec = stack_rows(rows, patch_dim)
        if seconds:
            out[seconds] = sec
    return out
