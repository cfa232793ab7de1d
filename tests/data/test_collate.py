"""repad: a collated batch padded further equals the batch collated at the larger sizes, in both
padding modes, so processes that agree on larger shapes feed exactly what one process would."""

import numpy as np
import pytest

from ladder_jax.data.buckets import Sizes
from ladder_jax.data.collate import collate, padded_shapes, repad
from ladder_jax.data.examples import Example
from ladder_jax.models.qwen25_vl.batching import RowVision

PAD, PATCH_DIM = 7, 12


def vision(rng, grids, seconds) -> RowVision:
    grids = np.asarray(grids, np.int32).reshape(-1, 3)
    patches = rng.standard_normal((int(grids.prod(axis=1).sum()), PATCH_DIM)).astype(np.float32)
    return RowVision(patches, grids, np.asarray(seconds, np.float32))


def examples(mode: str) -> list[Example]:
    """A text-only row, a row with two images and a row with one video (seconds 0.5, not the pad 1.0)."""
    rng = np.random.default_rng(0)
    media = [(vision(rng, [], []), vision(rng, [], [])),
             (vision(rng, [[1, 2, 2], [1, 2, 4]], [1, 1]), vision(rng, [], [])),
             (vision(rng, [], []), vision(rng, [[2, 2, 2]], [0.5]))]
    out = []
    for i, (n, (images, videos)) in enumerate(zip((5, 9, 6), media)):
        ids = rng.integers(100, 200, n).astype(np.int32)
        labels = np.where(np.arange(n) >= 2, ids, -100).astype(np.int32) if mode == "train" else None
        sizes = Sizes(n, len(images.patches), len(images.grids), len(videos.patches), len(videos.grids))
        out.append(Example(f"r{i}", "test", ids, labels, images, videos, f"a{i}", "object count", sizes))
    return out


@pytest.mark.parametrize("mode", ["train", "prompt"])
def test_repad_equals_collating_at_the_larger_sizes(mode):
    rows = examples(mode)
    small = collate(rows[:1], Sizes(8, 0, 0, 0, 0), mode, PAD, PATCH_DIM)  # the text-only row's own buckets
    large = collate(rows[:1], Sizes(16, 12, 4, 8, 2), mode, PAD, PATCH_DIM)
    got = repad(small, padded_shapes(large), mode, PAD)
    assert got.keys() == large.keys() and got["ids"] == large["ids"]
    for key in padded_shapes(large):
        assert got[key].dtype == large[key].dtype, key
        np.testing.assert_array_equal(got[key], large[key], err_msg=key)
    assert ("labels" in got) == (mode == "train")


@pytest.mark.parametrize("mode", ["train", "prompt"])
def test_repad_keeps_rows_with_images_and_videos(mode):
    rows = examples(mode)
    small = collate(rows, Sizes(9, 12, 2, 8, 1), mode, PAD, PATCH_DIM)
    large = collate(rows, Sizes(32, 16, 4, 12, 2), mode, PAD, PATCH_DIM)
    got = repad(small, padded_shapes(large), mode, PAD)
    for key in padded_shapes(large):
        np.testing.assert_array_equal(got[key], large[key], err_msg=key)
    if mode == "prompt":  # left padding: every prompt still ends at the last index
        assert got["attention_mask"][:, -1].all() and got["input_ids"][0, 0] == PAD


def test_repad_to_its_own_shapes_is_the_identity_and_never_shrinks():
    batch = collate(examples("train"), Sizes(9, 12, 2, 8, 1), "train", PAD, PATCH_DIM)
    same = repad(batch, padded_shapes(batch), "train", PAD)
    assert all(same[k] is batch[k] for k in batch)
    with pytest.raises(ValueError, match="cannot pad"):
        repad(batch, padded_shapes(batch) | {"input_ids": (8,)}, "train", PAD)
