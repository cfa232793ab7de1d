"""`ladder-jax synth`: spatial QA from RGB-D scene folders, or from photos through perception providers."""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np
from PIL import Image

from ladder_jax.atomic_output import OutputError, build_beside
from ladder_jax.data.scene_folder import write_scene
from ladder_jax.synth.pipeline import OUTPUTS, SynthOptions, load_scene, scene_folders, synthesize
from ladder_jax.synth.plausibility import hfov_problem

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def configure(verb: str, parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--scenes", help="a scene folder, or a folder of scene folders (rgb.png, depth.npy, instances.png, meta.json)")
    src.add_argument("--images", help="a folder of photos, perceived with --providers")
    parser.add_argument("--providers", help="providers JSON config (local model folders), needed with --images")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier synth output in --out (built beside it, swapped in when complete)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fov", type=float, default=None,
                        help="horizontal field of view (degrees) assumed for scenes without intrinsics; default fx = 1.5·W")
    parser.add_argument("--device", default="cpu", help="torch device for the providers")


def _photo_sources(args, out: pathlib.Path):
    from ladder_jax.synth.providers import load_providers, perceive

    depth, detector, segmenter, fov = load_providers(args.providers, args.device)
    photos = sorted(p for p in pathlib.Path(args.images).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)

    def load(p: pathlib.Path):
        rgb = np.asarray(Image.open(p).convert("RGB"))
        scene = perceive(p.stem, rgb, depth, detector, segmenter)
        write_scene(out / "scenes" / p.stem, scene.rgb, scene.depth, scene.instances, scene.labels)  # for audit
        return scene

    return [(p.stem, lambda p=p: load(p)) for p in photos], fov


class NothingSynthesized(Exception):
    """Every scene was skipped: nothing replaces the output folder."""


def main(verb: str, args) -> int:
    source = args.scenes or args.images
    if args.images and not args.providers:
        print(f"ladder-jax {verb}: --images needs --providers CONFIG (a JSON file naming local model folders)", file=sys.stderr)
        return 2
    if args.fov is not None and hfov_problem(args.fov):
        print(f"ladder-jax {verb}: --fov: {hfov_problem(args.fov)}", file=sys.stderr)
        return 2
    if not pathlib.Path(source).is_dir():
        print(f"ladder-jax {verb}: {source} is not a folder; give a folder of scene folders or photos", file=sys.stderr)
        return 2
    try:
        with build_beside(args.out, overwrite=args.overwrite, marker=OUTPUTS["freeform"],
                          inputs=[source] + ([args.providers] if args.providers else [])) as new:
            report = _synthesize(args, new)
            _print(report)
            if not report["scenes_done"]:
                found = len(report["skipped_scenes"])
                raise NothingSynthesized(f"none of the {found} scenes in {source} could be used; the output folder was left as it was"
                                         if found else f"no scenes or photos found in {source}")
    except NothingSynthesized as e:
        print(f"ladder-jax {verb}: {e}", file=sys.stderr)
        return 1
    except (OutputError, OSError, ValueError, RuntimeError) as e:  # refused --out, unreadable input, bad providers
        print(f"ladder-jax {verb}: {e}", file=sys.stderr)
        return 2
    return 0


def _synthesize(args, out: pathlib.Path) -> dict:
    if args.scenes:
        sources = [(p.name, lambda p=p: load_scene(p)) for p in scene_folders(args.scenes)]
        return synthesize(_progress(sources, "scene"), out, SynthOptions(args.seed, args.fov))
    sources, fov = _photo_sources(args, out)
    return synthesize(_progress(sources, "photo"), out, SynthOptions(args.seed, args.fov if args.fov is not None else fov))


def _progress(sources: list, unit: str):
    """A tqdm bar over the scenes (on stderr when it is a terminal; the JSON summary stays alone on stdout)."""
    from tqdm.auto import tqdm  # noqa: PLC0415

    return tqdm(sources, desc="synth", unit=unit, dynamic_ncols=True, file=sys.stderr, disable=not sys.stderr.isatty())


def _print(report: dict) -> None:
    print(json.dumps({k: report[k] for k in ("scenes_done", "rows")} | {"skipped_scenes": len(report["skipped_scenes"])}))
    for name, why in report["skipped_scenes"].items():
        print(f"skipped {name}: {why}")
