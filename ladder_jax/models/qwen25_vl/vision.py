"""The Qwen2.5-VL vision tower: patch embedding, 2-D rotary ViT blocks with windowed / full
attention, and the 2x2 patch merger.

transformers permutes patches into window order and runs attention per window with cu_seqlens,
then un-permutes after the merger. Attention inside a segment does not depend on token order, and
the permutation moves whole merge blocks, so here patches stay in the processor's order and
windows / frames become attention masks from per-patch segment ids. Same maths, static shapes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from ladder_jax.models.qwen25_vl import rope
from ladder_jax.models.qwen25_vl.config import VisionConfig
from ladder_jax.models.qwen25_vl.layers import Linear, RMSNorm, SwiGLU, apply_rotary, attention, param, scan_layers, stack_layers


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

    def __call__(self, x, cos, sin, segments, implementation):
        """segments (N,): patches attend only to patches of the same segment (frame or window)."""
        n, d = x.shape
        q, k, v = jnp.moveaxis(self.qkv(self.norm1(x)).reshape(n, 3, self.num_heads, -1), 1, 0)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if implementation == "splash":
            out = attention(q[None], k[None], v[None], None, implementation, segments=segments[None])[0]
        else:
            mask = segments[:, None] == segments[None, :]
            out = attention(q[None], k[None], v[None], mask[None, None], implementation)[0]
        x = x + self.proj(out.reshape(n, d))
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
        x = self.ln_q(x).reshape(-1, self.wide)
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
        """pixel_values (N, patch_dim) with N a multiple of merge_unit; grid_thw (K, 3), zero rows = padding.

        Returns (N / merge_unit, out_hidden_size) merged features in the patches' order.
        """
        cfg = self.cfg
        n = pixel_values.shape[0]
        hpos, wpos, frame, window = rope.vision_patch_layout(
            grid_thw, n, cfg.spatial_merge_size, cfg.window_merged)
        cos, sin = rope.vision_cos_sin(hpos, wpos, cfg.head_dim, cfg.rope_theta)
        # Segment ids: a frame for full-attention blocks, a window of a frame for the others.
        window_segment = jnp.where(frame >= 0, frame * n + window, -1)
        is_full = jnp.isin(jnp.arange(cfg.depth), jnp.asarray(cfg.fullatt_block_indexes, jnp.int32))

        x = jnp.dot(pixel_values.astype(self.dtype), self.patch_embed[...].astype(self.dtype))

        def body(block, h, full):
            return block(h, cos, sin, jnp.where(full, frame, window_segment), self.attention_impl), None

        x, _ = scan_layers(self.blocks, body, x, is_full, remat=self.remat)
        return self.merger(x)
