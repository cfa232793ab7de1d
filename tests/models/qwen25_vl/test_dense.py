"""layers.dense: its hand-written backward (the kernel gradient through a gathered transpose on one
CPU device) equals autodiff of the plain dot, for leading axes of any rank and ragged sizes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ladder_jax.models.qwen25_vl.layers import dense
from ladder_jax.plan.run import tpu_devices


@pytest.mark.parametrize("lead", [(5,), (3, 7), (2, 1, 9)])
def test_dense_gradients_equal_plain_dot(lead):
    rng = np.random.default_rng(len(lead))
    x = jnp.asarray(rng.standard_normal((*lead, 6)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((6, 11)), jnp.float32)
    t = jnp.asarray(rng.standard_normal((*lead, 11)), jnp.float32)
    loss = lambda f: lambda x, w: jnp.sum(jnp.sin(f(x, w)) * t)
    ours = jax.jit(jax.grad(loss(dense), argnums=(0, 1)))(x, w)
    plain = jax.jit(jax.grad(loss(jnp.dot), argnums=(0, 1)))(x, w)
    np.testing.assert_allclose(jax.jit(dense)(x, w), x @ w, rtol=1e-6, atol=1e-6)
    for a, b in zip(ours, plain):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_dense_gathers_on_one_device_only():
    """A gather of a batch-sharded operand would all-gather it: under a mesh of several devices, or
    of accelerators, the kernel gradient is the plain dot, and the same numbers."""
    x = jnp.asarray(np.random.default_rng(0).standard_normal((8, 5, 6)), jnp.float32)
    w = jnp.ones((6, 3))
    grad = jax.jit(jax.grad(lambda w, x: jnp.sum(dense(x, w) ** 2)))
    assert "gather" in grad.lower(w, x).as_text()
    with jax.sharding.use_abstract_mesh(jax.make_mesh((1,), ("data",)).abstract_mesh):
        assert "gather" in grad.lower(w, x).as_text()
    tpu = tpu_devices("v5e:2x2")[:1]
    with jax.sharding.use_abstract_mesh(jax.sharding.Mesh(tpu, ("data",)).abstract_mesh):
        assert "gather" not in grad.lower(w, x).as_text()  # a plan for one TPU chip, traced here
    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    if mesh.size > 1:
        with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
            assert "gather" not in grad.lower(w, x).as_text()
        with jax.set_mesh(mesh):
            np.testing.assert_allclose(grad(w, x), jax.jit(jax.grad(lambda w, x: jnp.sum((x @ w) ** 2)))(w, x), rtol=1e-5)
