"""Parameters-only Orbax checkpoints of a Qwen2.5-VL (what `import-hf` writes and stages start from).

Layout: DIR/model_config.json (the HF config plus execution settings) and DIR/params (Orbax,
restored straight onto the target mesh's shardings). Orbax commits `params` by an atomic rename,
and the config is written first, so a folder with `params` is always complete. Never pickle.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jax
import orbax.checkpoint as ocp
from flax import nnx

from ladder_jax.models.qwen25_vl import config as config_lib
from ladder_jax.models.qwen25_vl.api import abstract_model
from ladder_jax.models.safetensors_io import CheckpointFormatError
from ladder_jax.parallel.mesh import make_mesh
from ladder_jax.parallel.sharding import state_shardings

_EXEC_FIELDS = ("dtype", "param_dtype", "attention", "remat")


def save_params(directory, cfg: config_lib.ModelConfig, state) -> Path:
    directory = Path(directory).absolute()
    if (directory / "params").exists():
        raise FileExistsError(f"{directory / 'params'} exists; choose an empty folder")
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"hf_config": config_lib.to_hf_dict(cfg), **{k: getattr(cfg, k) for k in _EXEC_FIELDS}}
    if jax.process_index() == 0:
        tmp = directory / "model_config.json.tmp"
        tmp.write_text(json.dumps(meta, indent=2))
        os.replace(tmp, directory / "model_config.json")
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(directory / "params", nnx.to_pure_dict(state))
    return directory


def read_config(directory, **overrides) -> config_lib.ModelConfig:
    path = Path(directory) / "model_config.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: {directory} is not a ladder_jax parameters checkpoint")
    try:
        meta = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as e:
        raise CheckpointFormatError(f"{path}: not valid JSON ({type(e).__name__}: {e})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("hf_config"), dict):
        raise CheckpointFormatError(f"{path}: no hf_config object (not written by ladder_jax, or damaged)")
    execution = {k: meta[k] for k in _EXEC_FIELDS if k in meta} | overrides
    return config_lib.from_hf_dict(meta["hf_config"], **execution)


def load_params(directory, mesh=None, **overrides):
    """Returns (cfg, graphdef, state) with every array restored onto its sharding on `mesh`."""
    directory = Path(directory).absolute()
    cfg = read_config(directory, **overrides)
    if not (directory / "params").is_dir():
        raise FileNotFoundError(f"{directory / 'params'} is missing: the checkpoint was never completed")
    mesh = mesh or make_mesh()
    graphdef, abstract = abstract_model(cfg)
    shardings = state_shardings(abstract, mesh)
    target = jax.tree.map(lambda v, s: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=s),
                          nnx.to_pure_dict(abstract), nnx.to_pure_dict(shardings))
    try:
        with ocp.StandardCheckpointer() as ckptr:
            restored = ckptr.restore(directory / "params", target)
    except Exception as e:  # Orbax wraps TensorStore's error (the informative one) in a bare Exception
        cause = e
        while (cause.__cause__ or cause.__context__) is not None:
            cause = cause.__cause__ or cause.__context__
        why = str(cause).split(" [tensorstore_spec")[0]  # the spec that follows is kilobytes of JSON
        raise CheckpointFormatError(f"{directory / 'params'} cannot be restored, damaged or not written for this "
                                    f"model_config.json ({type(cause).__name__}: {why})") from e
    nnx.replace_by_pure_dict(abstract, restored)
    return cfg, graphdef, abstract
