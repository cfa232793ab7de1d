"""Training-step throughput: our jitted JAX step vs a transformers + torch step (AdamW) on the same
model (built from one config) and the same batch: per row one 224x224 image and ~256 text tokens.

    python bench/train_step.py [--batch 2] [--steps 5] [--dtype float32]

Prints tokens/s (all B·L positions) of each, their ratio, and MFU (n/a on CPU). Not a test.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import numpy as np

from ladder_jax.models.qwen25_vl.api import init_state
from ladder_jax.models.qwen25_vl.config import ModelConfig, TextConfig, VisionConfig, to_hf_dict
from ladder_jax.models.qwen25_vl.inputs import IGNORE_INDEX
from ladder_jax.parallel.mesh import make_mesh
from ladder_jax.models.qwen25_vl import flops as flops_lib
from ladder_jax.train import telemetry
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


def time_steps(run, steps: int) -> list[float]:
    run()  # compile / warm up
    out = []
    for _ in range(steps):
        t = time.perf_counter()
        run()
        out.append(time.perf_counter() - t)
    return out


def bench_jax(cfg: ModelConfig, batch: dict, steps: int) -> list[float]:
    mesh = make_mesh(devices=jax.devices()[:1])
    graphdef, state = init_state(cfg, mesh)
    ts = make_train_step(graphdef, state, OptimConfig(learning_rate=1e-5, total_steps=100), mesh, StepConfig())
    carry = {"state": state, "opt": ts.init_opt_state(state)}
    device_batch = jax.device_put(batch, ts.batch_shardings)

    def run():
        carry["state"], carry["opt"], m = ts.step(carry["state"], carry["opt"], device_batch, jax.random.key(0))
        jax.block_until_ready(m)
    return time_steps(run, steps)


def bench_torch(cfg: ModelConfig, batch: dict, steps: int) -> list[float]:
    import torch  # noqa: PLC0415 (optional: only the benchmark needs it)
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration  # noqa: PLC0415

    hf = {k: v for k, v in to_hf_dict(cfg).items() if k not in ("architectures", "model_type")}
    model = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**hf)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    inputs = {k: torch.from_numpy(np.asarray(v)) for k, v in batch.items()}

    def run():
        loss = model(**inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return time_steps(run, steps)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--text", type=int, default=256, help="text tokens per row (plus 66 image-block tokens)")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--dtype", default="float32", help="compute dtype of our step (bfloat16 on GPU/TPU)")
    p.add_argument("--skip-torch", action="store_true")
    args = p.parse_args()
    cfg = BENCH.replace(dtype=args.dtype)
    inputs = make_inputs(cfg, args.batch, args.text)
    length = inputs["ours"]["input_ids"].shape[1]
    tokens = args.batch * length
    n_params = sum(x.size for x in jax.tree.leaves(init_state(cfg, make_mesh(devices=jax.devices()[:1]))[1]))
    print(f"model {n_params / 1e6:.1f}M params; batch {args.batch} x {length} tokens, {GRID} image grid per row; "
          f"device {jax.devices()[0].device_kind}")
    ours = statistics.median(bench_jax(cfg, inputs["ours"], args.steps))
    flops = flops_lib.train(cfg, args.batch, length, int(np.prod(GRID)))
    util = telemetry.mfu(flops, ours, devices=1)
    print(f"ladder_jax step : {ours * 1e3:8.1f} ms  {tokens / ours:9.1f} tokens/s  "
          f"MFU {'n/a (no peak FLOP/s for this device)' if util is None else f'{100 * util:.1f}%'}")
    if not args.skip_torch:
        theirs = statistics.median(bench_torch(cfg, inputs["torch"], args.steps))
        print(f"torch step      : {theirs * 1e3:8.1f} ms  {tokens / theirs:9.1f} tokens/s")
        print(f"ratio (ours / torch tokens/s): {theirs / ours:.2f}x")


if __name__ == "__main__":
    main()
