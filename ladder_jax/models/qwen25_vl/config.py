"""Qwen2.5-VL configuration: presets (tiny, 3B, 7B) and the mapping to and from HF `config.json`.

HF writes two layouts: the hub's original flat one (text fields at top level, `rope_scaling`
with `mrope_section`) and transformers 5's nested one (`text_config` / `vision_config`,
`rope_parameters`). Both are read; the nested one is written. A field we would silently ignore
but that changes the maths (sliding windows, another rope type or activation) is an error.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterator


class ConfigError(ValueError):
    """A configuration value that this implementation cannot honour, named by its field."""


@dataclasses.dataclass(frozen=True)
class VisionConfig:
    depth: int = 32
    hidden_size: int = 1280
    intermediate_size: int = 3420
    num_heads: int = 16
    out_hidden_size: int = 2048
    patch_size: int = 14
    temporal_patch_size: int = 2
    spatial_merge_size: int = 2
    window_size: int = 112
    fullatt_block_indexes: tuple[int, ...] = (7, 15, 23, 31)
    tokens_per_second: int = 2
    in_channels: int = 3
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def patch_dim(self) -> int:
        return self.in_channels * self.temporal_patch_size * self.patch_size**2

    @property
    def merge_unit(self) -> int:
        return self.spatial_merge_size**2

    @property
    def window_merged(self) -> int:
        """Window side in merged-token units (4 for the public 112-pixel windows)."""
        return self.window_size // self.spatial_merge_size // self.patch_size


@dataclasses.dataclass(frozen=True)
class TextConfig:
    vocab_size: int = 151936
    hidden_size: int = 2048
    intermediate_size: int = 11008
    num_hidden_layers: int = 36
    num_attention_heads: int = 16
    num_key_value_heads: int = 2
    rope_theta: float = 1_000_000.0
    mrope_section: tuple[int, int, int] = (16, 24, 24)
    rms_norm_eps: float = 1e-6
    max_position_embeddings: int = 128000
    tie_word_embeddings: bool = True

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    text: TextConfig = TextConfig()
    vision: VisionConfig = VisionConfig()
    image_token_id: int = 151655
    video_token_id: int = 151656
    vision_start_token_id: int = 151652
    vision_end_token_id: int = 151653
    eos_token_id: int = 151645
    bos_token_id: int | None = 151643
    pad_token_id: int | None = 151643
    # Execution choices: not part of the checkpoint.
    dtype: str = "float32"  # compute dtype
    param_dtype: str = "float32"
    attention: str = "xla"  # "xla" (any backend) | "cudnn" (NVIDIA flash) | "splash" (TPU Pallas)
    remat: str = "none"  # "none" | "full" | "dots"

    def __post_init__(self):
        validate(self)

    def replace(self, **kw) -> "ModelConfig":
        return dataclasses.replace(self, **kw)


_TEXT_SIZES = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
               "num_key_value_heads", "max_position_embeddings")
_VISION_SIZES = ("depth", "hidden_size", "intermediate_size", "num_heads", "out_hidden_size", "patch_size",
                 "temporal_patch_size", "spatial_merge_size", "window_size", "tokens_per_second", "in_channels")
_TOKEN_IDS = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id", "eos_token_id",
              "bos_token_id", "pad_token_id")


def _ranges(cfg: ModelConfig) -> Iterator[tuple[bool, str]]:
    """Each field within its meaning, named: a config.json with `rms_norm_eps: -1` or a zero size would
    otherwise build a model that computes NaNs or nothing, or fail far from the cause. Lazy, so that
    token ids are compared with vocab_size only once it is known to be a number."""
    t, v = cfg.text, cfg.vision

    def is_int(x) -> bool:
        return isinstance(x, int) and not isinstance(x, bool)

    for part, c, fields in (("text", t, _TEXT_SIZES), ("vision", v, _VISION_SIZES)):
        for f in fields:
            x = getattr(c, f)
            yield is_int(x) and x > 0, f"{part}.{f} must be an integer > 0, got {x!r}"
        for f in ("rope_theta", "rms_norm_eps"):
            x = getattr(c, f)
            yield (isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0,
                   f"{part}.{f} must be a finite number > 0, got {x!r}")
    for f in _TOKEN_IDS:
        x = getattr(cfg, f)
        yield ((x is None and f in ("bos_token_id", "pad_token_id")) or (is_int(x) and 0 <= x < t.vocab_size),
               f"{f} must be a token id in [0, text.vocab_size={t.vocab_size}), got {x!r}")
    yield isinstance(t.tie_word_embeddings, bool), f"text.tie_word_embeddings must be true or false, got {t.tie_word_embeddings!r}"
    yield (isinstance(t.mrope_section, tuple) and len(t.mrope_section) == 3
           and all(is_int(s) and s >= 0 for s in t.mrope_section),
           f"text.mrope_section must be three integers >= 0, got {t.mrope_section!r}")
    yield (isinstance(v.fullatt_block_indexes, tuple) and all(is_int(i) for i in v.fullatt_block_indexes),
           f"vision.fullatt_block_indexes must be integers, got {v.fullatt_block_indexes!r}")


def validate(cfg: ModelConfig) -> None:
    for ok, msg in _ranges(cfg):  # first, so that the relations below compare numbers
        if not ok:
            raise ConfigError(msg)
    t, v = cfg.text, cfg.vision
    checks = [
        (t.hidden_size % t.num_attention_heads == 0, "text.hidden_size must divide by num_attention_heads"),
        (t.num_attention_heads % t.num_key_value_heads == 0, "text.num_attention_heads must divide by num_key_value_heads"),
        (2 * sum(t.mrope_section) == t.head_dim, f"text.mrope_section {t.mrope_section} must sum to head_dim/2 = {t.head_dim // 2}"),
        (v.hidden_size % v.num_heads == 0, "vision.hidden_size must divide by num_heads"),
        (v.head_dim % 4 == 0, "vision head_dim must divide by 4 (2-D rotary over h and w)"),
        (v.window_size % (v.spatial_merge_size * v.patch_size) == 0, "vision.window_size must be a multiple of merge*patch"),
        (all(0 <= i < v.depth for i in v.fullatt_block_indexes), "vision.fullatt_block_indexes out of range"),
    ]
    for ok, msg in checks:
        if not ok:
            raise ConfigError(msg)
    check_execution(cfg.dtype, cfg.param_dtype, cfg.remat, cfg.attention)


FLOAT_DTYPES = ("float32", "bfloat16", "float16")


def check_execution(dtype: str, param_dtype: str, remat: str, attention: str) -> None:
    """How the model runs, whatever its weights: compute and parameter dtypes, remat, attention."""
    checks = [
        (dtype in FLOAT_DTYPES, f"dtype must be one of {FLOAT_DTYPES}, got {dtype!r}"),
        (param_dtype in FLOAT_DTYPES, f"param_dtype must be one of {FLOAT_DTYPES}, got {param_dtype!r}"),
        (attention in ("xla", "cudnn", "splash"), f"attention must be xla, cudnn or splash, got {attention!r}"),
        (remat in ("none", "full", "dots"), f"remat must be none, full or dots, got {remat!r}"),
    ]
    for ok, msg in checks:
        if not ok:
            raise ConfigError(msg)


def preset(name: str, **overrides) -> ModelConfig:
    """`tiny` (tests, a few hundred K params), `demo` (the CPU demo, 1.3M params with the demo
    vocabulary; in the demo's minutes it learns the answers' format and the toy world's answer priors
    from the words, not yet from the pictures: its answers score the same about another room's
    picture), `3b` and `7b` (SPEC.md section 2b)."""
    if name == "3b":
        cfg = ModelConfig()
    elif name == "7b":
        cfg = ModelConfig(
            text=TextConfig(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                            num_attention_heads=28, num_key_value_heads=4, tie_word_embeddings=False),
            vision=VisionConfig(out_hidden_size=3584),
        )
    elif name == "tiny":
        cfg = ModelConfig(
            text=TextConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=2, mrope_section=(2, 3, 3),
                            max_position_embeddings=4096),
            vision=VisionConfig(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                                window_size=56, fullatt_block_indexes=(1,)),
            image_token_id=500, video_token_id=501, vision_start_token_id=502, vision_end_token_id=503,
            eos_token_id=504, bos_token_id=None, pad_token_id=505,
        )
    elif name == "demo":
        cfg = preset("tiny").replace(
            text=TextConfig(vocab_size=512, hidden_size=128, intermediate_size=384, num_hidden_layers=4,
                            num_attention_heads=4, num_key_value_heads=2, mrope_section=(4, 6, 6),
                            max_position_embeddings=4096),
            vision=VisionConfig(depth=4, hidden_size=64, intermediate_size=192, num_heads=2, out_hidden_size=128,
                                window_size=56, fullatt_block_indexes=(1, 3)))
    else:
        raise ConfigError(f"unknown preset {name!r}; choose tiny, demo, 3b or 7b")
    return cfg.replace(**overrides) if overrides else cfg


def _object(value, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"config.json: {field} must be an object, got {type(value).__name__}")
    return value


def _number(value, field: str) -> float:
    """rope_theta as HF writes it (an int or a float); `float()` would also take "1e6" or true."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{field} must be a number, got {value!r}")
    return float(value)


