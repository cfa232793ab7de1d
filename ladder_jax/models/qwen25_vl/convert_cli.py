"""`ladder-jax import-hf HF_DIR CKPT_DIR` and `ladder-jax export-hf CKPT_DIR HF_DIR`.

The tokenizer and processor files of the HF folder travel inside the checkpoint (beside
model_config.json) so that an export is again a complete folder that transformers and our
Processor load; every stage's `final/` carries them too, so any checkpoint exports whole. Both verbs
write their output folder whole or not at all (`ladder_jax.atomic_output`): an earlier export's
shards can never survive next to a new one.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from ladder_jax.models.qwen25_vl.api import SIDE_FILES, VisionLanguageModel
from ladder_jax.models.qwen25_vl.checkpoint import load_params, save_params, side_files_dir
from ladder_jax.models.qwen25_vl.config import FLOAT_DTYPES, ConfigError
from ladder_jax.models.safetensors_io import CheckpointFormatError
from ladder_jax import progress
from ladder_jax.atomic_output import OutputError, build_beside, check_output
from ladder_jax.parallel.mesh import MeshError, make_mesh, mesh_arg

# What a user can fix; anything else is a bug and keeps its traceback.
_USER_ERRORS = (CheckpointFormatError, ConfigError, MeshError, OutputError, FileNotFoundError, NotADirectoryError)
# The file by which each verb knows its own earlier output (--overwrite replaces only those).
MARKER = {"import-hf": "model_config.json", "export-hf": "config.json"}


def configure(verb: str, parser: argparse.ArgumentParser) -> None:
    src, dst = ("HF_DIR", "CKPT_DIR") if verb == "import-hf" else ("CKPT_DIR", "HF_DIR")
    parser.add_argument("src", metavar=src)
    parser.add_argument("dst", metavar=dst)
    parser.add_argument("--param-dtype", default="float32" if verb == "import-hf" else None, choices=FLOAT_DTYPES,
                        help="dtype of the stored parameters (import) / of the written tensors (export)")
    parser.add_argument("--mesh", default="-1,1,1", type=mesh_arg, help="data,fsdp,tensor sizes (one may be -1)")
    parser.add_argument("--overwrite", action="store_true",
                        help=f"replace an existing non-empty {dst} (the old one is kept until the new one is complete)")
    if verb == "export-hf":
        parser.add_argument("--max-shard-gb", type=float, default=5.0, help="safetensors shard size limit")


def main(verb: str, args) -> int:
    try:
        if verb == "export-hf" and not (math.isfinite(args.max_shard_gb) and args.max_shard_gb > 0):
            raise ConfigError(f"--max-shard-gb must be a finite number > 0, got {args.max_shard_gb}")
        check_output(args.dst, args.overwrite, MARKER[verb], inputs=(args.src,))  # before loading anything
        mesh = make_mesh(*args.mesh)
        start = time.time()
        with progress.bars():  # a bar over the tensors read / exported
            message = (_import if verb == "import-hf" else _export)(args, mesh)
    except _USER_ERRORS as e:
        print(f"ladder-jax {verb}: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    print(f"{message} in {time.time() - start:.1f}s")
    return 0


def _import(args, mesh) -> str:
    model = VisionLanguageModel.from_pretrained(args.src, mesh=mesh, param_dtype=args.param_dtype)
    copied = [n for n in SIDE_FILES + ("generation_config.json",) if (Path(args.src) / n).exists()]
    with build_beside(args.dst, overwrite=args.overwrite, marker=MARKER["import-hf"], inputs=(args.src,)) as out:
        save_params(out, model.config, model.state, side_files_from=args.src)
    return f"imported {args.src} -> {args.dst} ({_count(model)} parameters, {len(copied)} tokenizer/processor files)"


def _export(args, mesh) -> str:
    cfg, graphdef, state = load_params(args.src, mesh=mesh)
    side = side_files_dir(args.src)
    if not (side / "tokenizer_config.json").is_file():
        print(f"ladder-jax export-hf: warning: {args.src} holds no tokenizer files; the export has the model only",
              file=sys.stderr)
    model = VisionLanguageModel(cfg, graphdef, state, mesh, source_dir=side)
    with build_beside(args.dst, overwrite=args.overwrite, marker=MARKER["export-hf"], inputs=(args.src,)) as out:
        model.save_pretrained(out, dtype=args.param_dtype, max_shard_bytes=int(args.max_shard_gb * 2**30))
    return f"exported {args.src} -> {args.dst} ({_count(model)} parameters)"


def _count(model) -> str:
    import jax
    n = sum(x.size for x in jax.tree.leaves(model.state))
    return f"{n / 1e6:.1f}M"
