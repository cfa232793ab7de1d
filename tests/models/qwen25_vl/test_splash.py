"""The Pallas splash path (TPU option; interpret mode on CPU) equals the XLA path, values and grads."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ladder_jax.models.qwen25_vl.api import VisionLanguageModel, abstract_model, model_inputs
from ladder_jax.parallel.mesh import make_mesh
from tests.models.qwen25_vl.reference import batch_inputs, build_sample


def _samples(cfg, rng):
    # Sequence and patch counts are multiples of 128, as splash buckets must be.
    a = build_sample(cfg, rng, [("text", 40), ("image", (8, 16)), ("text", 54)])
    b = build_sample(cfg, rng, [("text", 7), ("image", (16, 8)), ("text", 20)], pad_left=128 - 61)
    assert len(a[0]) == len(b[0]) == 128
    return batch_inputs(cfg, [a, b])


def test_splash_matches_xla(ours, tiny_cfg, rng):
    batch = {k: jnp.asarray(v) for k, v in model_inputs(tiny_cfg, _samples(tiny_cfg, rng)).items()}
    splash_graphdef, _ = abstract_model(tiny_cfg.replace(attention="splash"))
    valid = batch["attention_mask"].astype(bool)

    def loss(graphdef, state):
        logits = nnx.merge(graphdef, state)(**batch)
        return jnp.sum(jnp.where(valid[..., None], logits, 0.0) ** 2) / 1e3, logits

    (l_x, logits_x), g_x = jax.jit(jax.value_and_grad(lambda s: loss(ours.graphdef, s), has_aux=True))(ours.state)
    (l_s, logits_s), g_s = jax.jit(jax.value_and_grad(lambda s: loss(splash_graphdef, s), has_aux=True))(ours.state)
    np.testing.assert_allclose(np.asarray(logits_s)[valid], np.asarray(logits_x)[valid], atol=1e-4, rtol=0)
    for gx, gs in zip(jax.tree.leaves(g_x), jax.tree.leaves(g_s)):
        np.testing.assert_allclose(np.asarray(gs), np.asarray(gx), atol=1e-4, rtol=1e-3)


def test_splash_under_a_mesh_runs_in_shard_map(ours, hf_dir, tiny_cfg, rng):
    inputs = _samples(tiny_cfg, rng)
    mesh = make_mesh(data=2, fsdp=1, tensor=2, devices=jax.devices()[:4])  # batch on data, KV heads on tensor
    sharded = VisionLanguageModel.from_pretrained(hf_dir, mesh=mesh, attention="splash")
    valid = inputs["attention_mask"].astype(bool)
    np.testing.assert_allclose(sharded(**inputs)[valid], ours(**inputs)[valid], atol=1e-4, rtol=0)