def _list(value, field: str) -> list:
    if not isinstance(value, list):
        raise ConfigError(f"{field} must be a list, got {value!r}")
    return value


def _text_fields(d: dict[str, Any]) -> dict[str, Any]:
    rope = _object(d.get("rope_parameters") or d.get("rope_scaling") or {}, "text rope_parameters")
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type not in ("default", "mrope"):
        raise ConfigError(f"text rope type {rope_type!r} is not supported (only default M-RoPE)")
    if d.get("use_sliding_window"):
        raise ConfigError("text use_sliding_window=true is not supported")
    if d.get("hidden_act", "silu") != "silu":
        raise ConfigError(f"text hidden_act {d['hidden_act']!r} is not supported (silu)")
    return dict(
        vocab_size=d["vocab_size"], hidden_size=d["hidden_size"], intermediate_size=d["intermediate_size"],
        num_hidden_layers=d["num_hidden_layers"], num_attention_heads=d["num_attention_heads"],
        num_key_value_heads=d.get("num_key_value_heads", d["num_attention_heads"]),
        rope_theta=_number(rope.get("rope_theta", d.get("rope_theta", 1_000_000.0)), "text.rope_theta"),
        mrope_section=tuple(_list(rope.get("mrope_section", [16, 24, 24]), "text.mrope_section")),
        rms_norm_eps=d.get("rms_norm_eps", 1e-6),
        max_position_embeddings=d.get("max_position_embeddings", 128000),
    )


