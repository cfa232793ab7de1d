"""`ladder-jax import-hf HF_DIR CKPT_DIR` and `ladder-jax export-hf CKPT_DIR HF_DIR`.

The tokenizer and processor files of the HF folder travel inside the checkpoint (CKPT_DIR/hf_files)
so that an export is again a complete folder that transformers and our Processor load.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from ladder_jax.models.qwen25_vl.api import SIDE_FILES, VisionLanguageModel
from ladder_jax.models.qwen25_vl.checkpoint import load_params, save_params
from ladder_jax.parallel.mesh import make_mesh

SIDE_DIR = "hf_files"


def configure(verb: str, parser: argparse.ArgumentParser) -> None:
    src, dst = ("HF_DIR", "CKPT_DIR") if verb == "import-hf" else ("CKPT_DIR", "HF_DIR")
    parser.add_argument("src", metavar=src)
    parser.add_argument("dst", metavar=dst)
    parser.add_argument("--param-dtype", default="float32" if verb == "import-hf" else None,
                        help="dtype of the stored parameters (import) / of the written tensors (export)")
    parser.add_argument("--mesh", default="-1,1,1", help="data,fsdp,tensor sizes (one may be -1)")
    if verb == "export-hf":
        parser.add_argument("--max-shard-gb", type=float, default=5.0, help="safetensors shard size limit")


def main(verb: str, args) -> int:
    mesh = make_mesh(*[int(x) for x in args.mesh.split(",")])
    start = time.time()
    if verb == "import-hf":
        model = VisionLanguageModel.from_pretrained(args.src, mesh=mesh, param_dtype=args.param_dtype)
        save_params(args.dst, model.config, model.state)
        side = Path(args.dst) / SIDE_DIR
        copied = [n for n in SIDE_FILES + ("generation_config.json",) if (Path(args.src) / n).exists()]
        side.mkdir(exist_ok=True)
        for name in copied:
            shutil.copy2(Path(args.src) / name, side / name)
        print(f"imported {args.src} -> {args.dst} ({_count(model)} parameters, {len(copied)} tokenizer/processor "
              f"files) in {time.time() - start:.1f}s")
    else:
        cfg, graphdef, state = load_params(args.src, mesh=mesh)
        side = Path(args.src) / SIDE_DIR
        model = VisionLanguageModel(cfg, graphdef, state, mesh, source_dir=side if side.exists() else None)
        model.save_pretrained(args.dst, dtype=args.param_dtype, max_shard_bytes=int(args.max_shard_gb * 2**30))
        print(f"exported {args.src} -> {args.dst} ({_count(model)} parameters) in {time.time() - start:.1f}s")
    return 0


def _count(model) -> str:
    import jax
    n = sum(x.size for x in jax.tree.leaves(model.state))
    return f"{n / 1e6:.1f}M"
