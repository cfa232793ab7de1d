"""`VisionLanguageModel`: the user-facing handle (transformers-like), built on the pure functions.

It holds a graphdef + a (sharded) parameter State. Calls are jitted pure functions of
(graphdef, state, inputs); training code uses `graphdef` and `state` directly. Generation is a
layer above: `ladder_jax.generate.generate(model, inputs, max_new_tokens)`.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ladder_jax.models.qwen25_vl import config as config_lib
from ladder_jax.models.qwen25_vl import params as params_lib
from ladder_jax.models.qwen25_vl.batching import per_sample_inputs
from ladder_jax.models.qwen25_vl.hf_export_config import exported_config
from ladder_jax.models.qwen25_vl.inputs import MODEL_KEYS
from ladder_jax.models.qwen25_vl.model import Qwen25VL
from ladder_jax.models.qwen25_vl.text import KVCache
from ladder_jax.models.safetensors_io import SafetensorsFolder, write_sharded
from ladder_jax.parallel.mesh import make_mesh
from ladder_jax.parallel.sharding import state_shardings
from ladder_jax.paths import as_path, is_remote

# Files of a HF folder that belong to the tokenizer / processor and travel with an export.
SIDE_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json",
              "added_tokens.json", "chat_template.json", "chat_template.jinja", "preprocessor_config.json",
              "video_preprocessor_config.json", "processor_config.json")


def abstract_model(cfg: config_lib.ModelConfig):
    """graphdef and abstract State (shapes, dtypes, logical axes) without allocating anything."""
    return nnx.split(nnx.eval_shape(lambda: Qwen25VL(cfg, rngs=nnx.Rngs(0))))


def init_state(cfg: config_lib.ModelConfig, mesh, seed: int = 0):
    """Random parameters, created directly on their shardings (one compile per config and mesh)."""
    graphdef, make = _initializer(cfg, mesh)
    return graphdef, make(jax.random.key(seed))


@functools.lru_cache(maxsize=None)
def _initializer(cfg: config_lib.ModelConfig, mesh):
    graphdef, abstract = abstract_model(cfg)

    @functools.partial(jax.jit, out_shardings=state_shardings(abstract, mesh))
    def make(key):
        return nnx.split(Qwen25VL(cfg, rngs=nnx.Rngs(key)))[1]

    return graphdef, make


@functools.lru_cache(maxsize=None)
def _jitted(graphdef, method: str):
    """jit of `model.<method>(*args, **inputs)` as a pure function of (state, args, inputs)."""
    def run(state, *args, **inputs):
        return getattr(nnx.merge(graphdef, state), method)(*args, **inputs)
    return jax.jit(run, donate_argnums=(1,) if method == "decode_step" else ())


def _device_inputs(inputs: dict) -> dict:
    return {k: jnp.asarray(np.asarray(v)) for k, v in inputs.items() if v is not None}


def model_inputs(cfg: config_lib.ModelConfig, inputs: dict) -> dict:
    """Processor-style flat arrays -> the jitted model's per-sample layout (host side)."""
    inputs = {k: inputs.get(k) for k in MODEL_KEYS if inputs.get(k) is not None}
    if inputs.get("attention_mask") is None:
        inputs["attention_mask"] = np.ones_like(np.asarray(inputs["input_ids"]))
    v = cfg.vision
    return per_sample_inputs(inputs, cfg.image_token_id, cfg.video_token_id, v.merge_unit, v.patch_dim)


