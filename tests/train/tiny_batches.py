"""Training batches in the agreed per-sample layout for the tiny preset: text, one image block
(vision_start, image pads, vision_end), text, right padding; loss on the text after the image."""

from __future__ import annotations

import numpy as np

from ladder_jax.models.qwen25_vl.config import ModelConfig
from ladder_jax.train.sft import IGNORE


def make_batch(cfg: ModelConfig, seed: int, batch: int = 8, length: int = 32, grid=(1, 4, 4)) -> dict:
    rng = np.random.default_rng(seed)
    v = cfg.vision
    patches = int(np.prod(grid))
    n_img = patches // v.merge_unit
    ids = np.full((batch, length), cfg.pad_token_id, np.int32)
    mask = np.zeros((batch, length), np.int32)
    labels = np.full((batch, length), IGNORE, np.int32)
    for b in range(batch):
        prompt = rng.integers(0, 400, size=int(rng.integers(2, 5)))
        answer = rng.integers(0, 400, size=int(rng.integers(4, length - n_img - 8)))
        row = [*prompt, cfg.vision_start_token_id, *[cfg.image_token_id] * n_img, cfg.vision_end_token_id, *answer]
        ids[b, :len(row)], mask[b, :len(row)] = row, 1
        labels[b, len(row) - len(answer):len(row)] = answer
    return {
        "input_ids": ids, "attention_mask": mask, "labels": labels,
        "pixel_values": rng.standard_normal((batch, patches, v.patch_dim)).astype(np.float32),
        "image_grid_thw": np.tile(np.asarray(grid, np.int32), (batch, 1, 1)),
        "pixel_values_videos": np.zeros((batch, 0, v.patch_dim), np.float32),
        "video_grid_thw": np.zeros((batch, 0, 3), np.int32),
        "second_per_grid_ts": np.ones((batch, 0), np.float32),
    }


class BatchIterator:
    """Cycles through `n` fixed batches; checkpointable like a Grain iterator (get_state/set_state)."""

    def __init__(self, cfg: ModelConfig, n: int = 4, **kw):
        self.batches = [make_batch(cfg, seed, **kw) for seed in range(n)]
        self.position = 0

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        out = self.batches[self.position % len(self.batches)]
        self.position += 1
        return out

    def get_state(self) -> dict:
        return {"position": self.position}

    def set_state(self, state: dict) -> None:
        self.position = int(state["position"])
