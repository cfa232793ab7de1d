"""The `config.json` an export writes: transformers 5's nested form plus the keys of the published
Qwen2.5-VL configs (SPEC.md section 2b), so that transformers 4.5x and 5.x both load it.

The published configs (transformers 4.49 era) are flat: the text model's keys sit at the top level
with `rope_scaling = {"type": "mrope", "mrope_section": [...]}` and `rope_theta`, and
`torch_dtype` names the weights' dtype. transformers 4.5x reads `text_config` when present (and
needs `rope_scaling` with `mrope_section` there: without it the forward pass fails), transformers
5 reads `text_config.rope_parameters`. Writing all of them, with the same values, serves every
version; `config.from_hf_dict` reads any of these layouts back.
"""

from __future__ import annotations

from typing import Any

from ladder_jax.models.qwen25_vl import config as config_lib

# Text keys the published configs carry at the top level (beside vision_config).
_FLAT_TEXT_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                   "num_key_value_heads", "hidden_act", "rms_norm_eps", "max_position_embeddings",
                   "use_sliding_window", "sliding_window", "attention_dropout")


def exported_config(cfg: config_lib.ModelConfig, dtype: str) -> dict[str, Any]:
    """config.json of an export of `cfg` whose tensors are stored in `dtype`."""
    hf = config_lib.to_hf_dict(cfg)
    text, vision = hf["text_config"], hf["vision_config"]
    t = cfg.text
    rope_scaling = {"type": "mrope", "rope_type": "default", "mrope_section": list(t.mrope_section)}
    text.update(rope_theta=t.rope_theta, rope_scaling=dict(rope_scaling), max_window_layers=t.num_hidden_layers,
                initializer_range=0.02, use_cache=True, dtype=dtype, torch_dtype=dtype)
    vision.update(in_chans=cfg.vision.in_channels, spatial_patch_size=cfg.vision.patch_size,
                  initializer_range=0.02)
    flat = {key: text[key] for key in _FLAT_TEXT_KEYS}
    flat.update(rope_theta=t.rope_theta, rope_scaling=dict(rope_scaling), max_window_layers=t.num_hidden_layers,
                initializer_range=0.02, use_cache=True)
    return {**hf, **flat, "dtype": dtype, "torch_dtype": dtype}

