"""Parameterised building blocks shared by the vision tower and the text decoder.

Every parameter is an `nnx.Param` whose `axes` metadata names its logical axes; the one
rules table in `ladder_jax.parallel.sharding` turns those names into mesh shardings.
Kernels are stored (in, out), the transpose of torch's Linear.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from ladder_jax.models.qwen25_vl.xla_attention import xla_attention
from ladder_jax.parallel.sharding import constrain_batch


def param(rngs: nnx.Rngs, shape, axes, dtype, init: str = "normal", scale: float = 0.02) -> nnx.Param:
    if init == "ones":
        value = jnp.ones(shape, dtype)
    elif init == "zeros":
        value = jnp.zeros(shape, dtype)
    else:
        value = (scale * jax.random.normal(rngs.params(), shape)).astype(dtype)
    return nnx.Param(value, axes=tuple(axes))


def _one_cpu_device() -> bool:
    """Whether the computation being traced runs on one CPU device: no mesh and the CPU backend, or
    a one-device mesh of CPUs (a plan compiled on this CPU for a TPU topology has TPU devices)."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty:
        return jax.default_backend() == "cpu"
    device = getattr(mesh, "abstract_device", None)
    return mesh.size == 1 and (device.platform if device is not None else jax.default_backend()) == "cpu"


def _weight_grad(x, g):
    """xᵀ g over all leading axes: the gradient of a dense kernel. XLA:CPU's dots want their lhs
    contracting its last axis, so for xᵀ g it has whatever fusion produces one operand write it
    transposed: a loop writing with strides, ~20 ns a value (the demo's SwiGLU gate gradient,
    384 x 2048, took 18.8 ms that way, longer than its dot). On a single CPU device xᵀ is written
    by a gather instead, which XLA cannot fold back into the dot (~1 ns a value). Elsewhere the
    plain dot: accelerators lay transposes out well, and on a sharded mesh a gather of a
    batch-sharded operand would all-gather it."""
    x2, g2 = x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])
    if not _one_cpu_device():
        return jnp.dot(x2.T, g2, preferred_element_type=jnp.float32)
    rows, cols = x2.shape
    index = jnp.arange(cols, dtype=jnp.int32)[:, None] + jnp.arange(rows, dtype=jnp.int32)[None, :] * cols
    return jnp.dot(x2.reshape(-1)[index], g2, preferred_element_type=jnp.float32)


@jax.custom_vjp
def dense(x, w):
    """x (..., d_in) @ w (d_in, d_out); its kernel gradient by `_weight_grad`."""
    return jnp.dot(x, w, preferred_element_type=jnp.float32).astype(x.dtype)


def _dense_fwd(x, w):
    return dense(x, w), (x, w)


def _dense_bwd(res, g):
    x, w = res
    dx = jax.lax.dot_general(g, w, (((g.ndim - 1,), (1,)), ((), ())), preferred_element_type=jnp.float32)
    return dx.astype(x.dtype), _weight_grad(x, g).astype(w.dtype)


dense.defvjp(_dense_fwd, _dense_bwd)


class Linear(nnx.Module):
    def __init__(self, d_in: int, d_out: int, axes: tuple[str, str], *, bias: bool, dtype, param_dtype, rngs):
        self.kernel = param(rngs, (d_in, d_out), axes, param_dtype)
        self.bias = param(rngs, (d_out,), axes[1:], param_dtype, init="zeros") if bias else None
        self.dtype = dtype

    def __call__(self, x):
        y = dense(x.astype(self.dtype), self.kernel[...].astype(self.dtype))
        return y + self.bias[...].astype(self.dtype) if self.bias is not None else y


class RMSNorm(nnx.Module):
    """x / rms(x) computed in float32, cast back, then scaled (the transformers order)."""

    def __init__(self, dim: int, eps: float, *, param_dtype, rngs):
        self.weight = param(rngs, (dim,), ("norm",), param_dtype, init="ones")
        self.eps = eps

    def __call__(self, x):
        x32 = x.astype(jnp.float32)
        x32 = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        return self.weight[...].astype(x.dtype) * x32.astype(x.dtype)


