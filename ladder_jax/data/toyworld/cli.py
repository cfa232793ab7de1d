"""`ladder-jax toyworld --out DIR --num-scenes N --seed S`: write a toy-world data set.

`--num-scenes` is a count (synth's `--scenes` is a folder); the old `--scenes N` still works, with
a deprecation warning.
"""

from __future__ import annotations

import argparse
import json
import sys

from ladder_jax.atomic_output import OutputError, build_beside
from ladder_jax.data.toyworld.cold_start import COLD_START_SHARES, REASONING_STYLES
from ladder_jax.data.toyworld.generate import SUMMARY_FILE, generate


def configure(verb: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (release layout; eval scenes under OUT/eval)")
    count = parser.add_mutually_exclusive_group(required=True)
    count.add_argument("--num-scenes", type=int, dest="scenes", help="number of rooms (scenes)")
    count.add_argument("--scenes", type=int, dest="deprecated_scenes", help=argparse.SUPPRESS)  # old spelling
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=224, help="frame width and height in pixels")
    parser.add_argument("--views", type=int, default=8, help="cameras per multi-view set")
    parser.add_argument("--video-frames", type=int, default=16, help="frames per video")
    parser.add_argument("--grounding-per-scene", type=int, default=4, help="stage-1 questions per room image")
    parser.add_argument("--reasoning", choices=REASONING_STYLES, default="worked",
                        help="cold-start solutions: the worked derivation, or the short grounded statement")
    parser.add_argument("--cold-start", choices=COLD_START_SHARES, default="one",
                        help="cold-start records for one spatial question per room and data type, or for all")
    parser.add_argument("--eval-fraction", type=float, default=0.1, help="share of scenes held out")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier toy world in --out (built beside it, swapped in when complete)")


def main(verb: str, args: argparse.Namespace) -> int:
    if args.deprecated_scenes is not None:
        print(f"ladder-jax {verb}: --scenes N is deprecated (synth's --scenes is a folder); use --num-scenes N",
              file=sys.stderr)
        args.scenes = args.deprecated_scenes
    try:
        with build_beside(args.out, overwrite=args.overwrite, marker=SUMMARY_FILE) as new:
            summary = generate(
                new,
                args.scenes,
                args.seed,
                size=args.size,
                views=args.views,
                video_frames=args.video_frames,
                eval_fraction=args.eval_fraction,
                grounding_per_scene=args.grounding_per_scene,
                reasoning=args.reasoning,
                cold_start=args.cold_start,
                workers=args.workers,
                progress=True,
            )
    except (OutputError, ValueError, OSError) as e:  # a refused --out, an argument out of range
        print(f"ladder-jax {verb}: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"out_dir": args.out} | summary, indent=1))
    return 0
