"""Training-step throughput: our jitted SFT step (AdamW) vs a transformers + torch step (forward,
backward, grad-norm clip, AdamW) on the same model and batch: per row one 224x224 image and 256
text tokens, 2 rows (`--quick`: 128 text tokens). Runs alternate ours / theirs.

    python bench/train_step.py [--batch 2] [--repeats 3] [--quick] [--dtype float32]
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

import common
from ladder_jax.models.qwen25_vl import flops as flops_lib
from ladder_jax.models.qwen25_vl.api import init_state
from ladder_jax.models.qwen25_vl.config import ModelConfig, TextConfig, VisionConfig
from ladder_jax.models.qwen25_vl.inputs import IGNORE_INDEX
from ladder_jax.parallel.mesh import make_mesh
from ladder_jax.train.optim import OptimConfig
from ladder_jax.train.sft import StepConfig, make_train_step

# About 40M parameters: 34M text (16M of them the tied 32k x 512 embedding), 4.6M vision.
BENCH = ModelConfig(
    text=TextConfig(vocab_size=32000, hidden_size=512, intermediate_size=1536, num_hidden_layers=6,
                    num_attention_heads=8, num_key_value_heads=2, mrope_section=(8, 12, 12)),
    vision=VisionConfig(depth=4, hidden_size=256, intermediate_size=512, num_heads=4, out_hidden_size=512,
                        fullatt_block_indexes=(3,)),
    image_token_id=31990, video_token_id=31991, vision_start_token_id=31992, vision_end_token_id=31993,
    eos_token_id=31994, bos_token_id=None, pad_token_id=31995,
)
GRID = (1, 16, 16)  # 224 x 224 pixels in 14-pixel patches: 256 patches, 64 merged tokens


def make_inputs(cfg: ModelConfig, batch: int, text: int, seed: int = 0) -> dict:
    """The agreed per-sample batch, plus the flat processor layout and token types torch wants."""
    rng = np.random.default_rng(seed)
    n_img = int(np.prod(GRID)) // cfg.vision.merge_unit
    rows = [[*rng.integers(0, 31000, 8), cfg.vision_start_token_id, *[cfg.image_token_id] * n_img,
             cfg.vision_end_token_id, *rng.integers(0, 31000, text - 8)] for _ in range(batch)]
    ids = np.asarray(rows, np.int32)
    labels = np.where(np.arange(ids.shape[1]) > 9 + n_img, ids, IGNORE_INDEX).astype(np.int32)
    pixels = rng.standard_normal((batch, int(np.prod(GRID)), cfg.vision.patch_dim)).astype(np.float32)
    ours = {"input_ids": ids, "attention_mask": np.ones_like(ids), "labels": labels, "pixel_values": pixels,
            "image_grid_thw": np.tile(np.asarray(GRID, np.int32), (batch, 1, 1)),
            "pixel_values_videos": np.zeros((batch, 0, cfg.vision.patch_dim), np.float32),
            "video_grid_thw": np.zeros((batch, 0, 3), np.int32), "second_per_grid_ts": np.ones((batch, 0), np.float32)}
    torch_inputs = {"input_ids": ids.astype(np.int64), "attention_mask": np.ones_like(ids, np.int64),
                    "labels": labels.astype(np.int64), "pixel_values": pixels.reshape(-1, cfg.vision.patch_dim),
                    "image_grid_thw": np.tile(np.asarray(GRID, np.int64), (batch, 1)),
                    "mm_token_type_ids": (ids == cfg.image_token_id).astype(np.int64)}
    return {"ours": ours, "torch": torch_inputs}


def jax_runner(cfg: ModelConfig, batch: dict):
    mesh = make_mesh(devices=jax.devices()[:1])
    graphdef, state = init_state(cfg, mesh)
    ts = make_train_step(graphdef, state, OptimConfig(learning_rate=1e-5, total_steps=100), mesh, StepConfig())
    carry = {"state": state, "opt": ts.init_opt_state(state)}
    device_batch = jax.device_put(batch, ts.batch_shardings)

    def run():
        carry["state"], carry["opt"], m = ts.step(carry["state"], carry["opt"], device_batch, jax.random.key(0))
        jax.block_until_ready(m)
    return run


def torch_runner(cfg: ModelConfig, batch: dict):
    import torch  # noqa: PLC0415

    model = common.torch_model(cfg, train=True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    inputs = {k: torch.from_numpy(np.asarray(v)) for k, v in batch.items()}

    def run():
        model(**inputs).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return run


def run(batch: int = 2, repeats: int = 3, quick: bool = False, dtype: str = "float32") -> dict:
    common.header("AdamW train step")
    cfg = BENCH.replace(dtype=dtype)
    inputs = make_inputs(cfg, batch, 128 if quick else 256)
    length = inputs["ours"]["input_ids"].shape[1]
    ours, theirs = jax_runner(cfg, inputs["ours"]), torch_runner(cfg, inputs["torch"])
    t = common.interleaved(ours, theirs, repeats)
    ours_s, theirs_s = t.ours, t.theirs
    return {"name": "AdamW train step", "what": f"39M, {batch}x{length} tok, 224px image", "unit": "tok/s",
            "ours": batch * length / ours_s, "theirs": batch * length / theirs_s,
            "flops_per_s": flops_lib.train(cfg, batch, length, int(np.prod(GRID))) / ours_s, **t.quiet()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--dtype", default="float32", help="compute dtype of our step (bfloat16 on GPU/TPU)")
    a = p.parse_args()
    r = run(a.batch, a.repeats, a.quick, a.dtype)
    print(f"{r['name']} ({r['what']}): ladder_jax {r['ours']:.0f} {r['unit']}, transformers {r['theirs']:.0f}, "
          f"ratio {r['ours'] / r['theirs']:.2f}x, {common.quiet_text(r)}")


if __name__ == "__main__":
    main()
