"""Forward + backward tokens/s: our jitted Qwen2.5-VL vs transformers (PyTorch) on the same model.

About 50M parameters, one 448x448 image (1,024 patches -> 256 image tokens) plus 512 text tokens
per sample. Both sides compute mean cross-entropy over the sequence and its gradients w.r.t.
every parameter. Run from the repository root:
`PYTHONPATH=. python bench/model_forward_backward.py [--batch 1] [--steps 5]`.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from flax import nnx

from ladder_jax.models.qwen25_vl.api import VisionLanguageModel, model_inputs
from ladder_jax.models.qwen25_vl.config import ModelConfig, TextConfig, VisionConfig
from tests.models.qwen25_vl.reference import batch_inputs, build_sample, hf_model

CFG = ModelConfig(
    text=TextConfig(vocab_size=32000, hidden_size=512, intermediate_size=1408, num_hidden_layers=8,
                    num_attention_heads=8, num_key_value_heads=2, mrope_section=(8, 12, 12)),
    vision=VisionConfig(depth=8, hidden_size=256, intermediate_size=640, num_heads=4, out_hidden_size=512,
                        fullatt_block_indexes=(3, 7)),
    image_token_id=31990, video_token_id=31991, vision_start_token_id=31992, vision_end_token_id=31993,
    eos_token_id=31994, pad_token_id=31995, bos_token_id=None)


def timed(fn, steps):
    fn()  # compile / warm up
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rng = np.random.default_rng(0)
    pieces = [("text", 200), ("image", (32, 32)), ("text", 310)]
    inputs = batch_inputs(CFG, [build_sample(CFG, rng, pieces) for _ in range(args.batch)])
    tokens = inputs["input_ids"].size

    hf = hf_model(CFG).train()
    n_params = sum(p.numel() for p in hf.parameters())
    t_inputs = {k: torch.from_numpy(np.asarray(v)) for k, v in inputs.items()}
    labels = t_inputs["input_ids"]

    def torch_step():
        hf.zero_grad(set_to_none=True)
        hf(**t_inputs, labels=labels).loss.backward()

    import tempfile
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        ours = VisionLanguageModel.from_pretrained(d)
    batch = {k: jnp.asarray(v) for k, v in model_inputs(CFG, inputs).items()}
    ids = batch["input_ids"]

    @jax.jit
    def loss_and_grad(state):
        def loss_fn(s):
            logits = nnx.merge(ours.graphdef, s)(**batch)
            return optax.softmax_cross_entropy_with_integer_labels(logits[:, :-1], ids[:, 1:]).mean()
        return jax.value_and_grad(loss_fn)(state)

    def jax_step():
        jax.block_until_ready(loss_and_grad(ours.state))

    t_ours = timed(jax_step, args.steps)
    t_torch = timed(torch_step, args.steps)
    print(f"model: {n_params / 1e6:.1f}M parameters; batch {args.batch} x {inputs['input_ids'].shape[1]} tokens "
          f"(256 image tokens from a 448x448 image); {jax.devices()[0].platform}, torch threads {torch.get_num_threads()}")
    print(f"forward+backward  ladder_jax: {tokens / t_ours:8.0f} tokens/s ({t_ours * 1e3:.0f} ms/step)")
    print(f"forward+backward  transformers: {tokens / t_torch:6.0f} tokens/s ({t_torch * 1e3:.0f} ms/step)")
    print(f"ratio ladder_jax / transformers: {t_torch / t_ours:.2f}x")


if __name__ == "__main__":
    main()
