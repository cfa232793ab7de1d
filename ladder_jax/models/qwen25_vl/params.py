"""Hugging Face <-> ladder_jax parameters: one declarative table, read forwards to import and
backwards to export.

Each row: HF key (with `{i}` for a stacked layer index), our parameter path, and the layout
change: `copy`, `linear` (torch Linear (out, in) <-> our kernel (in, out)) or `conv`
(Conv3d (out, C, T, P, P) <-> our (C*T*P*P, out) patch projection, the same maths as a matmul).
"""

from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp
from flax import nnx

from ladder_jax.models.qwen25_vl.config import ConfigError, ModelConfig
from ladder_jax.models.safetensors_io import CheckpointFormatError, SafetensorsFolder
from ladder_jax.progress import track

_VISION_BLOCK = [
    ("norm1.weight", "norm1/weight", "copy"), ("norm2.weight", "norm2/weight", "copy"),
    ("attn.qkv.weight", "qkv/kernel", "linear"), ("attn.qkv.bias", "qkv/bias", "copy"),
    ("attn.proj.weight", "proj/kernel", "linear"), ("attn.proj.bias", "proj/bias", "copy"),
] + [(f"mlp.{p}_proj.{w}", f"mlp/{p}_proj/{o}", kind) for p in ("gate", "up", "down")
     for w, o, kind in (("weight", "kernel", "linear"), ("bias", "bias", "copy"))]

_TEXT_LAYER = [
    ("input_layernorm.weight", "input_layernorm/weight", "copy"),
    ("post_attention_layernorm.weight", "post_attention_layernorm/weight", "copy"),
    ("self_attn.o_proj.weight", "o_proj/kernel", "linear"),
] + [(f"self_attn.{p}_proj.{w}", f"{p}_proj/{o}", kind) for p in ("q", "k", "v")
     for w, o, kind in (("weight", "kernel", "linear"), ("bias", "bias", "copy"))
] + [(f"mlp.{p}_proj.weight", f"mlp/{p}_proj/kernel", "linear") for p in ("gate", "up", "down")]

TABLE: list[tuple[str, str, str]] = (
    [("visual.patch_embed.proj.weight", "visual/patch_embed", "conv"),
     ("visual.merger.ln_q.weight", "visual/merger/ln_q/weight", "copy"),
     ("visual.merger.mlp.0.weight", "visual/merger/fc1/kernel", "linear"),
     ("visual.merger.mlp.0.bias", "visual/merger/fc1/bias", "copy"),
     ("visual.merger.mlp.2.weight", "visual/merger/fc2/kernel", "linear"),
     ("visual.merger.mlp.2.bias", "visual/merger/fc2/bias", "copy"),
     ("model.embed_tokens.weight", "embed_tokens", "copy"),
     ("model.norm.weight", "decoder/norm/weight", "copy"),
     ("lm_head.weight", "lm_head", "linear")]
    + [(f"visual.blocks.{{i}}.{hf}", f"visual/blocks/{ours}", kind) for hf, ours, kind in _VISION_BLOCK]
    + [(f"model.layers.{{i}}.{hf}", f"decoder/layers/{ours}", kind) for hf, ours, kind in _TEXT_LAYER]
)


def _path(flat_path) -> str:
    return "/".join(str(p) for p in flat_path)


def _hf_shape(ours: tuple[int, ...], kind: str, cfg: ModelConfig) -> tuple[int, ...]:
    if kind == "linear":
        return ours[::-1]
    if kind == "conv":
        v = cfg.vision
        return (ours[1], v.in_channels, v.temporal_patch_size, v.patch_size, v.patch_size)
    return ours


def to_hf_layout(arr: np.ndarray, kind: str) -> np.ndarray:
    if kind == "linear":
        return arr.T
    if kind == "conv":
        return arr.T.reshape(arr.shape[1], -1)  # caller reshapes to 5-D with the config
    return arr


def _read(src: np.ndarray, kind: str, index: tuple[slice, ...]) -> np.ndarray:
    """The slice `index` (in our layout) of one HF tensor, reading only that slice where possible."""
    if kind == "linear":
        return np.asarray(src[index[1], index[0]]).T
    if kind == "conv":
        return np.asarray(src).reshape(src.shape[0], -1).T[index]
    return np.asarray(src[index])


def _rows_by_path(cfg: ModelConfig):
    rows = {}
    for hf, ours, kind in TABLE:
        if ours == "lm_head" and cfg.text.tie_word_embeddings:
            continue
        n = cfg.vision.depth if ours.startswith("visual/blocks") else cfg.text.num_hidden_layers
        keys = [hf.format(i=i) for i in range(n)] if "{i}" in hf else [hf]
        rows[ours] = (keys, kind, "{i}" in hf)
    return rows


