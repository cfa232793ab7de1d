"""xla_attention (heads-major, hand-written backward) equals jax.nn.dot_product_attention's XLA path:
values and the gradients of q, k and v, with grouped heads, per-head and shared masks, padding
rows that see no key at all, no mask, and bfloat16."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ladder_jax.models.qwen25_vl.xla_attention import xla_attention


def _case(seed, b, t, s, n, kv, mask_heads, dtype=jnp.float32):
    rng = np.random.default_rng(seed)
    q = jnp.asarray(rng.standard_normal((b, t, n, 8)), dtype)
    k = jnp.asarray(rng.standard_normal((b, s, kv, 8)), dtype)
    v = jnp.asarray(rng.standard_normal((b, s, kv, 8)), dtype)
    mask = rng.random((b, mask_heads, t, s)) < 0.6
    mask[0, :, 1] = False  # a query that sees no key (padding rows do)
    w = jnp.asarray(rng.standard_normal((b, t, n, 8)), jnp.float32)
    return q, k, v, jnp.asarray(mask), w


def _grads(fn, q, k, v, w):
    loss = lambda q, k, v: jnp.sum(fn(q, k, v).astype(jnp.float32) * w)
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))(q, k, v)


@pytest.mark.parametrize("b,t,s,n,kv,mask_heads", [(2, 5, 7, 4, 2, 1), (1, 6, 6, 6, 3, 6), (3, 4, 9, 2, 2, 1),
                                                    (2, 3, 3, 8, 1, 1)])
def test_values_and_gradients_equal_jax(b, t, s, n, kv, mask_heads):
    q, k, v, mask, w = _case(b * 100 + t, b, t, s, n, kv, mask_heads)
    ours = _grads(lambda q, k, v: xla_attention(q, k, v, mask), q, k, v, w)
    ref = _grads(lambda q, k, v: jax.nn.dot_product_attention(q, k, v, mask=mask), q, k, v, w)
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-5, atol=1e-5)
    for a, r in zip(ours[1], ref[1]):
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-5)


def test_no_mask_and_bfloat16():
    q, k, v, _, w = _case(7, 2, 5, 5, 4, 2, 1)
    ours = _grads(lambda q, k, v: xla_attention(q, k, v), q, k, v, w)
    ref = _grads(lambda q, k, v: jax.nn.dot_product_attention(q, k, v), q, k, v, w)
    for a, r in zip(ours[1], ref[1]):
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-5)
    q, k, v, mask, w = _case(8, 2, 5, 6, 4, 2, 1, jnp.bfloat16)
    ours = _grads(lambda q, k, v: xla_attention(q, k, v, mask), q, k, v, w)
    ref = _grads(lambda q, k, v: jax.nn.dot_product_attention(q, k, v, mask=mask), q, k, v, w)
    assert all(a.dtype == jnp.bfloat16 for a in ours[1])
    np.testing.assert_allclose(ours[0], ref[0], rtol=2e-2)
    for a, r in zip(ours[1], ref[1]):
        np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(r, np.float32), rtol=5e-2, atol=5e-2)


def test_backward_transposes_nothing_of_size_t_by_s():
    """The point of the layout: no op in the compiled gradient transposes a (T, S)-sized array
    (jax.nn.dot_product_attention's gradient has seven here)."""
    q, k, v, mask, w = _case(3, 2, 64, 48, 4, 2, 1)
    hlo = jax.jit(jax.grad(lambda q, k, v: jnp.sum(xla_attention(q, k, v, mask) * w), argnums=(0, 1, 2))).lower(
        q, k, v).compile().as_text()
    shapes = [set(dims.split(",")) for dims in re.findall(r"\[([\d,]+)\]\{[\d,]*\} transpose\(", hlo)]
    assert shapes and not [dims for dims in shapes if {"64", "48"} <= dims]
