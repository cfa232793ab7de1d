"""Parameters-only Orbax checkpoints of a Qwen2.5-VL (what `import-hf` writes, what each stage
ends with in `final/`, and what stages start from).

Layout: DIR/model_config.json (the HF config plus execution settings), the tokenizer and processor
files of a Hugging Face folder (tokenizer.json, tokenizer_config.json, chat template,
preprocessor_config.json, ...: `api.SIDE_FILES`) and DIR/params (Orbax, restored straight onto the
target mesh's shardings). A checkpoint is thus self-contained: `export-hf`, `eval`,
`VisionLanguageModel.from_pretrained` and `Processor.from_pretrained` need nothing else. Orbax
commits `params` by an atomic rename and everything else is written first, so a folder with
`params` is always complete. Never pickle. (Checkpoints imported before the side files moved to the
top level keep them in DIR/hf_files; `side_files_dir` finds either.)
"""

from __future__ import annotations

import json
import tempfile

import jax
import orbax.checkpoint as ocp
from flax import nnx

from ladder_jax.models.qwen25_vl import config as config_lib
from ladder_jax.models.qwen25_vl.api import SIDE_FILES, abstract_model
from ladder_jax.models.safetensors_io import CheckpointFormatError
from ladder_jax.parallel.mesh import make_mesh
from ladder_jax.parallel.sharding import state_shardings
from ladder_jax.paths import as_path, is_remote

_EXEC_FIELDS = ("dtype", "param_dtype", "attention", "remat")


MODEL_CONFIG = "model_config.json"
LEGACY_SIDE_DIR = "hf_files"


def is_params_checkpoint(directory) -> bool:
    return (as_path(directory) / MODEL_CONFIG).is_file()


def side_files_dir(directory):
    """The folder holding a checkpoint's tokenizer and processor files (the checkpoint itself, or
    the `hf_files` folder of one imported by an earlier version)."""
    directory = as_path(directory)
    legacy = directory / LEGACY_SIDE_DIR
    if not (directory / "tokenizer_config.json").exists() and legacy.is_dir():
        return legacy
    return directory


def save_params(directory, cfg: config_lib.ModelConfig, state, *, processor=None, side_files_from=None):
    """Writes a parameters checkpoint into `directory`. Its tokenizer and processor files come from
    `processor` (anything with `save_pretrained(path)`, e.g. `ladder_jax.data.processor.Processor`)
    and/or are copied from the folder `side_files_from` (those of `SIDE_FILES` it has)."""
    directory = _absolute(directory)
    if (directory / "params").exists():
        raise FileExistsError(f"{directory / 'params'} exists; choose an empty folder")
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"hf_config": config_lib.to_hf_dict(cfg), **{k: getattr(cfg, k) for k in _EXEC_FIELDS}}
    if jax.process_index() == 0:
        tmp = directory / (MODEL_CONFIG + ".tmp")
        tmp.write_text(json.dumps(meta, indent=2))
        tmp.replace(directory / MODEL_CONFIG)
        if side_files_from is not None:
            copy_side_files(side_files_from, directory)
        if processor is not None:
            with tempfile.TemporaryDirectory() as local:  # transformers writes local files only
                processor.save_pretrained(local)
                copy_side_files(local, directory)
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(directory / "params", nnx.to_pure_dict(state))
    return directory


def copy_side_files(source, destination) -> list[str]:
    """Copies the tokenizer / processor files (`SIDE_FILES`, generation_config.json) that `source`
    has into `destination` (either may be a URL); returns their names."""
    source, destination = as_path(source), as_path(destination)
    copied = [n for n in SIDE_FILES + ("generation_config.json",) if (source / n).is_file()]
    for name in copied:
        (source / name).copy(destination / name, overwrite=True)
    return copied


def local_side_files(directory, into) -> str:
    """A local folder with the checkpoint's side files, for loaders that read local files only
    (transformers): the folder itself when local, else a copy in the local folder `into`."""
    folder = side_files_dir(directory)
    if not is_remote(folder):
        return str(folder)
    copy_side_files(folder, into)
    return str(into)


def _absolute(directory):
    directory = as_path(directory)
    return directory if is_remote(directory) else directory.absolute()


def read_config(directory, **overrides) -> config_lib.ModelConfig:
    path = as_path(directory) / MODEL_CONFIG
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
    directory = _absolute(directory)
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
