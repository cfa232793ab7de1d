"""Model FLOPs of Qwen2.5-VL: each multiply-add 2 FLOPs, counted on the padded shapes computed.

  forward, per text token attending to C positions:   2·N_text + 4·n_layers·(heads·head_dim)·C
      N_text = n_layers·(d·(h + 2·kv)·hd + h·hd·d + 3·d·ff) + d·V   (projections, SwiGLU, LM head)
      4·n_layers·h·hd·C: scores q·kᵀ and weights·v over C keys (dense: a full sequence's C is its L)
  forward, per patch:   2·N_vis + 4·Σ_blocks d_v·S_b
      N_vis = patch_dim·d_v + depth·(4·d_v² + 3·d_v·ff_v) + (16·d_v² + 4·d_v·out)/4   (merger per patch)
      S_b = attended patches: the window (window_merged²·merge_unit) or all P for full blocks
  training = 3 × forward (backward = 2 × forward), without rematerialisation.

Biases, norms, rotary and softmax are left out (well under 1% at 3B). XLA's own cost analysis
counts a scanned layer's body once, so it cannot stand in for this formula.
"""

from __future__ import annotations

from ladder_jax.models.qwen25_vl.config import ModelConfig


def text_params(cfg: ModelConfig) -> int:
    t = cfg.text
    h, kv, hd, d = t.num_attention_heads, t.num_key_value_heads, t.head_dim, t.hidden_size
    layer = d * (h + 2 * kv) * hd + h * hd * d + 3 * d * t.intermediate_size
    return t.num_hidden_layers * layer + d * t.vocab_size


def vision_params_per_patch(cfg: ModelConfig) -> float:
    v = cfg.vision
    d, m = v.hidden_size, v.merge_unit
    blocks = v.depth * (4 * d * d + 3 * d * v.intermediate_size)
    merger = (m * d) ** 2 + m * d * v.out_hidden_size
    return v.patch_dim * d + blocks + merger / m


def text_forward(cfg: ModelConfig, tokens: int, context: int) -> float:
    """`tokens` text positions, each attending to `context` keys."""
    t = cfg.text
    return float(tokens * (2 * text_params(cfg) + 4 * t.num_hidden_layers * t.num_attention_heads * t.head_dim * context))


def vision_forward(cfg: ModelConfig, rows: int, patches: int) -> float:
    """`rows` samples of `patches` patches each (images and videos together)."""
    v = cfg.vision
    window = min(patches, v.window_merged ** 2 * v.merge_unit)
    spans = sum(patches if i in v.fullatt_block_indexes else window for i in range(v.depth))
    return float(rows * patches * (2 * vision_params_per_patch(cfg) + 4 * v.hidden_size * spans))


def forward(cfg: ModelConfig, rows: int, length: int, patches: int) -> float:
    """One forward pass over a (rows, length) token array and (rows, patches) pixels."""
    return text_forward(cfg, rows * length, length) + vision_forward(cfg, rows, patches)


def train(cfg: ModelConfig, rows: int, length: int, patches: int) -> float:
    """One training step (forward and backward) on those shapes."""
    return 3 * forward(cfg, rows, length, patches)


def decode(cfg: ModelConfig, rows: int, new_tokens: int, cache: int) -> float:
    """`new_tokens` decode steps for `rows` sequences, each step attending over the whole padded
    `cache` (what the sampler computes)."""
    return text_forward(cfg, rows * new_tokens, cache)
