"""Where a training step's time goes, per part, for the forward+backward benchmark's model and
batch: vision tower, decoder layers, loss (LM head + cross-entropy) each forward+backward alone,
and an AdamW update of all parameters. Each part is its own jitted function; medians.

    python bench/parts.py [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import common
from ladder_jax.models.qwen25_vl.api import VisionLanguageModel, model_inputs
from model_forward_backward import CFG


def _median(fn, repeats):
    jax.block_until_ready(fn())
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        out.append(time.perf_counter() - start)
    return statistics.median(out)


def run(repeats: int = 5, quick: bool = False) -> dict:
    common.header("per-part times")
    grid, text = ((16, 16), 128) if quick else ((32, 32), 512)
    inputs = model_inputs(CFG, common.image_prompts(CFG, 1, text, grid))
    batch = {k: jnp.asarray(v) for k, v in inputs.items()}
    model = VisionLanguageModel.from_config(CFG)
    full = nnx.merge(model.graphdef, model.state)
    parts = {}

    vis_def, vis_state = nnx.split(full.visual)
    px, grids = batch["pixel_values"][0], batch["image_grid_thw"][0]  # one sample: every version of the tower takes it
    vis = jax.jit(jax.grad(lambda s: jnp.sum(nnx.merge(vis_def, s)(px, grids) ** 2)))
    parts["vision tower"] = _median(lambda: vis(vis_state), repeats)

    x = full.embed(**{k: batch[k] for k in ("input_ids", "pixel_values", "image_grid_thw")})
    positions, _ = full.positions(batch["input_ids"], batch["attention_mask"], batch["image_grid_thw"])
    cos, sin = full._cos_sin(positions)
    from ladder_jax.models.qwen25_vl.text import causal_mask  # noqa: PLC0415
    mask = causal_mask(jnp.arange(x.shape[1]), batch["attention_mask"].astype(bool))
    dec_def, dec_state = nnx.split(full.decoder)
    dec = jax.jit(jax.grad(lambda s, x: jnp.sum(nnx.merge(dec_def, s)(x, cos, sin, mask)[0] ** 2), argnums=(0, 1)))
    parts["decoder layers"] = _median(lambda: dec(dec_state, x), repeats)

    ids = batch["input_ids"]
    emb = full.embed_tokens[...]
    hidden = jnp.asarray(np.random.default_rng(0).standard_normal(x.shape), jnp.float32)

    def loss(w, h):
        logits = jnp.dot(h, w.T)
        return optax.softmax_cross_entropy_with_integer_labels(logits[:, :-1], ids[:, 1:]).mean()
    lossg = jax.jit(jax.grad(loss, argnums=(0, 1)))
    parts["loss (LM head + CE)"] = _median(lambda: lossg(emb, hidden), repeats)

    opt = optax.adamw(1e-5)
    params = nnx.state(full, nnx.Param)
    opt_state = opt.init(params)
    grads = jax.tree.map(jnp.ones_like, params)

    @jax.jit
    def update(p, o):
        u, o = opt.update(grads, o, p)
        return optax.apply_updates(p, u), o
    parts["AdamW update"] = _median(lambda: update(params, opt_state), repeats)
    return parts


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    before = common.load()
    parts = run(a.repeats, a.quick)
    total = sum(parts.values())
    for name, s in parts.items():
        print(f"{name:>22}: {s * 1e3:8.1f} ms  ({100 * s / total:4.1f}%)")
    print(f"load average {before:.2f} -> {common.load():.2f}")


if __name__ == "__main__":
    main()
