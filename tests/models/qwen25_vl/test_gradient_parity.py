"""Gradients equal transformers' (fp32): the next-token cross-entropy of a padded batch with an
image spanning several windows and a video of several frames, differentiated with respect to every
parameter, in both libraries. The backward pass runs through xla_attention's and layers.dense's
hand-written gradients, the vision tower's recomputed attention and its window-gathered attention;
the forward parity tests cannot see them."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from flax import nnx

from ladder_jax.models.qwen25_vl.api import model_inputs
from ladder_jax.models.qwen25_vl.params import export_tensors
from tests.models.qwen25_vl.reference import batch_inputs, build_sample

LAYOUTS = [[("text", 3), ("image", (12, 20)), ("text", 4), ("video", (4, 12, 8)), ("text", 3)],
           [("text", 5), ("video", (2, 4, 6)), ("text", 6)]]


def test_gradients_match_transformers(tiny_cfg, hf_tiny, ours, rng):
    lengths = [len(build_sample(tiny_cfg, np.random.default_rng(0), p)[0]) for p in LAYOUTS]
    samples = [build_sample(tiny_cfg, rng, p, pad_left=max(lengths) - n) for p, n in zip(LAYOUTS, lengths)]
    inputs = batch_inputs(tiny_cfg, samples)
    ids, valid = inputs["input_ids"], inputs["attention_mask"].astype(bool)
    weight = (valid[:, 1:] & valid[:, :-1]).astype(np.float32)  # next-token pairs inside each row

    hf_tiny.zero_grad(set_to_none=True)
    t = {k: torch.from_numpy(np.asarray(v)) for k, v in inputs.items()}
    logits = hf_tiny(**t).logits.float()
    tok = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), t["input_ids"][:, 1:].long(),
                                            reduction="none")
    (tok * torch.from_numpy(weight)).sum().div(float(weight.sum())).backward()
    want = {name: p.grad.numpy() for name, p in hf_tiny.named_parameters() if p.grad is not None}

    batch = {k: jnp.asarray(v) for k, v in model_inputs(tiny_cfg, inputs).items()}

    def loss(state):
        out = nnx.merge(ours.graphdef, state)(**batch)
        tok = optax.softmax_cross_entropy_with_integer_labels(out[:, :-1], batch["input_ids"][:, 1:])
        return jnp.sum(tok * weight) / weight.sum()

    got = export_tensors(jax.jit(jax.grad(loss))(ours.state), tiny_cfg)  # checkpoint names
    saved_name = lambda n: n.replace("model.language_model.", "model.").replace("model.visual.", "visual.")
    assert {saved_name(n) for n in want} == set(got) and any("visual" in n for n in got)
    for name, g in want.items():
        scale = max(float(np.abs(g).max()), 1e-6)
        assert scale > 1e-6, name  # a real gradient reaches every parameter
        np.testing.assert_allclose(got[saved_name(name)].reshape(g.shape), g, atol=2e-4 * scale, rtol=0, err_msg=name)
