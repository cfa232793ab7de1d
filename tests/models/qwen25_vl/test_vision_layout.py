"""The tower's window order equals transformers' get_window_index (order and window lengths)."""

import jax
import numpy as np
import torch
from transformers.vision_utils import get_vision_window_index

from ladder_jax.models.qwen25_vl import rope


def test_window_order_matches_transformers(tiny_cfg):
    v = tiny_cfg.vision
    chunk = v.window_merged ** 2 * v.merge_unit
    n, padded = 1200, 1216
    fn = jax.jit(lambda g: rope.vision_window_order(g, n, padded, v.spatial_merge_size, v.window_merged, chunk, 2 * chunk))
    rng = np.random.default_rng(0)
    for trial in range(25):
        grids, total = [], 0
        while True:
            g = (int(rng.integers(1, 4)), 2 * int(rng.integers(1, 9)), 2 * int(rng.integers(1, 9)))
            if total + np.prod(g) > n:
                break
            grids.append(g)
            total += int(np.prod(g))
        order, _, _, window_seg, frame_seg = (np.asarray(a) for a in fn(np.pad(np.array(grids), ((0, 40 - len(grids)), (0, 0)))))
        index, cu = get_vision_window_index(torch.tensor(grids), spatial_merge_size=v.spatial_merge_size,
                                            window_size=v.window_size, patch_size=v.patch_size)
        np.testing.assert_array_equal(order[:total:v.merge_unit] // v.merge_unit, index.numpy(), err_msg=f"trial {trial}")
        assert (order[:total] < total).all() and sorted(order.tolist()) == list(range(padded))
        lengths = np.diff(np.unique(np.asarray(cu)))
        _, counts = np.unique(window_seg[:total], return_counts=True)
        np.testing.assert_array_equal(counts, lengths)
        frames = np.repeat(np.arange(sum(g[0] for g in grids)), [g[1] * g[2] for g in grids for _ in range(g[0])])
        np.testing.assert_array_equal(frame_seg[:total], frames)
        assert (window_seg[total:] < 0).all() and (frame_seg[total:] < 0).all()
