"""Position bookkeeping in jittable JAX: M-RoPE ids for the decoder, patch coordinates for the ViT.

Grids arrive as fixed-size (K, 3) arrays; rows of zeros are padding, so a batch with fewer
images than the bucket holds compiles to the same program. Nothing here loops over images.

M-RoPE rule (transformers' `get_rope_index`): text advances every axis by one per token; a
vision item starting at position s puts token (t, h, w) of its merged grid at
(s + floor(t * interval), s + h, s + w) with interval = tokens_per_second * second_per_grid_t
for videos and 1 for images, and the text after it resumes at s + max(h_merged, w_merged).
Padding (attention_mask 0) gets position 0 and advances nothing. Decoding continues from
`next_position` = 1 + the largest position of the prompt, one step per generated token.
"""

from __future__ import annotations

import jax.numpy as jnp


def _item_of(token_index, counts):
    """For global token indexes into a concatenation of items of `counts` tokens: item id, offset."""
    ends = jnp.cumsum(counts)
    item = jnp.clip(jnp.searchsorted(ends, token_index, side="right"), 0, counts.shape[0] - 1)
    return item, token_index - (ends[item] - counts[item])


def _vision_token_coords(is_token, grid_thw, merge, interval):
    """(t, h, w) merged-grid coordinates of each vision token, and the advance after each item."""
    t = grid_thw[:, 0]
    h = jnp.maximum(grid_thw[:, 1] // merge, 1)
    w = jnp.maximum(grid_thw[:, 2] // merge, 1)
    counts = jnp.where(grid_thw[:, 0] > 0, t * h * w, 0)
    flat = is_token.reshape(-1)
    item, off = _item_of(jnp.cumsum(flat) - 1, counts)
    hi, wi = h[item], w[item]
    ti = off // (hi * wi)
    tpos = jnp.floor(ti.astype(jnp.float32) * interval[item]).astype(jnp.int32)
    hpos = (off // wi) % hi
    wpos = off % wi
    advance = jnp.where(flat & (off == counts[item] - 1), jnp.maximum(hi, wi), 0)
    shape = is_token.shape
    return tuple(a.reshape(shape).astype(jnp.int32) for a in (tpos, hpos, wpos, advance))


def mrope_positions(input_ids, attention_mask, image_grid_thw, video_grid_thw, second_per_grid_ts, *,
                    image_token_id: int, video_token_id: int, spatial_merge_size: int, tokens_per_second: float):
    """Returns positions (3, B, L) int32 and next_position (B,) int32."""
    valid = attention_mask.astype(bool)
    is_img = (input_ids == image_token_id) & valid
    is_vid = (input_ids == video_token_id) & valid
    coords = jnp.zeros((3,) + input_ids.shape, jnp.int32)
    advance = jnp.where(valid & ~is_img & ~is_vid, 1, 0)
    for is_tok, grid, interval in (
        (is_img, image_grid_thw, None),
        (is_vid, video_grid_thw, second_per_grid_ts),
    ):
        if grid is None or grid.shape[0] == 0:
            continue
        grid = grid.astype(jnp.int32)
        if interval is None:
            interval = jnp.ones(grid.shape[0], jnp.float32)
        else:
            interval = tokens_per_second * interval.astype(jnp.float32)
        t, h, w, adv = _vision_token_coords(is_tok, grid, spatial_merge_size, interval)
        coords = coords + jnp.where(is_tok, jnp.stack([t, h, w]), 0)
        advance = advance + adv
    start = jnp.cumsum(advance, axis=1) - advance
    positions = jnp.where(valid, start[None] + coords, 0)
    next_position = jnp.max(jnp.where(valid[None], positions, -1), axis=(0, 2)) + 1
    return positions, next_position


def mrope_cos_sin(positions, head_dim: int, theta: float, mrope_section):
    """cos, sin of shape (B, L, head_dim): frequency band i takes its angle from axis (section of i) % 3."""
    inv_freq = 1.0 / (theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))
    freqs = positions.astype(jnp.float32)[..., None] * inv_freq  # (3, B, L, head_dim/2)
    axis_of_band = jnp.concatenate([jnp.full((n,), i % 3) for i, n in enumerate(mrope_section)])
    picked = jnp.take_along_axis(freqs, axis_of_band[None, None, None, :], axis=0)[0]
    emb = jnp.concatenate([picked, picked], axis=-1)
    return jnp.cos(emb), jnp.sin(emb)


def vision_patch_layout(grid_thw, num_patches: int, merge: int, window_merged: int):
    """Per patch of a concatenation of items (patches in the processor's merge-block order):

    returns (h, w) patch coordinates for the 2-D rotary, a frame id for full-attention blocks and a
    window id (within the frame) for windowed blocks; padding patches get frame id -1.
    """
    grid = grid_thw.astype(jnp.int32)
    t, h, w = grid[:, 0], jnp.maximum(grid[:, 1], 1), jnp.maximum(grid[:, 2], 1)
    counts = t * grid[:, 1] * grid[:, 2]
    p = jnp.arange(num_patches)
    item, off = _item_of(p, counts)
    valid = p < jnp.sum(counts)
    hw = h[item] * w[item]
    frame, r = off // hw, off % hw
    block, j = r // (merge * merge), r % (merge * merge)
    wm = w[item] // merge
    bh, bw = block // jnp.maximum(wm, 1), block % jnp.maximum(wm, 1)
    hpos = bh * merge + j // merge
    wpos = bw * merge + j % merge
    frames_before = jnp.cumsum(t) - t
    frame_id = jnp.where(valid, frames_before[item] + frame, -1)
    windows_w = (wm + window_merged - 1) // window_merged
    window_id = (bh // window_merged) * windows_w + bw // window_merged
    return hpos, wpos, frame_id, window_id


def vision_cos_sin(hpos, wpos, head_dim: int, theta: float):
    """Axial 2-D rotary for the ViT: bands over head_dim/2, h angles then w angles, repeated twice."""
    spatial = head_dim // 2
    inv_freq = 1.0 / (theta ** (jnp.arange(0, spatial, 2, dtype=jnp.float32) / spatial))
    fh = hpos.astype(jnp.float32)[..., None] * inv_freq
    fw = wpos.astype(jnp.float32)[..., None] * inv_freq
    emb = jnp.concatenate([fh, fw, fh, fw], axis=-1)
    return jnp.cos(emb), jnp.sin(emb)


def vision_window_order(grid_thw, num_patches: int, padded: int, merge: int, window_merged: int,
                        window_chunk: int, frame_chunk: int):
    """The tower's working order: patches sorted by (frame, window), padding last, `padded` slots.

    Returns order (padded,) (slot -> patch index; indexes >= num_patches are extra padding slots),
    hpos, wpos (padded,) in that order, and two segment-id arrays for `segment_attention`: one run
    per window (windowed blocks) and one per frame (full blocks). Windows hold whole merge blocks,
    so the sort keeps each block's patches together and in order. Padding gets negative ids, one per
    chunk of its kind, so a padded tail never widens a chunk's key span.
    """
    hpos, wpos, frame, window = vision_patch_layout(grid_thw, num_patches, merge, window_merged)
    extra = padded - num_patches
    pad = lambda a, value: jnp.concatenate([a, jnp.full((extra,), value, a.dtype)])
    hpos, wpos, frame, window = pad(hpos, 0), pad(wpos, 0), pad(frame, -1), pad(window, 0)
    valid = frame >= 0
    slot = jnp.arange(padded)
    order = jnp.lexsort((slot, window, jnp.where(valid, frame, padded)))
    frame, window, valid = frame[order], window[order], valid[order]
    new_window = jnp.concatenate([jnp.ones((1,), bool), (frame[1:] != frame[:-1]) | (window[1:] != window[:-1])])
    window_seg = jnp.where(valid, jnp.cumsum(new_window) - 1, -1 - slot // window_chunk)
    frame_seg = jnp.where(valid, frame, -1 - slot // frame_chunk)
    return order, hpos[order], wpos[order], window_seg.astype(jnp.int32), frame_seg.astype(jnp.int32)