class VisionLanguageModel:
    def __init__(self, cfg: config_lib.ModelConfig, graphdef, state, mesh, source_dir: Path | None = None):
        self.config, self.graphdef, self.state, self.mesh = cfg, graphdef, state, mesh
        self.source_dir = source_dir

    @classmethod
    def from_config(cls, cfg: config_lib.ModelConfig, mesh=None, seed: int = 0) -> "VisionLanguageModel":
        mesh = mesh or make_mesh()
        graphdef, state = init_state(cfg, mesh, seed)
        return cls(cfg, graphdef, state, mesh)

    @classmethod
    def from_pretrained(cls, path, mesh=None, dtype: str | None = None, param_dtype: str = "float32",
                        **overrides) -> "VisionLanguageModel":
        """Loads a local HF Qwen2.5-VL folder, or a ladder_jax parameters checkpoint (a stage's
        `final/`, an `import-hf` output); each tensor goes straight onto its sharding. Never
        downloads: a hub name that is not a folder on disk is an error, not a fetch."""
        from ladder_jax.models.qwen25_vl import checkpoint  # noqa: PLC0415 (checkpoint imports this module)

        if is_remote(path) and checkpoint.is_params_checkpoint(path):  # gs://... (Orbax reads it through epath)
            mesh = mesh or make_mesh()
            cfg, graphdef, state = checkpoint.load_params(path, mesh, dtype=dtype or param_dtype,
                                                          param_dtype=param_dtype, **overrides)
            return cls(cfg, graphdef, state, mesh, source_dir=checkpoint.side_files_dir(path))
        path = as_path(path)
        if is_remote(path) or not path.is_dir():
            raise FileNotFoundError(f"{path} is not a folder on disk (from_pretrained reads a local Hugging Face "
                                    "folder, or a ladder_jax checkpoint anywhere, and never downloads; fetch it "
                                    "first, e.g. `hf download ORG/NAME --local-dir DIR`)")
        path = Path(path)
        if checkpoint.is_params_checkpoint(path) and not (path / "config.json").is_file():
            mesh = mesh or make_mesh()
            cfg, graphdef, state = checkpoint.load_params(path, mesh, dtype=dtype or param_dtype,
                                                          param_dtype=param_dtype, **overrides)
            return cls(cfg, graphdef, state, mesh, source_dir=checkpoint.side_files_dir(path))
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} has no config.json (expected a Hugging Face model folder)")
        try:
            hf = json.loads((path / "config.json").read_bytes())
        except (ValueError, RecursionError) as e:
            raise config_lib.ConfigError(f"{path / 'config.json'}: not valid JSON ({type(e).__name__}: {e})") from None
        cfg = config_lib.from_hf_dict(hf, dtype=dtype or param_dtype, param_dtype=param_dtype, **overrides)
        mesh = mesh or make_mesh()
        graphdef, abstract = abstract_model(cfg)
        state = params_lib.load_state(SafetensorsFolder(path), abstract, state_shardings(abstract, mesh), cfg)
        return cls(cfg, graphdef, state, mesh, source_dir=path)

    def __call__(self, input_ids, attention_mask=None, pixel_values=None, image_grid_thw=None,
                 pixel_values_videos=None, video_grid_thw=None, second_per_grid_ts=None, **unused):
        """Logits (B, L, vocab) as float32 numpy, from the arrays a Qwen2.5-VL processor returns
        (`mm_token_type_ids` and other extra keys are accepted and not needed)."""
        inputs = model_inputs(self.config, dict(
            input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values,
            image_grid_thw=image_grid_thw, pixel_values_videos=pixel_values_videos,
            video_grid_thw=video_grid_thw, second_per_grid_ts=second_per_grid_ts))
        with jax.set_mesh(self.mesh):
            return np.asarray(_jitted(self.graphdef, "__call__")(self.state, **_device_inputs(inputs)))

    def prefill(self, inputs: dict, cache_size: int):
        """Runs a left-padded prompt batch (processor layout) into a fresh KV cache of `cache_size` slots.
        Returns (last-token logits (B, V), cache)."""
        batch = np.asarray(inputs["input_ids"]).shape[0]
        cache = KVCache.empty(self.config.text, batch, cache_size, jnp.dtype(self.config.dtype))
        inputs = model_inputs(self.config, inputs)
        with jax.set_mesh(self.mesh):
            return _jitted(self.graphdef, "prefill")(self.state, cache, **_device_inputs(inputs))

    def decode_step(self, cache: KVCache, tokens):
        """Feeds one token per row; returns (logits (B, V), cache). The cache is donated."""
        with jax.set_mesh(self.mesh):
            return _jitted(self.graphdef, "decode_step")(self.state, cache, jnp.asarray(tokens, jnp.int32))

    def save_pretrained(self, out_dir, dtype: str | None = None, max_shard_bytes: int = 5 * 2**30) -> Path:
        """Writes config.json, generation_config.json, safetensors shards (+ index) and the source
        folder's tokenizer / processor files into `out_dir`, as transformers does: an earlier export's
        weight files there are replaced (see `write_sharded`), other files are kept. Each file is
        written whole under a temporary name and renamed. Only process 0 writes in a multi-host run."""
        if dtype is not None and dtype not in config_lib.FLOAT_DTYPES:
            raise config_lib.ConfigError(f"export dtype must be one of {config_lib.FLOAT_DTYPES}, got {dtype!r}")
        out_dir = Path(out_dir)
        tensors = params_lib.export_tensors(self.state, self.config, dtype)
        if jax.process_index() != 0:
            return out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        write_sharded(tensors, out_dir, max_shard_bytes)
        hf = exported_config(self.config, str(np.dtype(dtype or self.config.param_dtype)))
        gen = {"bos_token_id": self.config.bos_token_id, "eos_token_id": self.config.eos_token_id,
               "pad_token_id": self.config.pad_token_id, "do_sample": False}
        for name, content in (("config.json", hf), ("generation_config.json", gen)):
            _atomic_write(out_dir / name, lambda tmp, content=content: tmp.write_text(json.dumps(content, indent=2)))
        source = None if self.source_dir is None else as_path(self.source_dir)  # may be a URL
        for name in SIDE_FILES + ("generation_config.json",):
            if source is not None and (source / name).exists():
                _atomic_write(out_dir / name, lambda tmp, name=name: (source / name).copy(as_path(tmp)))
        return out_dir


def _atomic_write(path: Path, write) -> None:
    """`write(tmp)` then rename: a crash never leaves a half-written file under `path`."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)
