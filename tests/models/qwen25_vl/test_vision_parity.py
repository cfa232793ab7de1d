"""The vision tower (window-gathered attention) equals transformers' Qwen2.5-VL tower (fp32), per
sample and in a padded batch, for layouts with many windows per frame, many frames, and images of
different sizes together."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

# grids (t, h, w) in patches; the tiny preset's windows are 4 x 4 patches (16 per window).
SAMPLES = {
    "video_many_windows_many_frames": [(4, 12, 8)],
    "images_of_different_sizes": [(1, 6, 10), (1, 14, 6), (1, 4, 4), (1, 2, 2)],
    "image_then_video": [(1, 10, 6), (3, 8, 12)],
    "odd_windows": [(1, 6, 6), (2, 10, 2)],
}


@pytest.fixture(scope="module")
def tower(ours):
    return jax.jit(lambda state, px, grid: nnx.merge(ours.graphdef, state).visual(px, grid))


def hf_tower(hf, pixels, grids):
    with torch.no_grad():
        out = hf.model.visual(torch.from_numpy(pixels), grid_thw=torch.tensor(grids, dtype=torch.int64))
    return out.pooler_output.numpy()


def pixels_for(cfg, grids, rng):
    return rng.standard_normal((sum(int(np.prod(g)) for g in grids), cfg.vision.patch_dim)).astype(np.float32)


@pytest.mark.parametrize("name", SAMPLES)
def test_tower_matches_transformers(name, tiny_cfg, hf_tiny, ours, tower, rng):
    grids = SAMPLES[name]
    pixels = pixels_for(tiny_cfg, grids, rng)
    got = tower(ours.state, jnp.asarray(pixels), jnp.asarray(grids, jnp.int32))
    np.testing.assert_allclose(np.asarray(got), hf_tower(hf_tiny, pixels, grids), atol=1e-4, rtol=0)


def test_padded_batch_matches_transformers(tiny_cfg, hf_tiny, ours, tower, rng):
    """Rows of one batch: patch padding up to the bucket and zero grid rows change nothing."""
    names = list(SAMPLES)
    items = [(SAMPLES[n], pixels_for(tiny_cfg, SAMPLES[n], rng)) for n in names]
    width = max(p.shape[0] for _, p in items) + 40  # not a multiple of the window: extra padding slots
    most = max(len(g) for g, _ in items)
    px = np.zeros((len(items), width, tiny_cfg.vision.patch_dim), np.float32)
    gr = np.zeros((len(items), most, 3), np.int32)
    for i, (g, p) in enumerate(items):
        px[i, : p.shape[0]], gr[i, : len(g)] = p, g
    got = np.asarray(tower(ours.state, jnp.asarray(px), jnp.asarray(gr)))
    for i, (g, p) in enumerate(items):
        want = hf_tower(hf_tiny, p, g)
        np.testing.assert_allclose(got[i, : want.shape[0]], want, atol=1e-4, rtol=0)
