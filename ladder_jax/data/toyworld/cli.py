"""`ladder-jax toyworld --out DIR --scenes N --seed S`: write a toy-world data set."""

from __future__ import annotations

import argparse
import json

from ladder_jax.data.toyworld.generate import generate


def configure(verb: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (release layout; eval scenes under OUT/eval)")
    parser.add_argument("--scenes", type=int, required=True, help="number of rooms")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=224, help="frame width and height in pixels")
    parser.add_argument("--views", type=int, default=8, help="cameras per multi-view set")
    parser.add_argument("--video-frames", type=int, default=16, help="frames per video")
    parser.add_argument("--grounding-per-scene", type=int, default=4, help="stage-1 questions per room image")
    parser.add_argument("--eval-fraction", type=float, default=0.1, help="share of scenes held out")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")


def main(verb: str, args: argparse.Namespace) -> int:
    summary = generate(
        args.out,
        args.scenes,
        args.seed,
        size=args.size,
        views=args.views,
        video_frames=args.video_frames,
        eval_fraction=args.eval_fraction,
        grounding_per_scene=args.grounding_per_scene,
        workers=args.workers,
        progress=True,
    )
    print(json.dumps(summary, indent=1))
    return 0