class SwiGLU(nnx.Module):
    def __init__(self, dim: int, hidden: int, *, bias: bool, dtype, param_dtype, rngs):
        kw = dict(bias=bias, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.gate_proj = Linear(dim, hidden, ("embed", "mlp"), **kw)
        self.up_proj = Linear(dim, hidden, ("embed", "mlp"), **kw)
        self.down_proj = Linear(hidden, dim, ("mlp", "embed"), **kw)

    def __call__(self, x):
        return self.down_proj(jax.nn.silu(self.gate_proj(x)) * self.up_proj(x))


def rotate_half(x):
    x1, x2 = jnp.split(x, 2, axis=-1)
    return jnp.concatenate([-x2, x1], axis=-1)


def apply_rotary(x, cos, sin):
    """x: (..., heads, head_dim); cos/sin: (..., head_dim), broadcast over heads; float32 maths."""
    x32 = x.astype(jnp.float32)
    out = x32 * cos[..., None, :] + rotate_half(x32) * sin[..., None, :]
    return out.astype(x.dtype)


def attention(q, k, v, mask, implementation: str, segments=None, causal: bool = False):
    """q: (B, T, N, H); k, v: (B, S, K, H) with K dividing N; mask: bool broadcastable to (B, N, T, S).

    With implementation "splash" and `segments` (B, T) given (full-sequence passes), the Pallas
    kernel takes segment ids (+ causality) instead of the dense mask; cache passes use XLA."""
    if implementation == "splash" and segments is not None:
        from ladder_jax.models.qwen25_vl.splash import splash_attention
        return splash_attention(q, k, v, segments, causal)
    if implementation == "cudnn":
        return jax.nn.dot_product_attention(q, k, v, mask=mask, implementation="cudnn")
    return xla_attention(q, k, v, mask)


def recomputed_attention(fn, implementation: str):
    """`fn(q, k, v)` recomputed in the backward pass when it is XLA's attention, so a layer keeps
    only q, k, v for the backward. `xla_attention` saves no probabilities itself, but a `lax.cond`
    over attention variants (the vision tower's windows or frames) keeps every branch's residuals,
    the chunked branch's gathered key spans among them. The splash and cuDNN kernels: unchanged."""
    return jax.checkpoint(fn, prevent_cse=False) if implementation == "xla" else fn


def stack_layers(make, n: int):
    """Builds `n` layers with `make(i)` and stacks their parameters on a leading `layers` axis.

    The result is one module whose arrays carry the extra axis; `scan_layers` slices it.
    """
    layers = [make(i) for i in range(n)]
    graphdef, _ = nnx.split(layers[0])
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *[nnx.split(layer)[1] for layer in layers])
    relabel = lambda v: v.replace(axes=("layers",) + tuple(v.get_metadata()["axes"]))
    stacked = jax.tree.map(relabel, stacked, is_leaf=lambda x: isinstance(x, nnx.Variable))
    return nnx.merge(graphdef, stacked)


_REMAT = {
    "none": None,
    "full": jax.checkpoint_policies.nothing_saveable,
    "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


def scan_layers(stacked: nnx.Module, body, carry, xs, remat: str = "none"):
    """lax.scan of `body(layer, carry, x) -> (carry, y)` over the stacked layers (compiled once)."""
    graphdef, state = nnx.split(stacked)

    def step(c, inp):
        layer_state, x = inp
        return body(nnx.merge(graphdef, layer_state), jax.tree.map(constrain_batch, c), x)

    if _REMAT[remat] is not None:
        step = jax.checkpoint(step, policy=_REMAT[remat], prevent_cse=False)
    return jax.lax.scan(step, carry, (state, xs))
