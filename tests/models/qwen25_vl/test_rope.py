"""Jitted M-RoPE positions equal transformers' get_rope_index on many random layouts."""

import jax
import numpy as np
import torch

from ladder_jax.models.qwen25_vl import rope
from tests.models.qwen25_vl.reference import build_sample


def _random_layout(rng):
    pieces = []
    for _ in range(rng.integers(1, 5)):
        r = rng.random()
        if r < 0.4:
            pieces.append(("text", int(rng.integers(1, 6))))
        elif r < 0.75:
            pieces.append(("image", tuple(int(x) * 2 for x in rng.integers(1, 6, size=2))))
        else:
            pieces.append(("video", (int(rng.integers(1, 5)),) + tuple(int(x) * 2 for x in rng.integers(1, 4, size=2))))
    return pieces + [("text", int(rng.integers(1, 4)))]


def test_positions_match_transformers(tiny_cfg, hf_tiny):
    rng = np.random.default_rng(7)
    fn = jax.jit(lambda *a: rope.mrope_positions(
        *a, image_token_id=tiny_cfg.image_token_id, video_token_id=tiny_cfg.video_token_id,
        spatial_merge_size=2, tokens_per_second=tiny_cfg.vision.tokens_per_second))
    for trial in range(60):
        rows = [build_sample(tiny_cfg, rng, _random_layout(rng)) for _ in range(int(rng.integers(1, 4)))]
        rows += [build_sample(tiny_cfg, rng, [("text", 1)])] * (3 - len(rows))  # one static batch size
        longest = 192  # one static length (the largest layout is ~155 tokens): every trial runs the same compiled program
        padded = []
        for ids, types, mask, img, vid in rows:
            pad = longest - len(ids)
            left = int(rng.integers(0, pad + 1))
            padded.append((np.pad(ids, (left, pad - left), constant_values=tiny_cfg.pad_token_id),
                           np.pad(types, (left, pad - left)), np.pad(mask, (left, pad - left)), img, vid))
        ids = np.stack([p[0] for p in padded]); types = np.stack([p[1] for p in padded])
        mask = np.stack([p[2] for p in padded])
        img = [g for p in padded for g in p[3]]; vid = [g for p in padded for g in p[4]]
        seconds = rng.choice([0.5, 1.0, 2.0, 1.3], size=len(vid)).astype(np.float32)
        img_arr = np.array(img, np.int64).reshape(-1, 3); vid_arr = np.array(vid, np.int64).reshape(-1, 3)
        ref, ref_delta = hf_tiny.model.get_rope_index(
            torch.from_numpy(ids), torch.from_numpy(types),
            image_grid_thw=torch.from_numpy(img_arr) if img else None,
            video_grid_thw=torch.from_numpy(vid_arr) if vid else None,
            second_per_grid_ts=torch.from_numpy(seconds) if vid else None,
            attention_mask=torch.from_numpy(mask))
        # Static shapes: grids padded with zero rows, as the pipeline does.
        got, next_pos = fn(ids, mask, np.pad(img_arr, ((0, 16 - len(img_arr)), (0, 0))),
                           np.pad(vid_arr, ((0, 16 - len(vid_arr)), (0, 0))),
                           np.pad(seconds, (0, 16 - len(seconds)), constant_values=1.0))
        valid = mask.astype(bool)
        np.testing.assert_array_equal(np.asarray(got)[:, valid], ref.numpy()[:, valid], err_msg=f"trial {trial}")
        np.testing.assert_array_equal(np.asarray(next_pos), ref_delta[:, 0].numpy() + valid.sum(1))
