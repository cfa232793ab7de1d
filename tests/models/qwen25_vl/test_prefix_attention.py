"""A decode step's attention (the cache as written before the step, plus the step's own key and
value) equals jax.nn.dot_product_attention over the whole cache with the new slot written in."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ladder_jax.models.qwen25_vl.layers import attention
from ladder_jax.models.qwen25_vl.text import causal_mask, written_prefix_attention


@pytest.mark.parametrize("size, dtype", [(1, jnp.float32), (7, jnp.float32), (8, jnp.float32), (33, jnp.float32),
                                         (33, jnp.bfloat16)])
def test_every_index_matches_whole_cache(size, dtype):
    rng = np.random.default_rng(size)
    b, h, kv, d = 3, 4, 2, 8
    # Heads-major caches full of values everywhere: slots at and after `index` must not be read.
    k_cache, v_cache = (jnp.asarray(rng.standard_normal((b, kv, size, d)), dtype) for _ in range(2))
    k_new, v_new = (jnp.asarray(rng.standard_normal((b, 1, kv, d)), dtype) for _ in range(2))
    q = jnp.asarray(rng.standard_normal((b, 1, h, d)), dtype)
    valid = jnp.asarray(rng.random((b, size)) < 0.7)  # padding anywhere, even everywhere but the own slot
    ladder = jax.jit(lambda i: written_prefix_attention(q, k_new, v_new, k_cache, v_cache,
                                                        causal_mask(i[None], valid), i))

    def whole(i):
        write = lambda c, new: jax.lax.dynamic_update_slice_in_dim(jnp.swapaxes(c, 1, 2), new, i, axis=1)
        return attention(q, write(k_cache, k_new), write(v_cache, v_new), causal_mask(i[None], valid), "xla")

    whole = jax.jit(whole)
    tol = 1e-6 if dtype == jnp.float32 else 2e-2
    for index in range(size):
        i = jnp.asarray(index, jnp.int32)
        got, want = ladder(i), whole(i)
        assert got.dtype == want.dtype and got.shape == want.shape == (b, 1, h, d)
        np.testing.assert_allclose(np.asarray(got, np.float32), np.asarray(want, np.float32), atol=tol, rtol=tol)
