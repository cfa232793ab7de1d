"""Logits equal transformers' Qwen2.5-VL (fp32) for every input shape a processor produces."""

import numpy as np
import pytest

from tests.models.qwen25_vl.reference import batch_inputs, build_sample, hf_logits

CASES = {
    "text": [[("text", 12)]],
    "one_image": [[("text", 5), ("image", (4, 6)), ("text", 7)]],
    "images_of_different_sizes": [[("text", 3), ("image", (4, 6)), ("text", 2), ("image", (10, 4)), ("text", 4)]],
    "image_spanning_windows": [[("text", 3), ("image", (12, 20)), ("text", 4)]],
    "video": [[("text", 3), ("video", (3, 4, 4)), ("text", 4)]],
    "video_many_windows_many_frames": [[("text", 3), ("video", (4, 12, 8)), ("text", 4)]],
    "image_and_video": [[("text", 3), ("image", (6, 4)), ("text", 2), ("video", (2, 4, 6)), ("text", 4)]],
}


def _check(hf_tiny, ours, inputs):
    ref = hf_logits(hf_tiny, inputs)
    got = ours(**inputs)
    valid = inputs["attention_mask"].astype(bool)
    np.testing.assert_allclose(got[valid], ref[valid], atol=1e-4, rtol=0)
    return ref


@pytest.mark.parametrize("name", CASES)
def test_logits_match_transformers(name, tiny_cfg, hf_tiny, ours, rng):
    samples = [build_sample(tiny_cfg, rng, pieces) for pieces in CASES[name]]
    _check(hf_tiny, ours, batch_inputs(tiny_cfg, samples))


def test_pixels_change_the_logits(tiny_cfg, hf_tiny, ours, rng):
    """The parity above would be vacuous if vision features did not reach the logits."""
    inputs = batch_inputs(tiny_cfg, [build_sample(tiny_cfg, rng, CASES["image_and_video"][0])])
    base = ours(**inputs)
    for key in ("pixel_values", "pixel_values_videos"):
        changed = dict(inputs, **{key: inputs[key] * 0.5})
        assert np.abs(ours(**changed) - base).max() > 1e-2


@pytest.mark.parametrize("side", ["left", "right"])
def test_padded_batch(side, tiny_cfg, hf_tiny, ours, rng):
    layouts = [[("text", 4), ("image", (4, 4)), ("text", 9)],
               [("text", 2), ("image", (6, 4)), ("text", 3), ("video", (2, 4, 4)), ("text", 2)],
               [("text", 6)]]
    lengths = [len(build_sample(tiny_cfg, np.random.default_rng(0), p)[0]) for p in layouts]
    longest = max(lengths)
    samples = []
    for pieces, n in zip(layouts, lengths):
        pad = {"pad_left" if side == "left" else "pad_right": longest - n}
        samples.append(build_sample(tiny_cfg, rng, pieces, **pad))
    inputs = batch_inputs(tiny_cfg, samples)
    _check(hf_tiny, ours, inputs)


def test_bfloat16_compute_tracks_float32(hf_dir, tiny_cfg, ours, rng):
    from ladder_jax import VisionLanguageModel
    bf16 = VisionLanguageModel.from_pretrained(hf_dir, dtype="bfloat16")
    inputs = batch_inputs(tiny_cfg, [build_sample(tiny_cfg, rng, CASES["image_and_video"][0])])
    got, ref = bf16(**inputs), ours(**inputs)
    assert got.dtype == np.float32 and np.isfinite(got).all()
    assert np.abs(got - ref).max() < 0.05 * np.abs(ref).max()
    assert (got.argmax(-1) == ref.argmax(-1)).mean() > 0.9
