"""Forward + backward tokens/s: our jitted Qwen2.5-VL vs transformers (PyTorch) on the same model.

46.9M parameters, per sample one 448x448 image (1,024 patches -> 256 image tokens) and 512 text
tokens (`--quick`: 224x224 and 128). Both sides compute mean next-token cross-entropy over the
sequence and its gradients w.r.t. every parameter; runs alternate ours / theirs. `--dtype bfloat16`:
both compute in bfloat16 (transformers' weights cast; ours float32 weights cast per dot).

    python bench/model_forward_backward.py [--batch 1] [--repeats 3] [--quick] [--dtype bfloat16]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import optax
from flax import nnx

import common
from ladder_jax.models.qwen25_vl import flops as flops_lib
from ladder_jax.models.qwen25_vl.api import model_inputs
from ladder_jax.models.qwen25_vl.config import ModelConfig, TextConfig, VisionConfig

CFG = ModelConfig(
    text=TextConfig(vocab_size=32000, hidden_size=512, intermediate_size=1408, num_hidden_layers=8,
                    num_attention_heads=8, num_key_value_heads=2, mrope_section=(8, 12, 12)),
    vision=VisionConfig(depth=8, hidden_size=256, intermediate_size=640, num_heads=4, out_hidden_size=512,
                        fullatt_block_indexes=(3, 7)),
    image_token_id=31990, video_token_id=31991, vision_start_token_id=31992, vision_end_token_id=31993,
    eos_token_id=31994, pad_token_id=31995, bos_token_id=None)


def run(batch: int = 1, repeats: int = 3, quick: bool = False, dtype: str = "float32") -> dict:
    import torch  # noqa: PLC0415

    name = "forward+backward" + ("" if dtype == "float32" else f" ({dtype})")
    common.header(name)
    grid, text = ((16, 16), 128) if quick else ((32, 32), 512)
    inputs = common.image_prompts(CFG, batch, text, grid)
    rows, length = inputs["input_ids"].shape
    hf, ours = common.both_models(CFG, train=True, dtype=dtype)
    t_inputs = {k: torch.from_numpy(v) for k, v in inputs.items()}
    t_inputs["pixel_values"] = t_inputs["pixel_values"].to(getattr(torch, dtype))

    def theirs():
        hf.zero_grad(set_to_none=True)
        hf(**t_inputs, labels=t_inputs["input_ids"]).loss.backward()

    jbatch = {k: jnp.asarray(v) for k, v in model_inputs(CFG, inputs).items()}
    ids = jbatch["input_ids"]

    @jax.jit
    def loss_and_grad(state):
        def loss_fn(s):
            logits = nnx.merge(ours.graphdef, s)(**jbatch)
            return optax.softmax_cross_entropy_with_integer_labels(logits[:, :-1], ids[:, 1:]).mean()
        return jax.value_and_grad(loss_fn)(state)

    t = common.interleaved(lambda: jax.block_until_ready(loss_and_grad(ours.state)), theirs, repeats)
    ours_s, theirs_s = t.ours, t.theirs
    params = sum(p.numel() for p in hf.parameters())
    return {"name": name, "dtype": dtype, "what": f"{params / 1e6:.1f}M, {rows}x{length} tok, {grid[0] * 14}px image",
            "unit": "tok/s", "ours": rows * length / ours_s, "theirs": rows * length / theirs_s,
            "flops_per_s": flops_lib.train(CFG, rows, length, grid[0] * grid[1]) / ours_s,
            **t.quiet()}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                   help="compute dtype of both sides (bfloat16: AMX matmuls on CPUs that have them)")
    a = p.parse_args()
    r = run(a.batch, a.repeats, a.quick, a.dtype)
    print(f"{r['name']} ({r['what']}): ladder_jax {r['ours']:.0f} {r['unit']}, transformers {r['theirs']:.0f}, "
          f"ratio {r['ours'] / r['theirs']:.2f}x, {common.quiet_text(r)}")


if __name__ == "__main__":
    main()
