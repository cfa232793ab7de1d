"""The prompt batcher: at a batch's own sizes it gives the model's per-sample layout of the
processor's arrays; bucketed, it pads inertly on the left and with zero vision and filler rows."""

import numpy as np
import pytest

from ladder_jax.generate.prompt_batch import bucket, prompt_batch
from ladder_jax.models.qwen25_vl.api import model_inputs
from ladder_jax.models.qwen25_vl.config import preset
from ladder_jax.models.qwen25_vl.inputs import MODEL_KEYS
from tests.models.qwen25_vl.reference import batch_inputs, build_sample

CFG = preset("tiny")
LAYOUTS = [[("text", 9)], [("text", 3), ("image", (4, 6)), ("text", 4)],
           [("text", 2), ("video", (2, 4, 4)), ("text", 3)],
           [("text", 2), ("image", (4, 4)), ("text", 1), ("video", (2, 4, 4)), ("text", 2)]]


def _single(i, layout):
    return batch_inputs(CFG, [build_sample(CFG, np.random.default_rng(i), layout)], seed=i)


def _left_padded(layouts):
    """One processor batch: the prompts left-padded to the longest, vision concatenated in row order."""
    samples = [build_sample(CFG, np.random.default_rng(i), layout) for i, layout in enumerate(layouts)]
    longest = max(len(s[0]) for s in samples)
    padded = [build_sample(CFG, np.random.default_rng(i), layout, pad_left=longest - len(s[0]))
              for i, (layout, s) in enumerate(zip(layouts, samples))]
    return batch_inputs(CFG, padded)


def test_own_sizes_give_the_models_layout():
    inputs = _left_padded(LAYOUTS)
    got, want = prompt_batch(CFG, [inputs]), model_inputs(CFG, inputs)
    assert set(got) == set(MODEL_KEYS) == set(want)
    for key, rank in MODEL_KEYS.items():
        assert got[key].ndim == rank
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_text_only_prompts_get_empty_vision_arrays():
    got = prompt_batch(CFG, [_single(0, LAYOUTS[0])])
    assert got["pixel_values"].shape == (1, 0, CFG.vision.patch_dim) and got["video_grid_thw"].shape == (1, 0, 3)


def test_bucketed_batch_pads_inertly_and_fills_rows():
    singles = [_single(i, layout) for i, layout in enumerate(LAYOUTS)]
    exact = prompt_batch(CFG, singles)
    got = prompt_batch(CFG, singles, rows=6, bucketed=True)
    assert got["input_ids"].shape == (6, 256) and got["pixel_values"].shape[1:] == (256, CFG.vision.patch_dim)
    assert got["image_grid_thw"].shape[1:] == (8, 3) and got["second_per_grid_ts"].shape[1:] == (8,)
    length = exact["input_ids"].shape[1]
    np.testing.assert_array_equal(got["input_ids"][:4, -length:], exact["input_ids"])
    assert (got["input_ids"][:4, :-length] == CFG.pad_token_id).all() and not got["attention_mask"][:4, :-length].any()
    for key in ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw"):
        n = exact[key].shape[1]
        np.testing.assert_array_equal(got[key][:4, :n], exact[key])
        assert not got[key][:4, n:].any()
    for key in MODEL_KEYS:  # filler rows repeat the first prompt
        np.testing.assert_array_equal(got[key][4:], np.repeat(got[key][:1], 2, axis=0))


def test_more_prompts_than_rows_is_an_error():
    with pytest.raises(ValueError, match="2 prompts do not fit a batch of 1 rows"):
        prompt_batch(CFG, [_single(0, LAYOUTS[0])] * 2, rows=1)


def test_bucket_ladder():
    assert [bucket(n, 256) for n in (1, 256, 257, 300, 321, 513, 5000)] == [256, 256, 320, 320, 384, 640, 5120]
    for n in range(1, 5000, 37):
        assert n <= bucket(n, 1) < 1.25 * n + 1
    assert np.unique([bucket(n, 1) for n in range(1025, 2049)]).size == 4
