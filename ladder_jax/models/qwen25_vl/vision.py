"""The Qwen2.5-VL vision tower: patch embedding, 2-D rotary ViT blocks with windowed / full
attention, and the 2x2 patch merger.

As in transformers, the blocks run on patches sorted into window order (frame, then window, then
the processor's order), and the merger's input is put back in the processor's order. Windowed
blocks attend within a window, full blocks within a frame (transformers' cu_seqlens), through
`segment_attention`: static shapes, and work linear in the number of windows (and frames), not
quadratic in a sample's patches. The splash option keeps its own kernel over segment ids.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from ladder_jax.models.qwen25_vl import rope
from ladder_jax.models.qwen25_vl.config import VisionConfig
from ladder_jax.models.qwen25_vl.layers import (Linear, RMSNorm, SwiGLU, apply_rotary, attention, dense, param,
                                                recomputed_attention, scan_layers, stack_layers)
from ladder_jax.models.qwen25_vl.segment_attention import segment_attention, span_ladder

# Key spans tried, in chunks: a window (<= one chunk, any alignment) always fits in 3 chunks; a
# frame needs about its own size, or twice that where a chunk straddles two frames.
WINDOW_RUNGS = (1, 2, 3)
FRAME_RUNGS = (1, 2, 4, 8, 16, 32, 64)


class VisionBlock(nnx.Module):
    def __init__(self, cfg: VisionConfig, *, dtype, param_dtype, rngs):
        d = cfg.hidden_size
        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.norm1 = RMSNorm(d, cfg.rms_norm_eps, param_dtype=param_dtype, rngs=rngs)
        self.norm2 = RMSNorm(d, cfg.rms_norm_eps, param_dtype=param_dtype, rngs=rngs)
        self.qkv = Linear(d, 3 * d, ("embed", "qkv"), bias=True, **kw)
        self.proj = Linear(d, d, ("heads", "embed"), bias=True, **kw)
        self.mlp = SwiGLU(d, cfg.intermediate_size, bias=True, **kw)
        self.num_heads = cfg.num_heads

    def __call__(self, x, cos, sin, attend):
        """x (B, N, D); attend(q, k, v) -> (B, N, heads, head_dim) does this block's masking."""
        b, n, d = x.shape
        q, k, v = jnp.moveaxis(self.qkv(self.norm1(x)).reshape(b, n, 3, self.num_heads, -1), 2, 0)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        x = x + self.proj(attend(q, k, v).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


class PatchMerger(nnx.Module):
    def __init__(self, cfg: VisionConfig, *, dtype, param_dtype, rngs):
        wide = cfg.hidden_size * cfg.merge_unit
        kw = dict(bias=True, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.ln_q = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, param_dtype=param_dtype, rngs=rngs)
        self.fc1 = Linear(wide, wide, ("mlp", "mlp2"), **kw)
        self.fc2 = Linear(wide, cfg.out_hidden_size, ("mlp", "embed"), **kw)
        self.wide = wide

    def __call__(self, x):
        """x (..., N, D) -> (..., N / merge_unit, out_hidden_size)."""
        x = self.ln_q(x).reshape(x.shape[:-2] + (-1, self.wide))
        return self.fc2(jax.nn.gelu(self.fc1(x), approximate=False))


class VisionTower(nnx.Module):
    def __init__(self, cfg: VisionConfig, *, dtype, param_dtype, attention_impl: str, remat: str, rngs):
        self.cfg = cfg
        self.patch_embed = param(rngs, (cfg.patch_dim, cfg.hidden_size), ("patch", "embed"), param_dtype)
        make = lambda i: VisionBlock(cfg, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.blocks = stack_layers(make, cfg.depth)
        self.merger = PatchMerger(cfg, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        self.dtype, self.attention_impl, self.remat = dtype, attention_impl, remat

    def __call__(self, pixel_values, grid_thw):
        """pixel_values (B, N, patch_dim) with N a multiple of merge_unit; grid_thw (B, K, 3), zero
        rows = padding (or one sample: (N, patch_dim), (K, 3)).

        Returns (B, N / merge_unit, out_hidden_size) merged features in the patches' order."""
        if pixel_values.ndim == 2:
            return self(pixel_values[None], grid_thw[None])[0]
        cfg = self.cfg
        b, n, _ = pixel_values.shape
        chunk = cfg.window_merged ** 2 * cfg.merge_unit
        padded = -(-n // chunk) * chunk
        frame_chunk = next(c * chunk for c in (4, 2, 1) if padded % (c * chunk) == 0)
        order, hpos, wpos, window_seg, frame_seg = jax.vmap(
            lambda g: rope.vision_window_order(g, n, padded, cfg.spatial_merge_size, cfg.window_merged,
                                               chunk, frame_chunk))(grid_thw.astype(jnp.int32))
        cos, sin = rope.vision_cos_sin(hpos, wpos, cfg.head_dim, cfg.rope_theta)
        is_full = jnp.isin(jnp.arange(cfg.depth), jnp.asarray(cfg.fullatt_block_indexes, jnp.int32))

        x = dense(pixel_values.astype(self.dtype), self.patch_embed[...].astype(self.dtype))
        x = jnp.pad(x, ((0, 0), (0, padded - n), (0, 0)))
        x = jnp.take_along_axis(x, order[..., None], axis=1)
        impl = self.attention_impl
        windows = lambda q, k, v: segment_attention(q, k, v, window_seg, chunk=chunk, implementation=impl,
                                                    spans=span_ladder(padded, chunk, WINDOW_RUNGS))
        frames = lambda q, k, v: segment_attention(q, k, v, frame_seg, chunk=frame_chunk, implementation=impl,
                                                   spans=span_ladder(padded, frame_chunk, FRAME_RUNGS))

        def body(block, h, full):
            if impl == "splash":
                segments = jnp.where(full, frame_seg, window_seg)
                attend = lambda q, k, v: attention(q, k, v, None, impl, segments=segments)
            else:
                attend = recomputed_attention(lambda q, k, v: jax.lax.cond(full, frames, windows, q, k, v), impl)
            return block(h, cos, sin, attend), None

        x, _ = scan_layers(self.blocks, body, x, is_full, remat=self.remat)
        back = jnp.argsort(order, axis=1)[:, :n]
        return self.merger(jnp.take_along_axis(x, back[..., None], axis=1))