def check_folder(folder: SafetensorsFolder, abstract_state, cfg: ModelConfig) -> None:
    """Every expected key present with the expected shape, and nothing unexpected; errors name keys."""
    rows = _rows_by_path(cfg)
    expected = set()
    problems = []
    for flat_path, var in nnx.to_flat_state(abstract_state):
        path = _path(flat_path)
        if path not in rows:
            raise CheckpointFormatError(f"parameter {path} has no row in the HF key table")
        keys, kind, stacked = rows[path]
        shape = tuple(var.get_value().shape)
        want = _hf_shape(shape[1:] if stacked else shape, kind, cfg)
        for key in keys:
            expected.add(key)
            if key not in folder:
                problems.append(f"missing tensor {key!r} (for {path})")
            elif folder.shape(key) != want:
                problems.append(f"tensor {key!r} has shape {folder.shape(key)}, expected {want}")
    extra = [k for k in folder.keys() if k not in expected and not (k == "lm_head.weight" and cfg.text.tie_word_embeddings)]
    problems += [f"unexpected tensor {k!r} (not part of this Qwen2.5-VL configuration)" for k in extra]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; ... and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise CheckpointFormatError(f"checkpoint does not match the configuration: {shown}")


def load_state(folder: SafetensorsFolder, abstract_state, shardings, cfg: ModelConfig):
    """Builds the concrete State: each array is assembled on its sharding from per-device slices,
    so no process ever holds more than the slices its devices own (plus one layer's tensor)."""
    check_folder(folder, abstract_state, cfg)
    rows = _rows_by_path(cfg)
    flat_shardings = dict(nnx.to_flat_state(shardings))

    def build(flat_path, var):
        keys, kind, stacked = rows[_path(flat_path)]
        shape, dtype = var.get_value().shape, var.get_value().dtype

        def layer(key, index):
            with np.errstate(over="ignore"):  # an overflow is refused just below, by name
                arr = _read(folder.get(key), kind, index).astype(dtype)
            if not np.isfinite(arr).all():  # one NaN weight turns every output into NaN
                raise CheckpointFormatError(f"tensor {key!r} holds NaN or inf as {np.dtype(dtype).name} (damaged "
                                            "weights, or values beyond the range of the parameter dtype)")
            return arr

        def slice_of(index):
            if stacked:
                return np.stack([layer(keys[i], index[1:]) for i in range(len(keys))[index[0]]])
            return layer(keys[0], index)

        sharding = flat_shardings[flat_path]
        sharding = sharding.get_value() if isinstance(sharding, nnx.Variable) else sharding
        return var.replace(value=jax.make_array_from_callback(shape, sharding, slice_of))

    flat = [(p, build(p, v)) for p, v in track(list(nnx.to_flat_state(abstract_state)), "read")]
    return nnx.from_flat_state(flat)


def _host(arr) -> np.ndarray:
    if not arr.is_fully_addressable:
        from jax.experimental import multihost_utils
        arr = multihost_utils.process_allgather(arr, tiled=True)
    return np.asarray(jax.device_get(arr))


def export_tensors(state, cfg: ModelConfig, dtype=None) -> dict[str, np.ndarray]:
    """HF-named host arrays for every parameter (in `dtype`, default the parameters' own)."""
    rows = _rows_by_path(cfg)
    v = cfg.vision
    out = {}
    for flat_path, var in track(list(nnx.to_flat_state(state)), "export"):
        keys, kind, stacked = rows[_path(flat_path)]
        arr = _host(var.get_value())
        if not np.isfinite(arr).all():
            raise CheckpointFormatError(f"parameter {_path(flat_path)} holds NaN or inf: these weights are poisoned; "
                                        "export an earlier checkpoint")
        if dtype is not None:
            with np.errstate(over="ignore"):  # refused just below, by name
                arr = arr.astype(jnp.dtype(dtype))
            if not np.isfinite(arr).all():
                raise ConfigError(f"parameter {_path(flat_path)} holds values beyond the range of {dtype}; "
                                  "export in bfloat16 or float32")
        for i, key in enumerate(keys):
            t = to_hf_layout(arr[i] if stacked else arr, kind)
            if kind == "conv":
                t = t.reshape(t.shape[0], v.in_channels, v.temporal_patch_size, v.patch_size, v.patch_size)
            out[key] = np.ascontiguousarray(t)
    return out