def _vision_fields(d: dict[str, Any]) -> dict[str, Any]:
    if d.get("hidden_act", "silu") != "silu":
        raise ConfigError(f"vision hidden_act {d['hidden_act']!r} is not supported (silu)")
    rope = _object(d.get("rope_parameters") or {}, "vision rope_parameters")
    names = [f.name for f in dataclasses.fields(VisionConfig) if f.name not in ("rope_theta", "rms_norm_eps")]
    out = {k: d[k] for k in names if k in d}
    if "fullatt_block_indexes" in out:
        out["fullatt_block_indexes"] = tuple(_list(out["fullatt_block_indexes"], "vision.fullatt_block_indexes"))
    out["rope_theta"] = _number(rope.get("rope_theta", 10000.0), "vision.rope_theta")
    if "in_chans" in d:
        out["in_channels"] = d["in_chans"]
    return out


def from_hf_dict(d: dict[str, Any], **overrides) -> ModelConfig:
    """Reads a Qwen2.5-VL `config.json` (flat hub layout or nested transformers-5 layout)."""
    _object(d, "the top level")
    if d.get("model_type") not in (None, "qwen2_5_vl"):
        raise ConfigError(f"model_type {d.get('model_type')!r} is not qwen2_5_vl")
    text_src = _object(d.get("text_config") or d, "text_config")
    try:
        text = TextConfig(**_text_fields(text_src),
                          tie_word_embeddings=d.get("tie_word_embeddings", text_src.get("tie_word_embeddings", True)))
        vision = VisionConfig(**_vision_fields(_object(d.get("vision_config") or {}, "vision_config")))
    except KeyError as e:
        raise ConfigError(f"config.json lacks the field {e.args[0]!r}") from None
    eos = d.get("eos_token_id", text_src.get("eos_token_id", 151645))
    ids = dict(
        image_token_id=d.get("image_token_id", 151655), video_token_id=d.get("video_token_id", 151656),
        vision_start_token_id=d.get("vision_start_token_id", 151652),
        vision_end_token_id=d.get("vision_end_token_id", 151653),
        eos_token_id=eos[0] if isinstance(eos, list) and eos else eos,
        bos_token_id=d.get("bos_token_id", text_src.get("bos_token_id")),
        pad_token_id=d.get("pad_token_id", text_src.get("pad_token_id")),
    )
    return ModelConfig(text=text, vision=vision, **ids, **overrides)


