"""Masked grouped-query attention in plain XLA ops, heads-major, with a hand-written backward pass.

Same numbers as `jax.nn.dot_product_attention`'s XLA path: float32 logits scaled by 1/sqrt(H),
masked positions set to its large negative (a row with no key left averages all values, as there),
float32 softmax, probabilities cast to the values' dtype. What differs is the layout of the work:

- every dot is batched over (batch, kv head) with the group's queries stacked beside them, and
  contracts the minor axis of its left operand, the only form XLA:CPU's dot library takes without
  having a fusion write an operand transposed (strided writes, ~20 ns a value: under autodiff the
  (heads, T, S) probabilities and their gradient were transposed that way in every layer);
- the backward pass recomputes the probabilities from q, k and the saved row max and sum, once as
  (T, S) for dq and once as (S, T) for dk and dv, from two more (T x S x H) dots instead of
  transposing them; nothing of size T x S is saved.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# jax.nn.dot_product_attention's masked logit (its _get_large_negative for float32).
MASKED = float(-0.7 * np.finfo(np.float32).max)


def _heads_major(q, k, v):
    """q (B, T, N, H) -> (B, K, G, T, H); k, v (B, S, K, H) -> (B, K, S, H)."""
    b, t, n, h = q.shape
    kv = k.shape[2]
    qh = q.reshape(b, t, kv, n // kv, h).transpose(0, 2, 3, 1, 4)
    return qh, k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)


def _grouped_mask(mask, kv: int):
    """bool broadcastable to (B, N, T, S) -> broadcastable to (B, K, G, T, S)."""
    b, n, t, s = mask.shape
    return mask.reshape(b, kv, n // kv, t, s) if n > 1 else mask[:, :, None]


def _logits(qh, kh, mask, transposed: bool = False):
    """Masked float32 logits (B, K, G, T, S) under `mask` (broadcastable to that), or with
    `transposed` their transpose (B, K, S, G, T) under the mask in that orientation."""
    scale = 1.0 / np.sqrt(qh.shape[-1])
    if transposed:
        raw = jnp.einsum("bksh,bkgth->bksgt", kh, qh, preferred_element_type=jnp.float32) * scale
    else:
        raw = jnp.einsum("bkgth,bksh->bkgts", qh, kh, preferred_element_type=jnp.float32) * scale
    return jnp.where(mask, raw, MASKED)


def _forward(q, k, v, mask):
    """The output (B, T, N, H), and for the backward pass the output heads-major and the softmax's
    row max and sum of exp(logit - max), each (B, K, G, T): kept apart, as jax.nn.softmax computes,
    since a row with every key masked has max -2.4e38, to which log(S) would add nothing."""
    qh, kh, vh = _heads_major(q, k, v)
    gmask = _grouped_mask(mask, kh.shape[1])
    logits = _logits(qh, kh, gmask)
    top = jnp.max(logits, axis=-1)
    unnormed = jnp.exp(logits - top[..., None])
    total = jnp.sum(unnormed, axis=-1)
    probs = (unnormed / total[..., None]).astype(v.dtype)
    out = jnp.einsum("bkgts,bksh->bkgth", probs, vh, preferred_element_type=jnp.float32).astype(v.dtype)
    b, kv, g, t, h = out.shape
    return out.transpose(0, 3, 1, 2, 4).reshape(b, t, kv * g, h), (out, top, total)


@jax.custom_vjp
def _attention(q, k, v, mask):
    return _forward(q, k, v, mask)[0]


def _attention_fwd(q, k, v, mask):
    out, stats = _forward(q, k, v, mask)
    return out, (q, k, v, mask, stats)


def _attention_bwd(res, d_out):
    q, k, v, mask, (out, top, total) = res
    qh, kh, vh = _heads_major(q, k, v)
    b, kv, g, t, h = qh.shape
    gmask = _grouped_mask(mask, kv)
    scale = 1.0 / np.sqrt(h)
    do = d_out.reshape(b, t, kv, g, h).transpose(0, 2, 3, 1, 4)  # (B, K, G, T, H)
    # (T, S) orientation: dq = ds k.
    p = jnp.exp(_logits(qh, kh, gmask) - top[..., None]) / total[..., None]
    dp = jnp.einsum("bkgth,bksh->bkgts", do, vh, preferred_element_type=jnp.float32)
    # The softmax's sum over keys of p * dp, as sum over h of d_out * out (flash attention's
    # identity): a reduction over H instead of S (XLA:CPU's reduction over S took longer than the dots).
    row = jnp.sum(do.astype(jnp.float32) * out.astype(jnp.float32), axis=-1)  # (B, K, G, T)
    ds = jnp.where(gmask, p * (dp - row[..., None]), 0.0) * scale
    dq = jnp.einsum("bkgts,bksh->bkgth", ds.astype(q.dtype), kh, preferred_element_type=jnp.float32)
    # (S, T) orientation: dk = dsᵀ q, dv = pᵀ do.
    tmask = jnp.moveaxis(gmask, -1, 2)  # (B, K, S, G, T)
    pt = jnp.exp(_logits(qh, kh, tmask, transposed=True) - top[:, :, None]) / total[:, :, None]
    dpt = jnp.einsum("bksh,bkgth->bksgt", vh, do, preferred_element_type=jnp.float32)
    dst = jnp.where(tmask, pt * (dpt - row[:, :, None]), 0.0) * scale
    dk = jnp.einsum("bksgt,bkgth->bksh", dst.astype(q.dtype), qh, preferred_element_type=jnp.float32)
    dv = jnp.einsum("bksgt,bkgth->bksh", pt.astype(v.dtype), do, preferred_element_type=jnp.float32)
    dq = dq.transpose(0, 3, 1, 2, 4).reshape(q.shape).astype(q.dtype)
    dk, dv = (a.transpose(0, 2, 1, 3).astype(k.dtype) for a in (dk, dv))
    return dq, dk, dv, None


_attention.defvjp(_attention_fwd, _attention_bwd)


def xla_attention(q, k, v, mask=None):
    """q (B, T, N, H); k, v (B, S, K, H) with K dividing N (head i reads kv head i // (N / K));
    mask bool (B or 1, 1 or N, T, S), or None. Returns (B, T, N, H) in q's dtype."""
    b, t, _, _ = q.shape
    s = k.shape[1]
    mask = jnp.ones((b, 1, t, s), bool) if mask is None else jnp.broadcast_to(mask, (b, mask.shape[1], t, s))
    return _attention(q, k, v, mask)
