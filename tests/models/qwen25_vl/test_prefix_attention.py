"""A decode step's attention over the written prefix of the cache equals attention over all of it."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ladder_jax.models.qwen25_vl.layers import attention
from ladder_jax.models.qwen25_vl.text import causal_mask, written_prefix_attention


@pytest.mark.parametrize("size", [1, 7, 8, 33])
def test_every_index_matches_whole_cache(size):
    rng = np.random.default_rng(size)
    b, h, kv, d = 3, 4, 2, 8
    k, v = (jnp.asarray(rng.standard_normal((b, size, kv, d)), jnp.float32) for _ in range(2))
    q = jnp.asarray(rng.standard_normal((b, 1, h, d)), jnp.float32)
    valid = jnp.asarray(rng.random((b, size)) < 0.7)  # padding anywhere, even everywhere but the own slot
    ladder = jax.jit(lambda i: written_prefix_attention(q, k, v, causal_mask(i[None], valid), i, "xla"))
    whole = jax.jit(lambda i: attention(q, k, v, causal_mask(i[None], valid), "xla"))
    for index in range(size):
        i = jnp.asarray(index, jnp.int32)
        np.testing.assert_allclose(np.asarray(ladder(i)), np.asarray(whole(i)), atol=1e-6)
