"""The Qwen2 text decoder with M-RoPE, and its dense KV cache.

One attention path serves training, prefill and decode: new keys/values are written into a
(per-layer) cache at `index`, and queries attend to every written slot that is causal for them and
not padding. Training passes no cache and attends to the fresh keys directly.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from ladder_jax.models.qwen25_vl.config import TextConfig
from ladder_jax.models.qwen25_vl.layers import Linear, RMSNorm, SwiGLU, apply_rotary, attention, scan_layers, stack_layers


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class KVCache:
    """k, v: (layers, B, S, kv_heads, head_dim); mask: (B, S) slots holding a real token;
    index: next slot to write (same for every row: prompts are left-padded to one length);
    next_position: (B,) the M-RoPE position of the next token of each row."""

    k: jax.Array
    v: jax.Array
    mask: jax.Array
    index: jax.Array
    next_position: jax.Array

    @classmethod
    def empty(cls, cfg: TextConfig, batch: int, size: int, dtype) -> "KVCache":
        shape = (cfg.num_hidden_layers, batch, size, cfg.num_key_value_heads, cfg.head_dim)
        return cls(k=jnp.zeros(shape, dtype), v=jnp.zeros(shape, dtype), mask=jnp.zeros((batch, size), bool),
                   index=jnp.zeros((), jnp.int32), next_position=jnp.zeros((batch,), jnp.int32))


class DecoderLayer(nnx.Module):
    def __init__(self, cfg: TextConfig, *, dtype, param_dtype, rngs):
        d, hd = cfg.hidden_size, cfg.head_dim
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.input_layernorm = RMSNorm(d, cfg.rms_norm_eps, param_dtype=param_dtype, rngs=rngs)
        self.post_attention_layernorm = RMSNorm(d, cfg.rms_norm_eps, param_dtype=param_dtype, rngs=rngs)
        self.q_proj = Linear(d, cfg.num_attention_heads * hd, ("embed", "heads"), bias=True, **kw)
        self.k_proj = Linear(d, cfg.num_key_value_heads * hd, ("embed", "kv_heads"), bias=True, **kw)
        self.v_proj = Linear(d, cfg.num_key_value_heads * hd, ("embed", "kv_heads"), bias=True, **kw)
        self.o_proj = Linear(cfg.num_attention_heads * hd, d, ("heads", "embed"), bias=False, **kw)
        self.mlp = SwiGLU(d, cfg.intermediate_size, bias=False, **kw)
        self.head_dim = hd

    def __call__(self, x, cos, sin, mask, kv, index, implementation, segments=None):
        """x (B, T, D). kv None: attend to this call's keys; else (k, v) caches written at `index`.
        `segments` (B, T) (the attention mask) lets a splash kernel replace the dense mask."""
        b, t, _ = x.shape
        h = self.input_layernorm(x)
        q = apply_rotary(self.q_proj(h).reshape(b, t, -1, self.head_dim), cos, sin)
        k = apply_rotary(self.k_proj(h).reshape(b, t, -1, self.head_dim), cos, sin)
        v = self.v_proj(h).reshape(b, t, -1, self.head_dim)
        if kv is not None:
            k = jax.lax.dynamic_update_slice_in_dim(kv[0], k.astype(kv[0].dtype), index, axis=1)
            v = jax.lax.dynamic_update_slice_in_dim(kv[1], v.astype(kv[1].dtype), index, axis=1)
        if kv is not None and t == 1:
            out = written_prefix_attention(q, k.astype(q.dtype), v.astype(q.dtype), mask, index, implementation)
        else:
            out = attention(q, k.astype(q.dtype), v.astype(q.dtype), mask, implementation,
                            segments=segments if kv is None else None, causal=True)
        x = x + self.o_proj(out.reshape(b, t, -1))
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, (k, v)


class TextDecoder(nnx.Module):
    def __init__(self, cfg: TextConfig, *, dtype, param_dtype, attention_impl: str, remat: str, rngs):
        make = lambda i: DecoderLayer(cfg, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.layers = stack_layers(make, cfg.num_hidden_layers)
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, param_dtype=param_dtype, rngs=rngs)
        self.attention_impl, self.remat = attention_impl, remat

    def __call__(self, x, cos, sin, mask, cache: KVCache | None = None, segments=None):
        """Returns normed hidden states and the updated (k, v) caches (None without a cache)."""
        impl = self.attention_impl
        if cache is None:
            body = lambda layer, h, _: (layer(h, cos, sin, mask, None, None, impl, segments)[0], None)
            x, _ = scan_layers(self.layers, body, x, None, remat=self.remat)
            return self.norm(x), None

        def body(layer, h, kv):
            return layer(h, cos, sin, mask, kv, cache.index, impl)

        x, (k, v) = scan_layers(self.layers, body, x, (cache.k, cache.v), remat=self.remat)
        return self.norm(x), (k, v)


# A decode step attends over the smallest of these fractions of the cache that holds every written
# slot, so early steps of a long completion do not read the empty rest of the cache.
PREFIX_FRACTIONS = (8, 4, 2)


def written_prefix_attention(q, k, v, mask, index, implementation):
    """One query per row at slot `index`: attention over cache slots [0, L) only, L the smallest of
    S / PREFIX_FRACTIONS (rounded up) and S that exceeds `index` (a `lax.switch`, static shapes).
    Exact: slots >= L are after `index`, so the causal mask already hides them."""
    size = k.shape[1]
    lengths = sorted({-(-size // f) for f in PREFIX_FRACTIONS if -(-size // f) < size}) + [size]

    def over(length):
        return lambda q, k, v, mask: attention(q, k[:, :length], v[:, :length], mask[..., :length], implementation)

    if len(lengths) == 1:
        return over(size)(q, k, v, mask)
    rung = jnp.sum(index >= jnp.asarray(lengths[:-1], jnp.int32))
    return jax.lax.switch(rung, [over(n) for n in lengths], q, k, v, mask)


def causal_mask(query_slots, key_valid):
    """query_slots (T,) absolute slots of the queries; key_valid (B, S). Returns (B, 1, T, S).

    A query always sees its own slot, so padding rows never softmax over nothing."""
    key_slots = jnp.arange(key_valid.shape[1])
    causal = key_slots[None, :] <= query_slots[:, None]
    own = key_slots[None, :] == query_slots[:, None]
    return ((causal[None] & key_valid[:, None, :]) | own[None])[:, None]
