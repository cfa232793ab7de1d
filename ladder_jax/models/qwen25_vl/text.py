"""The Qwen2 text decoder with M-RoPE, and its dense KV cache.

Training passes no cache and attends to the fresh keys directly. Prefill writes the prompt's
keys/values into the (per-layer) cache at `index` and attends to every written slot that is causal
and not padding. A decode step reads the cache as it was (slots before `index`), attends to those
slots and to its own fresh key/value, and returns only the new slot: the caller writes it into the
cache once for all layers, in place, instead of the layer scan rebuilding the whole cache each step.
The cache is stored heads-major, (B, kv_heads, S, head_dim) per layer, the layout the decode step's
two matmuls read without transposing it.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ladder_jax.models.qwen25_vl.config import TextConfig
from ladder_jax.models.qwen25_vl.layers import (Linear, RMSNorm, SwiGLU, apply_rotary, attention, scan_layers,
                                                stack_layers)


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class KVCache:
    """k, v: (layers, B, kv_heads, S, head_dim); mask: (B, S) slots holding a real token;
    index: next slot to write (same for every row: prompts are left-padded to one length);
    next_position: (B,) the M-RoPE position of the next token of each row."""

    k: jax.Array
    v: jax.Array
    mask: jax.Array
    index: jax.Array
    next_position: jax.Array

    @classmethod
    def empty(cls, cfg: TextConfig, batch: int, size: int, dtype) -> "KVCache":
        shape = (cfg.num_hidden_layers, batch, cfg.num_key_value_heads, size, cfg.head_dim)
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
        """x (B, T, D). kv None: attend to this call's keys. Else the layer's caches (B, K, S, H):
        with T > 1 (prefill) this call's keys/values are written at `index` and the written caches
        returned; with T = 1 (decode) the caches are only read and the new (k, v) (B, 1, K, H)
        returned. `segments` (B, T) (the attention mask) lets a splash kernel replace the dense mask."""
        b, t, _ = x.shape
        h = self.input_layernorm(x)
        q = apply_rotary(self.q_proj(h).reshape(b, t, -1, self.head_dim), cos, sin)
        k = apply_rotary(self.k_proj(h).reshape(b, t, -1, self.head_dim), cos, sin)
        v = self.v_proj(h).reshape(b, t, -1, self.head_dim)
        if kv is None:
            out, new = attention(q, k, v, mask, implementation, segments=segments, causal=True), None
        elif t == 1:
            new = (k.astype(kv[0].dtype), v.astype(kv[1].dtype))
            out = written_prefix_attention(q, *new, *kv, mask, index)
        else:
            heads_major = lambda a, c: jnp.swapaxes(a, 1, 2).astype(c.dtype)
            new = tuple(jax.lax.dynamic_update_slice_in_dim(c, heads_major(a, c), index, axis=2) for a, c in zip((k, v), kv))
            slots_major = lambda c: jnp.swapaxes(c, 1, 2).astype(q.dtype)
            out = attention(q, slots_major(new[0]), slots_major(new[1]), mask, implementation, causal=True)
        x = x + self.o_proj(out.reshape(b, t, -1))
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, new


class TextDecoder(nnx.Module):
    def __init__(self, cfg: TextConfig, *, dtype, param_dtype, attention_impl: str, remat: str, rngs):
        make = lambda i: DecoderLayer(cfg, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.layers = stack_layers(make, cfg.num_hidden_layers)
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, param_dtype=param_dtype, rngs=rngs)
        self.attention_impl, self.remat = attention_impl, remat

    def __call__(self, x, cos, sin, mask, cache: KVCache | None = None, segments=None):
        """Returns normed hidden states and the updated (k, v) caches (None without a cache). A
        decode step (T = 1) writes its slot into `cache`'s arrays after the layer scan (in place
        when the caller donates them)."""
        impl = self.attention_impl
        if cache is None:
            body = lambda layer, h, _: (layer(h, cos, sin, mask, None, None, impl, segments)[0], None)
            x, _ = scan_layers(self.layers, body, x, None, remat=self.remat)
            return self.norm(x), None

        def body(layer, h, kv):
            return layer(h, cos, sin, mask, kv, cache.index, impl)

        x, (k, v) = scan_layers(self.layers, body, x, (cache.k, cache.v), remat=self.remat)
        if x.shape[1] == 1:  # (layers, B, 1, K, H) new slots -> written at cache.index
            write = lambda c, new: jax.lax.dynamic_update_slice_in_dim(c, jnp.swapaxes(new, 2, 3), cache.index, axis=3)
            k, v = write(cache.k, k), write(cache.v, v)
        return self.norm(x), (k, v)


# A decode step attends over the smallest of these fractions of the cache that holds every written
# slot, so early steps of a long completion do not read the empty rest of the cache.
PREFIX_FRACTIONS = (8, 4, 2)


def written_prefix_attention(q, k_new, v_new, k_cache, v_cache, mask, index):
    """One query per row at slot `index`: q (B, 1, N, H); its own key/value k_new, v_new (B, 1, K, H);
    the caches (B, K, S, H) as written before this step (slots < index); mask (B, 1, 1, S) the
    causal mask of slot `index`. Attends to cache slots [0, L) that are before `index` and unmasked,
    and to the own key, L the smallest of S / PREFIX_FRACTIONS (rounded up) and S that exceeds
    `index` (a `lax.switch`, static shapes): exact, since slots >= L are after `index`. As
    jax.nn.dot_product_attention: float32 logits and softmax, probabilities in the values' dtype."""
    b, _, n, h = q.shape
    kv_heads, size = k_cache.shape[1], k_cache.shape[2]
    qg = q.reshape(b, kv_heads, n // kv_heads, h)  # head i reads kv head i // (N / K), as repeat_kv
    scale = 1.0 / np.sqrt(h)
    own = jnp.einsum("bkgh,bkh->bkg", qg, k_new[:, 0], preferred_element_type=jnp.float32)[..., None] * scale

    def over(length):
        def attend(qg, k_cache, v_cache, mask):
            kc, vc = k_cache[:, :, :length].astype(q.dtype), v_cache[:, :, :length].astype(q.dtype)
            logits = jnp.einsum("bkgh,bksh->bkgs", qg, kc, preferred_element_type=jnp.float32) * scale
            seen = mask[:, :, :, :length] & (jnp.arange(length) < index)
            logits = jnp.where(seen, logits, LARGE_NEGATIVE)
            top = jnp.maximum(jnp.max(logits, axis=-1, keepdims=True), own)
            p, p_own = jnp.exp(logits - top), jnp.exp(own - top)
            denom = jnp.sum(p, axis=-1, keepdims=True) + p_own
            p, p_own = (p / denom).astype(vc.dtype), (p_own / denom).astype(vc.dtype)
            out = jnp.einsum("bkgs,bksh->bkgh", p, vc) + p_own * v_new[:, 0, :, None, :].astype(vc.dtype)
            return out.reshape(b, 1, n, h).astype(q.dtype)
        return attend

    lengths = sorted({-(-size // f) for f in PREFIX_FRACTIONS if -(-size // f) < size}) + [size]
    if len(lengths) == 1:
        return over(size)(qg, k_cache, v_cache, mask)
    rung = jnp.sum(index >= jnp.asarray(lengths[:-1], jnp.int32))
    return jax.lax.switch(rung, [over(length) for length in lengths], qg, k_cache, v_cache, mask)


# What jax.nn.dot_product_attention puts in masked float32 logits (-0.7 x the largest float32).
LARGE_NEGATIVE = -0.7 * float(np.finfo(np.float32).max)


def causal_mask(query_slots, key_valid):
    """query_slots (T,) absolute slots of the queries; key_valid (B, S). Returns (B, 1, T, S).

    A query always sees its own slot, so padding rows never softmax over nothing."""
    key_slots = jnp.arange(key_valid.shape[1])
    causal = key_slots[None, :] <= query_slots[:, None]
    own = key_slots[None, :] == query_slots[:, None]
    return ((causal[None] & key_valid[:, None, :]) | own[None])[:, None]