def to_hf_dict(cfg: ModelConfig) -> dict[str, Any]:
    """The nested transformers-5 `config.json` for this configuration."""
    t, v = cfg.text, cfg.vision
    text = dict(
        model_type="qwen2_5_vl_text", vocab_size=t.vocab_size, hidden_size=t.hidden_size,
        intermediate_size=t.intermediate_size, num_hidden_layers=t.num_hidden_layers,
        num_attention_heads=t.num_attention_heads, num_key_value_heads=t.num_key_value_heads,
        hidden_act="silu", rms_norm_eps=t.rms_norm_eps, max_position_embeddings=t.max_position_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": t.rope_theta, "mrope_section": list(t.mrope_section)},
        tie_word_embeddings=t.tie_word_embeddings, use_sliding_window=False, sliding_window=None,
        attention_dropout=0.0, bos_token_id=cfg.bos_token_id, eos_token_id=cfg.eos_token_id,
        pad_token_id=cfg.pad_token_id,
    )
    vision = {f.name: getattr(v, f.name) for f in dataclasses.fields(VisionConfig)
              if f.name not in ("rope_theta", "rms_norm_eps")}
    vision.update(model_type="qwen2_5_vl_vision", hidden_act="silu",
                  fullatt_block_indexes=list(v.fullatt_block_indexes),
                  rope_parameters={"rope_type": "axial", "rope_theta": v.rope_theta})
    return dict(
        architectures=["Qwen2_5_VLForConditionalGeneration"], model_type="qwen2_5_vl", dtype=cfg.param_dtype,
        text_config=text, vision_config=vision, tie_word_embeddings=t.tie_word_embeddings,
        image_token_id=cfg.image_token_id, video_token_id=cfg.video_token_id,
        vision_start_token_id=cfg.vision_start_token_id, vision_end_token_id=cfg.vision_end_token_id,
        bos_token_id=cfg.bos_token_id, eos_token_id=cfg.eos_token_id, pad_token_id=cfg.pad_token_id,
    )


def for_tokenizer(cfg: ModelConfig, token_ids: dict[str, int], vocab_size: int) -> ModelConfig:
    """`cfg` re-keyed to a tokenizer: its vocabulary size and special ids (the dict that
    `ladder_jax.data.tokenizer.special_token_ids` returns)."""
    return cfg.replace(
        text=dataclasses.replace(cfg.text, vocab_size=vocab_size),
        image_token_id=token_ids["image"], video_token_id=token_ids["video"],
        vision_start_token_id=token_ids["vision_start"], vision_end_token_id=token_ids["vision_end"],
        eos_token_id=token_ids["eos"], pad_token_id=token_ids["pad"], bos_token_id=None)
